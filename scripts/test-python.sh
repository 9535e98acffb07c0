#!/usr/bin/env bash
# Builds the Python package (crates/hallmark-py) with the dev profile into the workspace's
# target folder (sharing what `cargo test` compiled), installs it, and runs its pytest suite
# against the CLI built beside it. CI runs this after `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
python3 -m pip install --quiet --disable-pip-version-check "maturin>=1.9,<2" "pytest>=7" pillow numpy
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
python3 -m maturin build --quiet --profile dev --locked -m crates/hallmark-py/Cargo.toml -o "$wheels"
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/hallmark-*.whl
cargo build --quiet --locked -p hallmark-cli
HALLMARK_BIN="$target/debug/hallmark" python3 -m pytest -q crates/hallmark-py/tests
