"""Reads that may be a little stale come from a real streaming replica; writes, the reads they
depend on and a shopper's own pages right after they act come from the primary; a replica that
lags past the threshold or is down loses its reads to the primary, and says so in /readyz and
/metrics. Lag is made with ``pg_wal_replay_pause()`` on the replica."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.replica import READ_PRIMARY_COOKIE
from pintuan.services import Services
from tests.conftest import _empty_all_tables
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_shopper_pages import HTML, log_in, submit
from tests.replica.conftest import (
    Replication,
    reading_from_replica,
    replica_health,
    replica_settings,
    wait_for,
)

pytestmark = pytest.mark.postgres


def deal_titles(client: TestClient) -> set[str]:
    answer = client.get("/v1/deals", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    return {d["title"] for d in answer.json()["data"]}


def metric(client: TestClient, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.M)
    assert found, f"/metrics has no {name}"
    return float(found.group(1))


def served_by(client: TestClient, where: str) -> float:
    return metric(client, f'pintuan_stale_reads_total{{served_by="{where}"}}')


@pytest.fixture
def lag_threshold_of_one_second(replication: Replication) -> Iterator[TestClient]:
    services = build_services(replica_settings(replication, replica_max_lag_seconds=1.0))
    _empty_all_tables(services.db)
    replication.catch_up()
    with TestClient(create_app(services.settings, services)) as client:
        wait_for(lambda: reading_from_replica(client), "reads use the replica")
        yield client
    replication.resume()
    services.db.dispose()


def test_deal_lists_are_read_from_the_replica_while_it_is_fresh_enough(
    replication: Replication, replicated_services: Services, replicated_client: TestClient
) -> None:
    merchant = create_merchant(replicated_services.db)
    create_deal(replicated_services.db, merchant, title="Replayed hotpot")
    replication.catch_up()
    replication.pause()
    late = create_deal(replicated_services.db, merchant, title="Not yet replayed")
    before = served_by(replicated_client, "replica")

    titles = deal_titles(replicated_client)

    # the list came from the paused replica: it has the first deal, not the second
    assert titles == {"Replayed hotpot"}
    assert served_by(replicated_client, "replica") == before + 1
    # a single deal (read before a shopper acts on it) comes from the primary
    assert replicated_client.get(f"/v1/deals/{late.id}").json()["title"] == "Not yet replayed"
    replication.resume()
    wait_for(lambda: deal_titles(replicated_client) == {"Replayed hotpot", "Not yet replayed"}, "")


def test_a_shopper_sees_their_own_order_right_after_joining_while_the_replica_is_paused(
    replication: Replication, replicated_services: Services, replicated_client: TestClient
) -> None:
    client = replicated_client
    deal = create_deal(
        replicated_services.db, create_merchant(replicated_services.db), title="Dumplings"
    )
    shopper = create_account(replicated_services)
    log_in(client, shopper)
    replication.catch_up()
    assert "Dumplings" not in client.get("/orders", headers=HTML).text
    replication.pause()

    _, started = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    assert started.status_code == 303  # type: ignore[attr-defined]
    marker = client.cookies.get(READ_PRIMARY_COOKIE)
    own_orders = client.get("/orders", headers=HTML).text
    client.cookies.delete(READ_PRIMARY_COOKIE)
    unmarked = client.get("/orders", headers=HTML).text

    # the join's answer marked the shopper; marked, their orders come from the primary
    assert marker is not None
    assert "Dumplings" in own_orders
    # the same page without the marker is a replica read, and the paused replica lacks the order
    assert "Dumplings" not in unmarked


def test_a_refused_write_leaves_no_marker_and_reads_keep_using_the_replica(
    replication: Replication, replicated_services: Services, replicated_client: TestClient
) -> None:
    refused = replicated_client.post("/v1/sessions", json={"email": "x@example.com"})

    assert refused.status_code == 422
    assert READ_PRIMARY_COOKIE not in replicated_client.cookies
    assert reading_from_replica(replicated_client)


def test_reads_fall_back_to_the_primary_past_the_lag_threshold_and_return_when_it_recovers(
    replication: Replication, lag_threshold_of_one_second: TestClient
) -> None:
    client = lag_threshold_of_one_second
    db_services: Services = client.app.state.services  # type: ignore[attr-defined]
    replication.pause()
    create_deal(db_services.db, create_merchant(db_services.db), title="Written while paused")

    wait_for(lambda: replica_health(client)["status"] == "lagging", "the replica counts as lagging")
    health = replica_health(client)
    titles = deal_titles(client)
    lag_metric = metric(client, "pintuan_replica_lag_seconds")
    serving = metric(client, "pintuan_replica_serving")

    assert health["reads"] == "primary"
    assert isinstance(health["lag_seconds"], float)
    assert health["lag_seconds"] >= 1.0
    assert isinstance(health["lag_bytes"], int)
    assert health["lag_bytes"] > 0
    assert lag_metric >= 1.0
    assert serving == 0
    # past the threshold the list is the primary's, with what the replica has not replayed
    assert titles == {"Written while paused"}

    replication.resume()
    wait_for(lambda: reading_from_replica(client), "reads use the replica again")
    recovered = replica_health(client)
    assert recovered["status"] == "streaming"
    assert isinstance(recovered["lag_seconds"], float)
    assert recovered["lag_seconds"] < 1.0
    assert metric(client, "pintuan_replica_serving") == 1


def _pg_ctl(replication: Replication, action: str) -> None:
    version = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))[-1].name
    folder = Path(replication.folder)
    subprocess.run(  # noqa: S603 - PostgreSQL's own tool on the replica's own folder
        [  # noqa: S607 - found on PATH, as in a shell
            "runuser",
            "-u",
            "postgres",
            "--",
            f"/usr/lib/postgresql/{version}/bin/pg_ctl",
            "-D",
            str(folder / "replica"),
            "-l",
            str(folder / "replica.log"),
            "-m",
            "fast",
            "-w",
            action,
        ],
        cwd="/",
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_a_replica_that_goes_down_sends_reads_to_the_primary_and_readyz_says_so(
    replication: Replication, replicated_services: Services, replicated_client: TestClient
) -> None:
    client = replicated_client
    create_deal(replicated_services.db, create_merchant(replicated_services.db), title="Noodles")
    _pg_ctl(replication, "stop")
    try:
        wait_for(lambda: replica_health(client)["status"] == "down", "the replica counts as down")
        health = replica_health(client)
        titles = deal_titles(client)
        lag = metric(client, "pintuan_replica_lag_seconds")
    finally:
        _pg_ctl(replication, "start")

    assert health == {"status": "down", "lag_seconds": None, "lag_bytes": None, "reads": "primary"}
    assert titles == {"Noodles"}
    assert lag == -1
    wait_for(lambda: reading_from_replica(client), "reads use the restarted replica")
