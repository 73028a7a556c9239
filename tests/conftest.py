"""Test databases are built by the real migrations, once per backend; each test starts empty.

SQLite always runs. PostgreSQL runs when ``PINTUAN_TEST_POSTGRES_URL`` names a database the
tests may wipe (``.ci/run`` starts one); every database test then runs on both.

The suite runs in parallel processes (``make test`` passes ``-n``): each process has a
PostgreSQL database of its own, named after the given one with its worker id appended and
created on first use by the given one's owner, and a Redis database number of its own
(``tests.redis_support``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.cli import app as cli_app
from pintuan.config import Environment, Settings, get_settings
from pintuan.kit.db import Database
from pintuan.kit.migrations import upgrade
from pintuan.kit.time import clock
from pintuan.ledger import guard as ledger_guard
from pintuan.models import Base
from pintuan.services import Services

# CI draws the property tests' examples the same way every run (derandomized): a gate whose
# verdict hangs on which walks chance picked fails builds that changed nothing (a walk that by
# chance never hands over a pickup fails that machine's check of what it saw). Everywhere else
# each run draws anew, which is how the money machines find new bugs: run them with
# ``--hypothesis-seed=N`` for several N to explore.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# "gw0", "gw1", ... in a parallel run's processes; unset when pytest runs in one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def worker_number() -> int:
    """0 in one process, 1 + the worker's index in a parallel run."""
    return int(WORKER.removeprefix("gw")) + 1 if WORKER else 0


def own_postgres_database(url: str | None, name: str | None = None) -> str | None:
    """The URL of this process's own database beside ``url``'s (``name`` or ``url``'s name, with
    the worker id appended in a parallel run), created if it does not exist yet."""
    if url is None:
        return None
    given = make_url(url)
    wanted = name or given.database or "pintuan_test"
    if WORKER:
        wanted = f"{wanted}_{WORKER}"
    if wanted == given.database:
        return url
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": wanted}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{wanted}"'))
    finally:
        admin.dispose()
    return given.set(database=wanted).render_as_string(hide_password=False)


POSTGRES_URL = own_postgres_database(os.environ.get("PINTUAN_TEST_POSTGRES_URL"))
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'pintuan.db'}"
    else:
        if not POSTGRES_URL:
            pytest.skip("PINTUAN_TEST_POSTGRES_URL is not set (see scripts/postgres-up.sh)")
        url = POSTGRES_URL
        reset_postgres(url)
    upgrade(url)
    return url


# Children before parents, so that no foreign key stops a delete.
_EMPTY_ALL = "; ".join(
    f"DELETE FROM {t.name}"  # noqa: S608 (table names of our own models)
    for t in reversed(Base.metadata.sorted_tables)
)


def _empty_all_tables(db: Database) -> None:
    # One batch of DELETEs: a test leaves a few rows, and PostgreSQL's TRUNCATE of every table
    # costs a file swap per table (over a second per test on a busy machine, against
    # milliseconds for the batch). The ledger's append-only triggers are lifted meanwhile.
    with db.engine.begin() as conn:
        ledger_guard.remove(conn)
        if db.dialect == "postgresql":
            conn.exec_driver_sql(_EMPTY_ALL)
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        ledger_guard.install(conn)


def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.TEST,
        "database_url": url,
        "password_time_cost": 1,
        "password_memory_kib": 1024,
        # Pictures are content-addressed, so tests may share one folder, never the checkout's.
        "media_dir": Path(tempfile.gettempdir()) / f"pintuan-test-media-{os.getpid()}",
        # Tests read what they just wrote; the read cache's second of staleness has its own
        # tests (test_read_cache.py), which turn it on.
        "read_cache_seconds": 0,
        # No test reads a simulation a developer ran in the checkout.
        "feed_simulation_dir": Path(tempfile.gettempdir()) / f"pintuan-test-feed-{os.getpid()}",
        # The feed reads its candidates anew for each request (tests make deals directly), and
        # writes its log when a test asks (``tests.features.feeding.flush``), not on a timer.
        "feed_snapshot_seconds": 0,
        "feed_refresh_seconds": 60,
        "feed_flush_seconds": 60,
        "feed_reload_seconds": 60,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    _empty_all_tables(services.db)
    yield services
    services.db.dispose()


@pytest.fixture
def db(services: Services) -> Database:
    return services.db


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    """Tests may move the application clock; every test starts and ends on real time."""
    clock.offset = timedelta(0)
    yield
    clock.offset = timedelta(0)


@pytest.fixture
def tmp_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def run_cli(
    tmp_sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """The ``pintuan`` command as an operator runs it, on a fresh SQLite file it has migrated:
    ``run_cli("audit")`` gives typer's result (``exit_code``, ``output``)."""
    monkeypatch.setenv("PINTUAN_DATABASE_URL", tmp_sqlite_url)
    monkeypatch.setenv("PINTUAN_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("PINTUAN_ENV", "test")
    monkeypatch.setenv("PINTUAN_PASSWORD_TIME_COST", "1")
    monkeypatch.setenv("PINTUAN_PASSWORD_MEMORY_KIB", "1024")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(cli_app, list(args), input=stdin)

    assert invoke("migrate").exit_code == 0
    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def charging(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    """An app whose sandbox charges at once and refunds on failure (as wallets do)."""
    settings = make_settings(database_url, sandbox_style="charge")
    services = build_services(settings)
    _empty_all_tables(services.db)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client, services
    services.db.dispose()
