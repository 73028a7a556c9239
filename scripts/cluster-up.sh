#!/usr/bin/env bash
# A whole Pintuan cluster on this machine, from Debian's packages: a PostgreSQL primary and a
# streaming replica, Redis, N API processes (`pintuan serve --no-worker`), M workers
# (`pintuan worker`) and nginx balancing the APIs on one port. Everything lives under
# var/cluster/ (data, logs, pid files, configuration) on ports of its own, never the machine's
# shared PostgreSQL or Redis. Safe to run again: what runs is left running, what is missing is
# started, and a changed --apis / --workers starts or stops the difference (nginx is reloaded).
# scripts/cluster-down.sh stops exactly what this started.
#
#   scripts/cluster-up.sh [--apis N] [--workers M] [--demo]
#
# N and M also come from CLUSTER_APIS and CLUSTER_WORKERS (defaults 2 and 1); ports from
# CLUSTER_PG_PORT (primary; the replica takes the next), CLUSTER_REDIS_PORT, CLUSTER_API_PORT
# (the first API; the others follow) and CLUSTER_PORT (nginx); the state directory from
# CLUSTER_STATE (default var/cluster). PINTUAN_* settings in the environment reach every
# Pintuan process, except the addresses set here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

apis=${CLUSTER_APIS:-2}
workers=${CLUSTER_WORKERS:-1}
demo=false
while [ $# -gt 0 ]; do
  case "$1" in
    --apis) apis=${2:?--apis needs a number}; shift 2 ;;
    --workers) workers=${2:?--workers needs a number}; shift 2 ;;
    --demo) demo=true; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster-up: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$apis$workers" in *[!0-9]*) echo "cluster-up: --apis and --workers take whole numbers" >&2; exit 2 ;; esac
if [ "$apis" -lt 1 ] || [ "$apis" -gt 32 ] || [ "$workers" -gt 32 ]; then
  echo "cluster-up: --apis must be 1 to 32 and --workers 0 to 32" >&2
  exit 2
fi

# Below the kernel's range of ephemeral ports (32768 and up), which outgoing connections (the
# soak's own, for one) take: a listener there can find its port taken by chance.
pg_port=${CLUSTER_PG_PORT:-15432}
replica_port=$((pg_port + 1))
redis_port=${CLUSTER_REDIS_PORT:-16379}
api_port=${CLUSTER_API_PORT:-18001}
lb_port=${CLUSTER_PORT:-18080}

say() { echo "cluster-up: $*" >&2; }
die() { echo "cluster-up: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  die "needs root: it installs postgresql, redis-server and nginx from Debian's packages with
apt-get when missing, and runs PostgreSQL as the postgres user (runuser). Run it with sudo, or
as root in a container; nothing was started."
fi

# --- packages ------------------------------------------------------------------------------
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]} from Debian's packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >&2
fi
pg_bin=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -n 1)/bin
if [ ! -x .venv/bin/pintuan ]; then
  say "no .venv yet: running make install..."
  make install >&2
fi

# --- layout --------------------------------------------------------------------------------
state=$(realpath -m "${CLUSTER_STATE:-$root/var/cluster}")
mkdir -p "$state/run" "$state/nginx"
# PostgreSQL runs as postgres and must reach its data directories through every parent.
dir=$state
while [ "$dir" != / ]; do
  [ -x "$dir" ] && runuser -u postgres -- test -x "$dir" 2>/dev/null ||
    die "the postgres user cannot enter $dir; give it o+x (chmod o+x \"$dir\") or clone elsewhere"
  dir=$(dirname "$dir")
done
chown postgres: "$state/run"
chmod 0700 "$state/run"

env_file=$state/cluster.env
if [ ! -s "$state/db-password" ]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/db-password")
fi
password=$(cat "$state/db-password")
primary_url="postgresql+psycopg://pintuan:$password@127.0.0.1:$pg_port/pintuan"
replica_url="postgresql+psycopg://pintuan:$password@127.0.0.1:$replica_port/pintuan"
redis_url="redis://127.0.0.1:$redis_port/0"
lb_url="http://127.0.0.1:$lb_port"

