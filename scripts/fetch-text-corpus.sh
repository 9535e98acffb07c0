#!/usr/bin/env bash
# Builds the offline null corpus of human text for the text-watermark benchmark from Debian
# packages (downloaded with apt-get, unpacked with dpkg -x, never installed):
#   debian-handbook (GPL-2+ or CC-BY-SA-3.0), debian-reference-en (GPL-2+), fortunes and
#   fortunes-min (BSD-style, see their copyright files), python3.11-doc and
#   libpython3.11-stdlib (PSF-2.0).
# Output: DIR/null.jsonl with {"id", "row", "text"} lines (rows: prose, reference, python-docs,
# code, fortunes) and DIR/long.jsonl (2,000-word documents for the localisation test).
# Usage: scripts/fetch-text-corpus.sh [DIR]   (default: corpus/)
set -euo pipefail
dir="${1:-corpus}"
if [[ -s "$dir/null.jsonl" && -s "$dir/long.jsonl" ]]; then echo "$dir"; exit 0; fi
mkdir -p "$dir/debs" "$dir/x"
(
  cd "$dir/debs"
  apt-get download debian-handbook debian-reference-en fortunes fortunes-min \
    python3.11-doc libpython3.11-stdlib >&2
)
for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir/x"; done
python3 "$(dirname "$0")/build_text_corpus.py" "$dir/x" "$dir"
echo "$dir"
