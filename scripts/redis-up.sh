#!/usr/bin/env bash
# Start a Redis for the test suite on its own port (PINTUAN_TEST_REDIS_PORT, 6391 by default,
# not the 6379 another Redis may hold), with its pid file, log and directory in var/test-redis,
# no persistence; print the URL the tests use. Installs redis-server from Debian's packages
# when it is missing and this is root with apt. Safe to run again: a running one is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PINTUAN_TEST_REDIS_PORT:-6391}"
dir="$PWD/var/test-redis"
pidfile="$dir/redis.pid"

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no redis-server, and not root with apt-get to install it (apt-get install redis-server)" >&2
    exit 1
  fi
  echo "Installing Redis from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

mkdir -p "$dir"
if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$pidfile" \
    --dir "$dir" --logfile "$dir/redis.log" --save "" --appendonly no >&2
fi
for _ in $(seq 1 50); do
  redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
if ! redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
  echo "Redis did not answer on port $port (see $dir/redis.log)" >&2
  exit 1
fi
echo "redis://127.0.0.1:$port/0"
