"""What every part of the load benchmark shares: its paths, its connections and timeouts, its
error, running a command to completion and the progress notes on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
DEFAULT_RESULTS = REPO / "var" / "bench" / "latest.json"
HOST = "127.0.0.1"

CONNECTIONS = 64
WRK_THREADS = 2
DEFAULT_SECONDS = 10
DEFAULT_WARMUP_SECONDS = 2
# A request slower than this counts as an error rather than as a very large latency.
REQUEST_TIMEOUT_SECONDS = 5
# Seeding 36,900 payments on PostgreSQL took over 300 s on a 2-core machine busy with other work.
SEED_TIMEOUT_SECONDS = 900.0


class HarnessError(Exception):
    """The benchmark could not be run (as opposed to: it ran and found errors)."""


def run_command(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float | None = None
) -> str:
    """Run a command to completion; its stdout, or a HarnessError with the end of its output."""
    try:
        done = subprocess.run(
            list(command),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(command[:3])} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).splitlines()
        raise HarnessError(f"{' '.join(command)} failed:\n" + "\n".join(output[-20:]))
    return done.stdout


def bench_module(name: str) -> list[str]:
    """The command running ``bench/<name>.py`` as a module of the ``bench`` package."""
    return [sys.executable, "-m", f"bench.{name}"]


def with_bench_path(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the repository on the module path, so that :func:`bench_module` commands
    run from the scratch directory (where no developer's .env file is read) find ``bench``."""
    paths = [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


_STARTED = time.monotonic()


def note(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)
