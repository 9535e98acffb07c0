#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests (Debian's `postgresql` package): its own
# data folder under $1 (default: a temporary folder), loopback only, on a free port. Prints
# the database URL on stdout; the server stops with `pg_ctl -D DIR stop` (or when the machine
# does). Installs the package first when it is missing (as root).
set -euo pipefail
base="${1:-$(mktemp -d)}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
    else
        echo "start-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
        exit 1
    fi
fi
bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
data="$base/pgdata"
mkdir -p "$base"
# PostgreSQL refuses to run as root: run it as an unprivileged user.
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$base"
fi
run "$bin/initdb" -D "$data" -U hallmark --auth=trust -E UTF8 >/dev/null
run "$bin/pg_ctl" -D "$data" -l "$base/postgres.log" -w -o "-h 127.0.0.1 -p $port -k $base -c fsync=on" start >/dev/null
run "$bin/createdb" -h 127.0.0.1 -p "$port" -U hallmark hallmark
echo "postgres://hallmark@127.0.0.1:$port/hallmark"
