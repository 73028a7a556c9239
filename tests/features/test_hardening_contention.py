"""A write lock held elsewhere never stalls the server nor ends a request in a bare 500.

Another process (``pintuan settle``, an audit, a second worker, a backup) may hold SQLite's one
write lock, or a PostgreSQL row lock, for a while. Writes then answer 503 ``database_busy`` with
``Retry-After`` after a short wait, while reads and ``/healthz`` keep answering at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.time import clock
from pintuan.services import Services
from tests.conftest import _empty_all_tables, make_settings
from tests.factories import create_account, create_deal, create_merchant

QUICK_SECONDS = 1.5


@contextmanager
def sqlite_write_lock_held_elsewhere(database_url: str) -> Iterator[None]:
    """Another connection, as another process would, takes the write lock and keeps it."""
    other = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL row locks")


@contextmanager
def serving(
    database_url: str, *, run_worker: bool = False, **settings: object
) -> Iterator[tuple[TestClient, Services]]:
    """The app on an emptied database with these settings (and its worker, if asked)."""
    configured = make_settings(database_url, **settings)
    services = build_services(configured)
    _empty_all_tables(services.db)
    app = create_app(configured, services, run_worker=run_worker)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, services
    finally:
        services.db.dispose()


@pytest.fixture
def brief_wait(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    """A server that waits a quarter of a second for SQLite's write lock."""
    with serving(database_url, sqlite_request_wait_ms=250) as served:
        yield served


@pytest.mark.usefixtures("sqlite_only")
def test_a_write_answers_503_database_busy_quickly_while_another_process_holds_the_lock(
    brief_wait: tuple[TestClient, Services], database_url: str
) -> None:
    # given a live deal and a shopper, and another process holding SQLite's write lock
    client, services = brief_wait
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    with sqlite_write_lock_held_elsewhere(database_url):
        # when the shopper starts a team (the join path) and someone signs up (a session write)
        started = time.perf_counter()
        team = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
        signup = client.post(
            "/v1/signup",
            json={
                "email": "mei@example.com",
                "password": "a long enough secret",
                "display_name": "Mei",
            },
        )
        elapsed = time.perf_counter() - started

    # then both are refused with a 503 that says to come back, and quickly
    for response in (team, signup):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "database_busy"
        assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < 2 * QUICK_SECONDS

    # and once the lock is gone the same write goes through
    again = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    assert again.status_code == 201, again.text


@pytest.mark.usefixtures("sqlite_only")
def test_reads_and_healthz_answer_at_once_while_another_process_holds_the_lock(
    client: TestClient, services: Services, database_url: str
) -> None:
    # given a live deal, and another process holding SQLite's write lock
    deal = create_deal(services.db, create_merchant(services.db))
    with sqlite_write_lock_held_elsewhere(database_url):
        # when the health probe and a read are asked for
        started = time.perf_counter()
        health = client.get("/healthz")
        read = client.get(f"/v1/deals/{deal.id}")
        elapsed = time.perf_counter() - started

    # then both answer, without waiting for the lock
    assert health.status_code == 200
    assert read.status_code == 200, read.text
    assert elapsed < QUICK_SECONDS


@pytest.mark.usefixtures("sqlite_only")
def test_the_write_wait_is_spent_in_awaits_so_other_requests_are_served_meanwhile(
    services: Services, database_url: str
) -> None:
    # given a server that waits up to two seconds for the write lock
    settings = make_settings(database_url, sqlite_request_wait_ms=2000)
    slow = build_services(settings)
    deal = create_deal(slow.db, create_merchant(slow.db))
    shopper = create_account(slow)
    app = create_app(settings, slow)

    async def scenario() -> tuple[int, int, float]:
        import anyio
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            health_status = 0
            health_seconds = 0.0

            async def probe() -> None:
                nonlocal health_status, health_seconds
                await anyio.sleep(0.3)
                started = time.perf_counter()
                health_status = (await http.get("/healthz")).status_code
                health_seconds = time.perf_counter() - started

            async with anyio.create_task_group() as group:
                group.start_soon(probe)
                write = await http.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
            return write.status_code, health_status, health_seconds

    # when a write waits for a lock held elsewhere and /healthz is asked meanwhile
    import anyio

    with sqlite_write_lock_held_elsewhere(database_url):
        write_status, health_status, health_seconds = anyio.run(scenario)
    slow.db.dispose()

    # then the write is refused in the end, and the probe was answered while it waited
    assert write_status == 503
    assert health_status == 200
    assert health_seconds < 0.5


@contextmanager
def postgres_row_locked_elsewhere(database_url: str, table: str, row_id: str) -> Iterator[None]:
    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as other:
        other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", (row_id,))  # noqa: S608 - a constant table name
        yield
        other.rollback()


@pytest.fixture
def impatient(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    with serving(database_url, db_lock_timeout_ms=300) as served:
        yield served


@pytest.mark.usefixtures("postgres_only")
def test_a_write_waiting_on_a_postgres_row_lock_answers_503_after_the_lock_timeout(
    impatient: tuple[TestClient, Services], database_url: str
) -> None:
    # given a live deal whose row another connection holds locked
    client, services = impatient
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    with postgres_row_locked_elsewhere(database_url, "deals", deal.id):
        # when a shopper starts a team on it
        started = time.perf_counter()
        response = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
        elapsed = time.perf_counter() - started

    # then the write gives up after the lock timeout with a 503 to retry
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_busy"
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < QUICK_SECONDS
    # and reads were never part of the problem
    assert client.get(f"/v1/deals/{deal.id}").status_code == 200


def test_postgres_sessions_carry_the_statement_and_lock_timeouts(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL settings")
    settings = make_settings(database_url, db_statement_timeout_ms=4321, db_lock_timeout_ms=1234)
    services = build_services(settings)
    try:
        with services.db.engine.connect() as conn:
            statement = conn.exec_driver_sql("SHOW statement_timeout").scalar()
            lock = conn.exec_driver_sql("SHOW lock_timeout").scalar()
    finally:
        services.db.dispose()
    assert (statement, lock) == ("4321ms", "1234ms")


@pytest.mark.usefixtures("sqlite_only")
def test_the_in_process_worker_waiting_for_the_lock_never_stalls_the_server(
    database_url: str,
) -> None:
    # given a server sweeping in-process, with a held seat whose hold has run out
    with serving(
        database_url, run_worker=True, sqlite_busy_timeout_ms=3000, worker_idle_seconds=0.05
    ) as (client, services):
        deal = create_deal(services.db, create_merchant(services.db))
        shopper = create_account(services)
        team = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
        assert team.status_code == 201, team.text
        clock.advance(timedelta(hours=1))
        # when another process holds the write lock, so the worker's sweep waits for it
        with sqlite_write_lock_held_elsewhere(database_url):
            time.sleep(0.5)
            started = time.perf_counter()
            health = client.get("/healthz")
            elapsed = time.perf_counter() - started

    # then the server answered at once all the same
    assert health.status_code == 200
    assert elapsed < QUICK_SECONDS
