"""A real PostgreSQL primary and a hot-standby replica streaming from it, for the replica-read
tests: started once per session by ``scripts/replica-up.sh`` (Debian's server binaries, run as
the postgres user, in a fresh folder on two free ports) and stopped by ``replica-down.sh``.

Where that cannot run (not root, no server binaries) these tests are skipped with the reason; with
``CI=true`` they fail instead. Lag is made on purpose with ``pg_wal_replay_pause()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.kit.migrations import upgrade
from pintuan.services import Services
from tests.conftest import _empty_all_tables, make_settings

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
# Sampled often, so that a test waits tenths of a second for the routing to notice a change.
SAMPLE_SECONDS = 0.1


def _cannot(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"replica tests cannot run: {reason} (failing because CI=true)")
    pytest.skip(f"replica tests need a local primary and replica: {reason}")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Replication:
    folder: str
    primary_url: str
    replica_url: str

    def _replica(self, sql: str) -> object:
        with psycopg.connect(_plain(self.replica_url), autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

    def pause(self) -> None:
        """Stop replaying WAL: from now on the replica falls behind every commit."""
        self._replica("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self._replica("SELECT pg_wal_replay_resume()")

    def catch_up(self, timeout: float = 30.0) -> None:
        """Resume, and wait until the replica has replayed all the primary has written."""
        self.resume()
        with psycopg.connect(_plain(self.primary_url), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            target = row[0]
        deadline = time.monotonic() + timeout
        sql = f"SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{target}') >= 0"
        while not self._replica(sql):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


@pytest.fixture(scope="session")
def replication() -> Iterator[Replication]:
    if os.geteuid() != 0:
        _cannot("not root, so PostgreSQL cannot be run as the postgres user")
    if not Path("/usr/lib/postgresql").is_dir() or shutil.which("runuser") is None:
        _cannot("no PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
    started = subprocess.run(  # noqa: S603 - the project's own script, no arguments
        [str(SCRIPTS / "replica-up.sh")], capture_output=True, text=True, timeout=300, check=False
    )
    if started.returncode != 0:
        _cannot(f"scripts/replica-up.sh failed: {started.stderr.strip()[-500:]}")
    folder, primary_url, replica_url = started.stdout.split()
    try:
        upgrade(primary_url)
        found = Replication(folder, primary_url, replica_url)
        found.catch_up()
        yield found
    finally:
        down = [str(SCRIPTS / "replica-down.sh"), folder]
        subprocess.run(down, timeout=120, check=False)  # noqa: S603 - our own script and folder


def replica_settings(replication: Replication, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_replica_url": replication.replica_url,
        "replica_sample_seconds": SAMPLE_SECONDS,
        "replica_max_lag_seconds": 30.0,
    }
    values.update(overrides)
    return make_settings(replication.primary_url, **values)


@pytest.fixture
def replicated_services(replication: Replication) -> Iterator[Services]:
    """Services on the primary with the replica for stale-tolerant reads; tables emptied and
    replayed, replay running again after the test."""
    services = build_services(replica_settings(replication))
    _empty_all_tables(services.db)
    replication.catch_up()
    yield services
    replication.resume()
    services.db.dispose()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def replica_health(client: TestClient) -> dict[str, object]:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    health = answer.json()["replica"]
    assert isinstance(health, dict)
    return health


def reading_from_replica(client: TestClient) -> bool:
    return replica_health(client)["reads"] == "replica"


@pytest.fixture
def replicated_client(replicated_services: Services) -> Iterator[TestClient]:
    app = create_app(replicated_services.settings, replicated_services)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_for(lambda: reading_from_replica(client), "stale-tolerant reads use the replica")
        yield client
