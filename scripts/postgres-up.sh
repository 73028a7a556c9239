#!/usr/bin/env bash
# Install (from Debian's packages) and start a local PostgreSQL for the test suite, then print
# the URL the tests use. Needs root; safe to run again.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  echo "Installing PostgreSQL from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  pg_ctlcluster "$version" main start >&2
fi

port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
wait_ready() {
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
  done
}
wait_ready

as_postgres() { (cd / && runuser -u postgres -- "$@"); }
# The suite runs in parallel processes, each starting clusters of API servers with pools of
# their own: more connections than the default hundred.
if [ "$(as_postgres psql -p "$port" -tAc 'SHOW max_connections')" -lt 400 ]; then
  as_postgres psql -q -p "$port" -c "ALTER SYSTEM SET max_connections = 400" >&2
  pg_ctlcluster "$version" main restart >&2
  wait_ready
fi
as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 <<SQL >&2
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pintuan') THEN
    CREATE ROLE pintuan LOGIN CREATEDB PASSWORD 'pintuan';
  END IF;
END \$\$;
SQL
if ! as_postgres psql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'pintuan_test'" | grep -q 1; then
  as_postgres createdb -p "$port" -O pintuan pintuan_test
fi
echo "postgresql+psycopg://pintuan:pintuan@127.0.0.1:$port/pintuan_test"
