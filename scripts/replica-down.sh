#!/usr/bin/env bash
# Stop the primary and replica that scripts/replica-up.sh started in the folder it printed,
# then remove that folder.
set -euo pipefail
dir=${1:?usage: replica-down.sh FOLDER}
case "$dir" in /tmp/pintuan-replica.*) ;; *) echo "replica-down: not a replica-up folder: $dir" >&2; exit 2 ;; esac
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
for server in replica primary; do
  if [ -f "$dir/$server/postmaster.pid" ]; then
    (cd / && runuser -u postgres -- "/usr/lib/postgresql/$version/bin/pg_ctl" -D "$dir/$server" -m immediate -w stop) >&2 || true
  fi
done
rm -rf "$dir"
