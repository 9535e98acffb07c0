#!/usr/bin/env bash
# Contract test of `hallmark serve` against its own OpenAPI document (/openapi.json) with
# schemathesis (PyPI): generated requests, valid and invalid, must get the documented status
# codes, content types and response shapes, and never a server error.
#
# `positive_data_acceptance` is left out: an image body is "any bytes" to a schema, so a
# schema-valid body that is not an image is rightly refused (400), which that check would
# count as a failure.
#
# usage: scripts/test-openapi.sh [HALLMARK_BIN]
set -euo pipefail
bin="${1:-target/debug/hallmark}"
python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" keygen --out "$work/keys" -q
db="sqlite:$work/registry.db"
token="$("$bin" serve token create --db "$db" 2>/dev/null | tail -1)"
"$bin" serve --listen 127.0.0.1:0 --db "$db" --keys "$work/keys" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do
    url="$(grep -o 'listening on http://[^ ]*' "$work/serve.log" | head -1 | cut -d' ' -f3 || true)"
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve.log"; echo "the server did not start" >&2; exit 1; }
schemathesis run "$url/openapi.json" --checks all --exclude-checks positive_data_acceptance \
    -H "Authorization: Bearer $token" --max-examples 30 --seed 20 --no-color
