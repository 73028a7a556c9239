#!/usr/bin/env bash
# Bring up what the whole test suite needs beyond Python, where this machine can install it
# (root with apt): PostgreSQL (the suite's second database), Redis (hot-deal admission), Debian's
# Chromium (browser tests), a CJK font and zbarimg (poster tests). Prints two lines on stdout:
# the PostgreSQL URL for the tests, then the Redis URL, each empty when that is not available;
# everything else goes to stderr, including what will be skipped and why. With CI=true a failure
# to bring something up fails the run instead.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "make test: $*" >&2; }
failed() {
  if [ "${CI:-}" = "true" ]; then say "could not bring up $1; failing (CI=true)"; exit 1; fi
  say "could not bring up $1; $2"
}

# A Redis of the tests' own (scripts/redis-up.sh), or the one PINTUAN_TEST_REDIS_URL names.
redis_url() {
  if [ -n "${PINTUAN_TEST_REDIS_URL:-}" ]; then
    echo "$PINTUAN_TEST_REDIS_URL"
  elif url="$(scripts/redis-up.sh)"; then
    echo "$url"
  else
    failed "Redis" "Redis admission tests are skipped (set PINTUAN_TEST_REDIS_URL)"
    echo ""
  fi
}

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "not root with apt-get, so nothing is installed:"
  [ -n "${PINTUAN_TEST_POSTGRES_URL:-}" ] ||
    say "  PostgreSQL tests are skipped (set PINTUAN_TEST_POSTGRES_URL to a database they may wipe)"
  [ -x /usr/bin/chromium ] || say "  browser tests are skipped (no /usr/bin/chromium: apt-get install chromium)"
  command -v zbarimg >/dev/null 2>&1 || say "  QR read-back tests are skipped (no zbarimg: apt-get install zbar-tools)"
  echo "${PINTUAN_TEST_POSTGRES_URL:-}"
  redis_url
  exit 0
fi

scripts/browser-up.sh >&2 || failed "Chromium" "browser tests are skipped"
scripts/traffic-up.sh >&2 || failed "the poster tools" "QR read-back tests are skipped"
if [ -n "${PINTUAN_TEST_POSTGRES_URL:-}" ]; then
  echo "$PINTUAN_TEST_POSTGRES_URL"
elif url="$(scripts/postgres-up.sh)"; then
  echo "$url"
else
  failed "PostgreSQL" "PostgreSQL tests are skipped"
  echo ""
fi
redis_url
