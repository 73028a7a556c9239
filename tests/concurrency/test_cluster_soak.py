"""The soak's one-minute smoke: the whole cluster of ``scripts/cluster-up.sh`` (PostgreSQL
primary and streaming replica, Redis, API processes and a worker behind nginx) takes mixed
shopper traffic through nginx, grows from one API process to two on the way, and afterwards
breaks no invariant and leaves nothing running.

It needs root with apt-get (the cluster's engines come from Debian's packages and PostgreSQL
runs as its own user); elsewhere it is skipped, and under CI=true that fails instead. It uses a
state directory and ports of its own, so a developer's cluster from ``cluster-up.sh`` is left
alone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PORTS = {
    "CLUSTER_PG_PORT": 15442,
    "CLUSTER_REDIS_PORT": 16389,
    "CLUSTER_API_PORT": 18101,
    "CLUSTER_PORT": 18180,
}
SMOKE_TIMEOUT_SECONDS = 420


def _can_run_the_cluster() -> str | None:
    if os.geteuid() != 0:
        return "the cluster needs root (it installs and runs PostgreSQL, Redis and nginx)"
    if shutil.which("apt-get") is None:
        return "the cluster's engines come from Debian's packages, and there is no apt-get"
    return None


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_minute_of_mixed_traffic_through_nginx_breaks_no_invariant_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    reason = _can_run_the_cluster()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the cluster smoke: {reason}")
        pytest.skip(reason)
    state = ROOT / "var" / "cluster-smoke"
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINTUAN_", "CLUSTER_"))}
    env.update({name: str(port) for name, port in PORTS.items()}, CLUSTER_STATE=str(state))

    smoke = ["--scale", "1,2", "--step-seconds", "10", "--minutes", "0.67", "--users", "16"]
    smoke += ["--shoppers", "300", "--deals", "8", "--settle-seconds", "60", "--out", str(out)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
            [sys.executable, "-m", "bench.soak", *smoke],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SMOKE_TIMEOUT_SECONDS,
            check=False,
        )
        left_listening = [port for port in PORTS.values() if _listening(port)]
        left_pid_files = [p.name for p in state.glob("**/*.pid")]
    finally:
        # Whatever happened, stop what may run and drop the smoke's data.
        subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [str(ROOT / "scripts" / "cluster-down.sh"), "--wipe"], env=env, check=False
        )
    log = f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"

    assert left_listening == [], f"left running:\n{log}"
    assert left_pid_files == [], f"pid files left:\n{log}"
    assert done.returncode == 0, log
    result = json.loads((out / "soak.json").read_text())
    assert [step["apis"] for step in result["scaling"]] == [1, 2]
    for phase in [*result["scaling"], result["soak"]]:
        assert phase["requests"] > 0, phase
        assert phase["routes"].get("GET /v1/deals", {}).get("requests", 0) > 0, phase
    assert result["soak"]["joins"] > 0, result["soak"]
    assert result["soak"]["payments"] > 0, result["soak"]
    assert result["checks"]["audit"]["exit_status"] == 0, result["checks"]
    assert result["checks"]["ledger"]["exit_status"] == 0, result["checks"]
    assert result["breaches"] == []
    assert result["error_count"] == 0, result["errors"]
    assert result["replica_lag"]["samples"] > 0, result["replica_lag"]
    memory = {name for sample in result["samples"] for name in sample["memory"]}
    assert {"api 18101", "api 18102", "worker 1", "nginx", "postgres replica"} <= memory
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
