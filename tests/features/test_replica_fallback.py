"""Without a replica nothing changes; with one that never answers, or that is no replica at all,
stale-tolerant reads use the primary and /readyz says why. (A real streaming replica, paused to
make lag, is in tests/replica.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.replica import READ_PRIMARY_COOKIE
from pintuan.services import Services
from tests.conftest import _empty_all_tables, make_settings
from tests.factories import PASSWORD, create_account, create_deal, create_merchant


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_replica(database_url: str, replica_url: str) -> Iterator[tuple[TestClient, Services]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("a read replica is a PostgreSQL setting")
    settings = make_settings(
        database_url, database_replica_url=replica_url, replica_sample_seconds=0.1
    )
    services = build_services(settings)
    _empty_all_tables(services.db)
    with TestClient(create_app(settings, services)) as client:
        yield client, services
    services.db.dispose()


def _replica_status(client: TestClient, wanted: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        health = client.get("/readyz").json()["replica"]
        if health["status"] == wanted or time.monotonic() > deadline:
            assert isinstance(health, dict)
            return health
        time.sleep(0.05)


@pytest.fixture
def replica_down(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    url = make_url(database_url).set(port=_closed_port())
    yield from _with_replica(database_url, url.render_as_string(hide_password=False))


@pytest.fixture
def primary_as_replica(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    yield from _with_replica(database_url, database_url)


def test_without_a_replica_a_write_leaves_no_marker_and_readyz_names_none(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)

    signed_in = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})

    assert signed_in.status_code == 201
    assert READ_PRIMARY_COOKIE not in signed_in.cookies
    assert "replica" not in client.get("/readyz").json()


def test_a_replica_that_never_answers_leaves_reads_to_the_primary_and_readyz_says_down(
    replica_down: tuple[TestClient, Services],
) -> None:
    client, services = replica_down
    create_deal(services.db, create_merchant(services.db), title="Still listed")
    account = create_account(services)

    health = _replica_status(client, "down")
    listed = client.get("/v1/deals").json()["data"]
    ready = client.get("/readyz")
    signed_in = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})

    assert health == {"status": "down", "lag_seconds": None, "lag_bytes": None, "reads": "primary"}
    assert [d["title"] for d in listed] == ["Still listed"]
    assert ready.status_code == 200  # the process still serves: its reads have the primary
    assert signed_in.status_code == 201
    assert READ_PRIMARY_COOKIE in signed_in.cookies


def test_a_replica_url_naming_a_primary_is_not_used_as_a_replica(
    primary_as_replica: tuple[TestClient, Services],
) -> None:
    client, _ = primary_as_replica

    health = _replica_status(client, "not_a_replica")

    assert health["status"] == "not_a_replica"
    assert health["reads"] == "primary"
