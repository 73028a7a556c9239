#!/usr/bin/env bash
# Start a throw-away PostgreSQL primary and a hot-standby replica that streams from it, from
# Debian's binaries, in a fresh folder on two free loopback ports; for the replica-read tests.
# Needs root (the servers run as the postgres user). Prints three lines on stdout: the folder
# (give it to scripts/replica-down.sh), the primary's URL and the replica's URL.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then echo "replica-up: needs root to run PostgreSQL as postgres" >&2; exit 2; fi
version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ] || ! id postgres >/dev/null 2>&1; then
  echo "replica-up: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 2
fi
bin=/usr/lib/postgresql/$version/bin
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

dir=$(mktemp -d /tmp/pintuan-replica.XXXXXX)
chown postgres: "$dir"
chmod 700 "$dir"
primary_port=$(free_port)
replica_port=$(free_port)
while [ "$replica_port" = "$primary_port" ]; do replica_port=$(free_port); done

# Loopback only, trusted: these servers live for one test run and hold nothing but test rows.
as_postgres "$bin/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >&2
cat >>"$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
synchronous_commit = on
CONF
echo "host replication postgres 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
as_postgres "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start >&2
as_postgres "$bin/createdb" -h 127.0.0.1 -p "$primary_port" -U postgres pintuan >&2

# -R writes standby.signal and the primary_conninfo: the copy starts as a streaming standby.
as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
  -D "$dir/replica" -R -X stream -c fast >&2
cat >>"$dir/replica/postgresql.conf" <<CONF
port = $replica_port
hot_standby = on
hot_standby_feedback = on
CONF
as_postgres "$bin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w start >&2

echo "$dir"
echo "postgresql+psycopg://postgres@127.0.0.1:$primary_port/pintuan"
echo "postgresql+psycopg://postgres@127.0.0.1:$replica_port/pintuan"
