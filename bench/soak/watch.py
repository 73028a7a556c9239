"""What the soak watches besides its own requests: each process's memory, the replica's lag,
the API's ``/readyz`` and the machine's load, sampled every few seconds.

Processes are found by the pid files ``scripts/cluster-up.sh`` keeps; a process's memory is its
proportional set size (``Pss`` in ``/proc/<pid>/smaps_rollup``) summed over it and its children,
so PostgreSQL's shared buffers and nginx's workers are counted once, not once per process.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import psycopg


def cluster_processes(state: Path) -> dict[str, int]:
    """Name → pid of everything cluster-up started (PostgreSQL by its postmaster)."""
    found: dict[str, int] = {}
    for pidfile in sorted(state.glob("api-*.pid")):
        found[f"api {pidfile.stem.removeprefix('api-')}"] = _pid(pidfile)
    for pidfile in sorted(state.glob("worker-*.pid")):
        found[f"worker {pidfile.stem.removeprefix('worker-')}"] = _pid(pidfile)
    for name, pidfile in (
        ("nginx", state / "nginx.pid"),
        ("redis", state / "redis" / "redis.pid"),
        ("postgres primary", state / "pg-primary" / "postmaster.pid"),
        ("postgres replica", state / "pg-replica" / "postmaster.pid"),
    ):
        with contextlib.suppress(OSError, ValueError):
            found[name] = _pid(pidfile)
    return {name: pid for name, pid in found.items() if pid > 0}


def _pid(pidfile: Path) -> int:
    return int(pidfile.read_text().split()[0])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def memory_mib(processes: dict[str, int]) -> dict[str, float]:
    """Each process's memory with its children's, in MiB (gone processes are left out)."""
    tree = _children()
    sizes = {}
    for name, pid in processes.items():
        if not Path(f"/proc/{pid}").exists():
            continue
        pids, todo = [], [pid]
        while todo:
            current = todo.pop()
            pids.append(current)
            todo.extend(tree.get(current, []))
        sizes[name] = round(sum(_pss_kib(p) for p in pids) / 1024, 1)
    return sizes


def replica_lag(primary_dsn: str) -> dict[str, float | None]:
    """The replica's lag as the primary sees it: seconds (``replay_lag``, empty while nothing
    is replayed) and bytes of WAL not yet replayed."""
    with psycopg.connect(primary_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT EXTRACT(EPOCH FROM replay_lag)::float8,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8, state"
            " FROM pg_stat_replication WHERE application_name <> 'pg_basebackup' LIMIT 1"
        ).fetchone()
    if row is None:
        return {"seconds": None, "bytes": None, "streaming": 0.0}
    return {"seconds": row[0] or 0.0, "bytes": row[1], "streaming": float(row[2] == "streaming")}


def readyz(base_url: str) -> dict[str, Any]:
    """``/readyz``'s answer (200 or 503), whatever fields it carries."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as answer:  # noqa: S310
            found = json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        found = json.loads(refused.read())
    except (OSError, ValueError) as exc:
        return {"error": repr(exc)}
    return found if isinstance(found, dict) else {"answer": found}


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
