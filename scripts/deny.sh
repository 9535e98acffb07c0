#!/usr/bin/env bash
# cargo deny over every dependency: licences, bans (duplicates, wildcards), sources, and
# security advisories from the RustSec database snapshot committed in
# .ci/advisory-db.tar.gz (CI machines cannot reach GitHub; refresh it with
# scripts/update-advisory-db.sh where they can). Policy: deny.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$version"; then
  cargo install --locked --quiet cargo-deny --version "$version"
fi
# cargo deny looks for the database under db-path, in a folder named after its URL, as a
# git checkout (it reads the last commit's date): unpack the snapshot as one.
db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$db" target/advisory-dbs/advisory-db
mkdir -p target/advisory-dbs
tar -xzf .ci/advisory-db.tar.gz -C target/advisory-dbs
mv target/advisory-dbs/advisory-db "$db"
snapshot_date=$(cat .ci/advisory-db.date)
(
  cd "$db"
  git init -q
  git add -A
  GIT_AUTHOR_DATE="$snapshot_date" GIT_COMMITTER_DATE="$snapshot_date" \
    git -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "advisory-db snapshot"
)
echo "advisory database: RustSec snapshot of $snapshot_date"
cargo deny --offline --locked check --hide-inclusion-graph
