#!/usr/bin/env bash
# Stop exactly what scripts/cluster-up.sh started, by the pid files it keeps in var/cluster/
# (or CLUSTER_STATE)
# (a pid is signalled only while its command line is still the one started there): nginx, the
# API processes, the workers, Redis, the replica, then the primary. Data stays for the next
# cluster-up; `--wipe` also removes the state directory. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(realpath -m "${CLUSTER_STATE:-$(pwd)/var/cluster}")
wipe=false
case "${1:-}" in
  --wipe) wipe=true ;;
  "") ;;
  *) echo "cluster-down: unknown argument $1 (only --wipe)" >&2; exit 2 ;;
esac

say() { echo "cluster-down: $*" >&2; }
if [ ! -d "$state" ]; then
  say "nothing to stop (no $state)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "cluster-down: needs root, as cluster-up did (PostgreSQL runs as postgres, nginx as root)" >&2
  exit 1
fi

stop() { # pid file, word its command line must hold, what it is
  local pid
  [ -s "$1" ] || return 0
  pid=$(head -n 1 "$1")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$3 (pid $pid) did not stop in 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $3 (pid $pid)"
  fi
  rm -f "$1"
}

stop "$state/nginx.pid" nginx nginx
for pidfile in "$state"/api-*.pid; do
  [ -e "$pidfile" ] || continue
  port=${pidfile##*/api-}
  stop "$pidfile" "pintuan serve" "the API on ${port%.pid}"
done
for pidfile in "$state"/worker-*.pid; do
  [ -e "$pidfile" ] || continue
  n=${pidfile##*/worker-}
  stop "$pidfile" "pintuan worker" "worker ${n%.pid}"
done
stop "$state/redis/redis.pid" redis-server Redis

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
for name in pg-replica pg-primary; do
  dir=$state/$name
  [ -s "$dir/postmaster.pid" ] || continue
  if (cd / && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1); then
    (cd / && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null)
    say "stopped PostgreSQL ${name#pg-}"
  fi
done

if $wipe; then
  rm -rf "$state"
  say "removed $state"
fi