alive() { # pid file, expected word in its command line
  local pid
  [ -s "$1" ] || return 1
  pid=$(head -n 1 "$1")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}
port_taken() { ss -Hltn "sport = :$1" | grep -q .; }
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
psql_primary() { as_postgres "$pg_bin/psql" -h "$state/run" -p "$pg_port" -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }

# --- PostgreSQL primary --------------------------------------------------------------------
primary=$state/pg-primary
start_postgres() { # data dir, port, log
  if as_postgres "$pg_bin/pg_ctl" -D "$1" status >/dev/null 2>&1; then
    return 0
  fi
  port_taken "$2" && die "port $2 is taken by another program (set CLUSTER_PG_PORT)"
  touch "$3" && chown postgres: "$3"
  as_postgres "$pg_bin/pg_ctl" -D "$1" -l "$3" -w -t 60 start >/dev/null ||
    die "PostgreSQL in $1 did not start; see $3"
}
if [ ! -s "$primary/PG_VERSION" ]; then
  say "creating the primary's data directory..."
  rm -rf "$primary" "$state/pg-replica"
  install -d -o postgres -g postgres -m 0700 "$primary"
  as_postgres "$pg_bin/initdb" -D "$primary" -U postgres --auth-local=peer \
    --auth-host=scram-sha-256 --no-instructions --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  # The cluster's own settings in one file that pg_basebackup copies to the replica with the
  # rest; the replica then gets its own port on top.
  cat >"$primary/cluster.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$state/run'
max_connections = 300
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
hot_standby_feedback = on
CONF
  chown postgres: "$primary/cluster.conf"
  echo "include_if_exists = 'cluster.conf'" >>"$primary/postgresql.conf"
fi
start_postgres "$primary" "$pg_port" "$state/pg-primary.log"
psql_primary -d postgres <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pintuan') THEN
    CREATE ROLE pintuan LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN
    CREATE ROLE replicator LOGIN REPLICATION;
  END IF;
  -- The soak and /readyz read the replica's lag from pg_stat_replication.
  IF NOT pg_has_role('pintuan', 'pg_monitor', 'MEMBER') THEN
    GRANT pg_monitor TO pintuan;
  END IF;
END \$\$;
ALTER ROLE pintuan PASSWORD '$password';
ALTER ROLE replicator PASSWORD '$password';
SQL
if [ "$(psql_primary -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'pintuan'")" = 0 ]; then
  psql_primary -d postgres -c "CREATE DATABASE pintuan OWNER pintuan" >/dev/null
fi

# --- PostgreSQL replica --------------------------------------------------------------------
replica=$state/pg-replica
system_id() { "$pg_bin/pg_controldata" "$1" 2>/dev/null | awk -F': *' '/system identifier/ {print $2}'; }
if [ -s "$replica/PG_VERSION" ] && { [ ! -e "$replica/standby.signal" ] ||
  [ "$(system_id "$replica")" != "$(system_id "$primary")" ]; }; then
  say "the replica is not a standby of this primary; making it again"
  as_postgres "$pg_bin/pg_ctl" -D "$replica" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$replica"
fi
if [ ! -s "$replica/PG_VERSION" ]; then
  say "copying the primary into the replica (pg_basebackup -R)..."
  install -d -o postgres -g postgres -m 0700 "$replica"
  if ! psql_primary -d postgres -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cluster_replica'" | grep -q 1; then
    psql_primary -d postgres -c "SELECT pg_create_physical_replication_slot('cluster_replica')" >/dev/null
  fi
  as_postgres env PGPASSWORD="$password" "$pg_bin/pg_basebackup" \
    -h 127.0.0.1 -p "$pg_port" -U replicator -D "$replica" -R -X stream -S cluster_replica \
    -c fast >/dev/null || { rm -rf "$replica"; die "pg_basebackup failed; see $state/pg-primary.log"; }
  sed -i "s/^port = .*/port = $replica_port/" "$replica/cluster.conf"
fi
start_postgres "$replica" "$replica_port" "$state/pg-replica.log"
say "waiting for the replica to stream..."
streaming=""
for _ in $(seq 1 60); do
  streaming=$(psql_primary -d postgres -c \
    "SELECT state FROM pg_stat_replication WHERE application_name <> 'pg_basebackup' LIMIT 1")
  [ "$streaming" = streaming ] && break
  sleep 1
