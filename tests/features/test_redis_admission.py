"""Hot-deal admission in Redis, and the rate limits and in-flight marker that use Redis when it
is configured: the suite's Redis (``PINTUAN_TEST_REDIS_URL``) in front of each database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pintuan.audit.service import audit_database
from pintuan.cli import app as cli
from pintuan.config import Settings, get_settings
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from pintuan.teams import admission
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.redis_support import redis_url  # noqa: F401 (a fixture)

KEYS = admission.KEYS


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:  # noqa: F811
    return make_settings(database_url, redis_url=redis_url)


@pytest.fixture
def store(services: Services) -> Any:
    assert services.redis is not None
    return services.redis.blocking()


def start(client: TestClient, account: Account, deal_id: str) -> Any:
    return client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)


def join(client: TestClient, account: Account, team_id: str, **headers: str) -> Any:
    return client.post(f"/v1/teams/{team_id}/seats", headers={**account.headers, **headers})


def committed(client: TestClient, deal_id: str) -> int:
    return int(client.get(f"/v1/deals/{deal_id}").json()["committed"])


def assert_balanced(services: Services) -> None:
    assert services.redis is not None
    found = admission.balance(services.redis, services.db)
    assert (found.pending, found.deals_off, found.teams_off) == (0, {}, {})


def reconcile(services: Services) -> admission.Reconciled:
    assert services.redis is not None
    return admission.reconcile(services.redis, services.db, utc_now())


def test_a_start_reserves_and_confirms_its_unit_in_redis(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=5)
    reconcile(services)  # a new Redis: the epoch starts

    assert start(client, create_account(services), deal.id).status_code == 201

    assert store.hget(f"{KEYS}deal:{deal.id}", "taken") == "1"
    assert committed(client, deal.id) == 1
    assert_balanced(services)


def test_redis_answers_sold_out_without_the_database_taking_a_unit(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=5)
    reconcile(services)
    assert start(client, create_account(services), deal.id).status_code == 201
    # Redis believes the deal sold out; the database still has four units.
    store.hset(f"{KEYS}deal:{deal.id}", "taken", 5)

    refused = start(client, create_account(services), deal.id)

    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    assert committed(client, deal.id) == 1  # the database was never asked for a unit


def test_redis_answers_team_full_and_the_last_place_is_taken_once(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=10)
    reconcile(services)
    team_id = start(client, create_account(services), deal.id).json()["team"]["id"]

    first = join(client, create_account(services), team_id)
    second = join(client, create_account(services), team_id)

    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (409, "team_full")
    assert committed(client, deal.id) == 2
    assert_balanced(services)


def test_a_refusal_of_redis_still_says_an_unknown_token_is_unknown(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=1)
    reconcile(services)
    assert start(client, create_account(services), deal.id).status_code == 201

    anonymous = client.post(
        f"/v1/deals/{deal.id}/teams", headers={"Authorization": "Bearer pt_nobody"}
    )

    assert anonymous.status_code == 401


def test_a_reservation_the_database_refuses_is_given_back(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, stock=10)
    reconcile(services)
    leader = create_account(services)
    team_id = start(client, leader, deal.id).json()["team"]["id"]

    again = join(client, leader, team_id)  # Redis admits; the database says already a member

    assert (again.status_code, again.json()["code"]) == (409, "already_member")
    assert committed(client, deal.id) == 1
    assert_balanced(services)


def test_a_replayed_keyed_join_gives_its_new_reservation_back(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, stock=10)
    reconcile(services)
    team_id = start(client, create_account(services), deal.id).json()["team"]["id"]
    shopper = create_account(services)

    first = join(client, shopper, team_id, **{"Idempotency-Key": "k1"})
    repeat = join(client, shopper, team_id, **{"Idempotency-Key": "k1"})

    assert first.status_code == repeat.status_code == 201
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert repeat.json() == first.json()
    assert committed(client, deal.id) == 2
    assert_balanced(services)


def test_a_keyed_request_refused_by_redis_stores_the_refusal_for_its_repeats(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=3)
    reconcile(services)
    assert start(client, create_account(services), deal.id).status_code == 201
    store.hset(f"{KEYS}deal:{deal.id}", "taken", 3)
    shopper = create_account(services)
    keyed = {**shopper.headers, "Idempotency-Key": "late"}

    refused = client.post(f"/v1/deals/{deal.id}/teams", headers=keyed)
    reconcile(services)  # Redis learns the deal has units after all
    repeat = client.post(f"/v1/deals/{deal.id}/teams", headers=keyed)

    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    assert repeat.status_code == 409
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert start(client, shopper, deal.id).status_code == 201  # without the key: a new request


def test_a_reservation_never_confirmed_nor_given_back_expires(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=1)
    reconcile(services)
    # A process reserved the deal's only unit, then died before its transaction.
    ticket = asyncio.run(admission.admit(services, utc_now(), deal_id=deal.id))
    assert ticket.member is not None
    refused = start(client, create_account(services), deal.id)
    assert refused.json()["code"] == "sold_out"

    clock.offset = timedelta(seconds=services.settings.redis_reservation_seconds + 1)
    taken = start(client, create_account(services), deal.id)

    assert taken.status_code == 201, taken.text
    assert committed(client, deal.id) == 1
    assert_balanced(services)


def test_the_reconciler_returns_units_the_database_released(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=1)
    reconcile(services)
    leader = create_account(services)
    seat_id = start(client, leader, deal.id).json()["seat"]["id"]
    # The database gives the unit back; Redis does not hear of it until the reconciler runs.
    assert client.post(f"/v1/seats/{seat_id}/cancel", headers=leader.headers).status_code == 200
    assert start(client, create_account(services), deal.id).json()["code"] == "sold_out"

    reconcile(services)

    assert start(client, create_account(services), deal.id).status_code == 201
    assert_balanced(services)


def test_after_redis_loses_everything_joins_go_on_and_the_reconciler_rebuilds(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, stock=4)
    reconcile(services)
    team_id = start(client, create_account(services), deal.id).json()["team"]["id"]
    store.flushdb()  # as a restart without persistence leaves it (this database is ours alone)

    assert join(client, create_account(services), team_id).status_code == 201
    assert reconcile(services).restarted is False  # the API began the new epoch itself
    assert join(client, create_account(services), team_id).status_code == 201
    full = join(client, create_account(services), team_id)

    assert full.json()["code"] == "team_full"
    assert committed(client, deal.id) == 3
    assert_balanced(services)


def test_a_restart_from_a_snapshot_is_told_by_the_run_id_and_wiped(
    client: TestClient, services: Services, store: Any
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=4)
    reconcile(services)
    assert start(client, create_account(services), deal.id).status_code == 201
    # Counters restored from an older snapshot: another run id, a stale count.
    store.set(admission.EPOCH, "an-older-run")
    store.hset(f"{KEYS}deal:{deal.id}", "taken", 4)

    done = reconcile(services)

    assert done.restarted is True
    assert store.exists(f"{KEYS}deal:{deal.id}") == 0
    assert start(client, create_account(services), deal.id).status_code == 201
    assert_balanced(services)


def test_the_worker_reconciles_and_the_audit_stays_clean(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=3)
    Worker(services).tick()  # starts the epoch
    team_id = start(client, create_account(services), deal.id).json()["team"]["id"]
    assert join(client, create_account(services), team_id).status_code == 201

    Worker(services).run_until_idle()

    assert_balanced(services)
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def test_pintuan_reconcile_admission_rebuilds_the_counters(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), stock=3)
    reconcile(services)
    assert start(client, create_account(services), deal.id).status_code == 201
    monkeypatch.setenv("PINTUAN_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("PINTUAN_REDIS_URL", str(services.settings.redis_url))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["reconcile-admission"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert "Reconciled 1 deal and 0 team counters" in result.output


def test_sign_up_attempts_are_counted_in_redis(
    database_url: str,
    redis_url: str,  # noqa: F811
) -> None:
    settings = make_settings(database_url, redis_url=redis_url, signups_per_address=2)
    from pintuan.app import create_app
    from pintuan.bootstrap import build_services

    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            answers = [
                client.post(
                    "/v1/signup",
                    json={
                        "email": f"limit{n}@example.com",
                        "password": "correct horse battery",
                        "display_name": "Ann",
                    },
                ).status_code
                for n in range(3)
            ]
    finally:
        services.db.dispose()
    assert answers[2] == 429
    counted = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = counted.keys("pintuan:limit:signup:address:*")
    assert len(keys) == 1
    assert counted.get(keys[0]) == "3"


def test_a_repeat_meeting_the_in_flight_marker_is_refused_before_the_database(
    client: TestClient, services: Services, store: Any
) -> None:
    # A first request with this key is running in another process: its marker is up.
    store.set("pintuan:inflight:addr:testclient\nsame", "someone-else", px=60_000)
    body = {
        "email": "marker@example.com",
        "password": "correct horse battery",
        "display_name": "Ann",
    }

    repeat = client.post("/v1/signup", json=body, headers={"Idempotency-Key": "same"})

    assert (repeat.status_code, repeat.json()["code"]) == (409, "idempotency_in_progress")
    store.delete("pintuan:inflight:addr:testclient\nsame")
    first = client.post("/v1/signup", json=body, headers={"Idempotency-Key": "same"})
    assert first.status_code == 201, first.text
    assert store.exists("pintuan:inflight:addr:testclient\nsame") == 0  # taken down when done
