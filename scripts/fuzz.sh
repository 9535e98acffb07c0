#!/usr/bin/env bash
# Fuzzes hallmark's parsers of untrusted bytes with cargo fuzz (libFuzzer + AddressSanitizer).
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (default 600 s each, every target)
#
# Targets (fuzz/fuzz_targets, harnesses in crates/hallmark-fuzz): image_detect, c2pa_verify,
# text_detect, ledger_parse, manifest_definition. Each starts from fuzz/seeds/TARGET and
# grows fuzz/corpus/TARGET (not committed). A crash is left in fuzz/artifacts/TARGET: copy it
# to fuzz/regressions/TARGET/ (run by `cargo test -p hallmark-fuzz`) and fix it.
# Only the stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets it take cargo fuzz's flags.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image_detect c2pa_verify text_detect ledger_parse manifest_definition)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked --quiet cargo-fuzz --version 0.13.2
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O --fuzz-dir fuzz
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t: ${secs} s"
  cargo fuzz run -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -timeout=30 -max_len=262144 -print_final_stats=1 \
    2>&1 | grep -E "^(#[0-9]+[[:space:]]+(DONE|INITED)|stat::|==[0-9]+==|SUMMARY|Test unit|artifact_prefix|.*panicked)" || true
  if ls "fuzz/artifacts/$t"/crash-* "fuzz/artifacts/$t"/oom-* "fuzz/artifacts/$t"/timeout-* >/dev/null 2>&1; then
    echo "$t: found a failing input in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