done
[ "$streaming" = streaming ] || die "the replica does not stream (state '${streaming:-none}'); see $state/pg-replica.log"

# --- Redis ---------------------------------------------------------------------------------
if ! alive "$state/redis/redis.pid" redis-server; then
  port_taken "$redis_port" && die "port $redis_port is taken by another program (set CLUSTER_REDIS_PORT)"
  install -d -o redis -g redis -m 0750 "$state/redis"
  # Admission state is rebuilt from PostgreSQL by the reconciler, so nothing is saved to disk.
  (cd / && runuser -u redis -- redis-server --bind 127.0.0.1 --port "$redis_port" \
    --daemonize yes --dir "$state/redis" --pidfile "$state/redis/redis.pid" \
    --logfile "$state/redis/redis.log" --save "" --appendonly no) >/dev/null ||
    die "Redis did not start; see $state/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
fi
redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG || die "Redis does not answer; see $state/redis/redis.log"

# --- Pintuan -------------------------------------------------------------------------------
cat >"$env_file" <<ENV
# Written by scripts/cluster-up.sh: the cluster's addresses, for tools run beside it.
export PINTUAN_DATABASE_URL='$primary_url'
export PINTUAN_DATABASE_REPLICA_URL='$replica_url'
export PINTUAN_REDIS_URL='$redis_url'
export CLUSTER_URL='$lb_url'
export CLUSTER_STATE='$state'
export CLUSTER_PG_SOCKETS='$state/run'
export CLUSTER_PG_BIN='$pg_bin'
export CLUSTER_PG_PORT='$pg_port'
export CLUSTER_REPLICA_PORT='$replica_port'
ENV
chmod 0600 "$env_file"
pintuan_env=(
  PINTUAN_ENV="${PINTUAN_ENV:-dev}"
  PINTUAN_DATABASE_URL="$primary_url"
  PINTUAN_DATABASE_REPLICA_URL="$replica_url"
  PINTUAN_REDIS_URL="$redis_url"
  PINTUAN_BASE_URL="${PINTUAN_BASE_URL:-$lb_url}"
  PINTUAN_TRUSTED_PROXIES="${PINTUAN_TRUSTED_PROXIES:-127.0.0.1}"
)
pintuan() { env "${pintuan_env[@]}" .venv/bin/pintuan "$@"; }

say "migrating the primary..."
pintuan migrate >/dev/null 2>"$state/migrate.log" || die "migration failed; see $state/migrate.log"
if $demo; then
  pintuan demo >"$state/demo.txt" 2>&1 || die "the demo did not load; see $state/demo.txt"
fi

start_pintuan() { # pid file, log, what to run...
  local pidfile=$1 log=$2
  shift 2
  # Its own session, so that it outlives this script's terminal and its process group.
  env "${pintuan_env[@]}" setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}
