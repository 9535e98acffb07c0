#!/usr/bin/env bash
# Refreshes the RustSec advisory database snapshot CI checks against (needs GitHub).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$tmp/advisory-db"
git -C "$tmp/advisory-db" log -1 --format=%cI > .ci/advisory-db.date
git -C "$tmp/advisory-db" archive --format=tar.gz --prefix=advisory-db/ HEAD > .ci/advisory-db.tar.gz
echo "snapshot of $(cat .ci/advisory-db.date): run scripts/deny.sh"