stop_pid() { # pid file: TERM, then KILL after 15 s
  local pid
  pid=$(head -n 1 "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

started_apis=()
for n in $(seq 1 "$apis"); do
  port=$((api_port + n - 1))
  if alive "$state/api-$port.pid" "pintuan serve"; then continue; fi
  port_taken "$port" && die "port $port is taken by another program (set CLUSTER_API_PORT)"
  start_pintuan "$state/api-$port.pid" "$state/api-$port.log" \
    .venv/bin/pintuan serve --no-worker --host 127.0.0.1 --port "$port"
  started_apis+=("$port")
done
for n in $(seq 1 "$workers"); do
  alive "$state/worker-$n.pid" "pintuan worker" && continue
  start_pintuan "$state/worker-$n.pid" "$state/worker-$n.log" .venv/bin/pintuan worker
done
for pidfile in "$state"/worker-*.pid; do
  [ -e "$pidfile" ] || continue
  n=${pidfile##*/worker-}
  n=${n%.pid}
  if [ "$n" -gt "$workers" ]; then
    say "stopping worker $n (beyond --workers $workers)"
    stop_pid "$pidfile"
  fi
done
for port in "${started_apis[@]}"; do
  ready=false
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then ready=true; break; fi
    alive "$state/api-$port.pid" "pintuan serve" || break
    sleep 0.5
  done
  $ready || die "the API on $port did not come up; see $state/api-$port.log"
done
sleep 0.5
for n in $(seq 1 "$workers"); do
  alive "$state/worker-$n.pid" "pintuan worker" || die "worker $n stopped at once; see $state/worker-$n.log"
done

# --- nginx ---------------------------------------------------------------------------------
{
  echo "# Written by scripts/cluster-up.sh: the API processes nginx balances."
  for n in $(seq 1 "$apis"); do
    echo "server 127.0.0.1:$((api_port + n - 1)) max_fails=3 fail_timeout=5s;"
  done
} >"$state/nginx-upstream.conf"
nginx_user=www-data
id -u "$nginx_user" >/dev/null 2>&1 || nginx_user=nobody
chown "$nginx_user" "$state/nginx"
cat >"$state/nginx.conf" <<CONF
# Written by scripts/cluster-up.sh; deploy/nginx/pintuan.conf is the production site.
user $nginx_user;
worker_processes auto;
pid $state/nginx.pid;
error_log $state/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $state/nginx/body;
  proxy_temp_path $state/nginx/proxy;
  fastcgi_temp_path $state/nginx/fastcgi;
  uwsgi_temp_path $state/nginx/uwsgi;
  scgi_temp_path $state/nginx/scgi;
  upstream pintuan_api {
    least_conn;
    include $state/nginx-upstream.conf;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$lb_port;
    client_max_body_size 12m;
    location / {
      proxy_pass http://pintuan_api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_read_timeout 60s;
    }
  }
}
CONF
nginx_cmd=(nginx -p "$state" -e "$state/nginx-error.log" -c "$state/nginx.conf")
"${nginx_cmd[@]}" -t -q 2>"$state/nginx-test.log" || die "nginx refused its configuration; see $state/nginx-test.log"
if alive "$state/nginx.pid" nginx; then
  "${nginx_cmd[@]}" -s reload
else
  port_taken "$lb_port" && die "port $lb_port is taken by another program (set CLUSTER_PORT)"
  "${nginx_cmd[@]}" || die "nginx did not start; see $state/nginx-error.log"
fi
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "$lb_url/healthz" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "$lb_url/healthz" || die "nginx does not reach the APIs; see $state/nginx-error.log"

# APIs beyond N (from an earlier, larger run) stop once nginx no longer sends them anything.
for pidfile in "$state"/api-*.pid; do
  [ -e "$pidfile" ] || continue
  port=${pidfile##*/api-}
  port=${port%.pid}
  if [ "$port" -lt "$api_port" ] || [ "$port" -ge $((api_port + apis)) ]; then
    say "stopping the API on $port (beyond --apis $apis)"
    stop_pid "$pidfile"
  fi
done

# --- what runs -----------------------------------------------------------------------------
pid_of() { head -n 1 "$1" 2>/dev/null || echo "?"; }
{
  echo "Pintuan cluster up (state, logs and pid files in $state/):"
  echo "  PostgreSQL primary  127.0.0.1:$pg_port  pid $(head -n 1 "$primary/postmaster.pid")"
  echo "  PostgreSQL replica  127.0.0.1:$replica_port  pid $(head -n 1 "$replica/postmaster.pid")  (streaming)"
  echo "  Redis               127.0.0.1:$redis_port  pid $(pid_of "$state/redis/redis.pid")"
  for n in $(seq 1 "$apis"); do
    port=$((api_port + n - 1))
    echo "  API                 http://127.0.0.1:$port  pid $(pid_of "$state/api-$port.pid")"
  done
  for n in $(seq 1 "$workers"); do
    echo "  worker $n                                pid $(pid_of "$state/worker-$n.pid")"
  done
  echo "  nginx               $lb_url  pid $(pid_of "$state/nginx.pid")"
  echo "Open $lb_url/ (API: $lb_url/v1/deals). Settings for tools beside it: $env_file"
  if $demo; then sed -n '/Demo logins/,$p' "$state/demo.txt"; fi
  echo "Stop it all with scripts/cluster-down.sh"
}
