"""The join, the start and buying alone run the caller's token lookup, the Idempotency-Key's
claim, the work and its stored answer as one transaction: a repeat is answered from the store,
a refusal is stored with nothing of the work left, and a failure leaves no claim behind."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal, Role
from pintuan.idempotency.http import request_fingerprint
from pintuan.idempotency.models import IdempotencyKey
from pintuan.idempotency.runner import Answer, KeyRequest, run_raw_in_one
from pintuan.idempotency.service import StoredResponse, claim_key, write_answer
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_idempotency_effects import LEASE

TAKE_STOCK = Sql("UPDATE deals SET committed = committed + 1 WHERE id = :id RETURNING id")


def count(services: Services, table: Any) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(table))))


def committed(services: Services, deal_id: str) -> int:
    return int(services.db.run_sync(lambda s: s.get(Deal, deal_id).committed))


def keys(services: Services) -> list[IdempotencyKey]:
    return services.db.run_sync(lambda s: list(s.scalars(select(IdempotencyKey))))


@pytest.fixture
def team(client: TestClient, services: Services) -> tuple[str, str]:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers)
    assert started.status_code == 201, started.text
    return deal.id, started.json()["team"]["id"]


def join(client: TestClient, shopper: Account, team_id: str, key: str | None) -> Any:
    headers = {**shopper.headers, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/v1/teams/{team_id}/seats", headers=headers)


def test_a_repeated_keyed_join_is_answered_from_the_store_with_one_seat(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    deal_id, team_id = team
    shopper = create_account(services)

    first = join(client, shopper, team_id, "join-1")
    again = join(client, shopper, team_id, "join-1")

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(services, Seat) == 2
    assert committed(services, deal_id) == 2
    [stored] = keys(services)
    assert stored.scope == f"user:{shopper.user_id}"
    assert stored.response_status == 201


def test_a_refused_keyed_join_stores_the_refusal_and_keeps_nothing_of_the_work(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    # given a shopper already in the team (per-user limit 1)
    deal_id, team_id = team
    shopper = create_account(services)
    assert join(client, shopper, team_id, None).status_code == 201
    stock_before = committed(services, deal_id)

    # when they join again with a key, twice
    refused = join(client, shopper, team_id, "again-1")
    repeated = join(client, shopper, team_id, "again-1")

    # then the refusal is answered, then replayed, and no stock, place or seat was taken
    assert refused.status_code == 409, refused.text
    assert (repeated.status_code, repeated.json()) == (409, refused.json())
    assert repeated.headers["Idempotent-Replayed"] == "true"
    assert committed(services, deal_id) == stock_before
    taken = services.db.run_sync(lambda s: s.get(Team, team_id).taken)
    assert taken == 2
    assert count(services, Seat) == 2
    [stored] = keys(services)
    assert stored.response_status == 409


def test_a_failure_inside_the_join_leaves_no_claim_and_nothing_half_done(
    client: TestClient,
    services: Services,
    team: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if services.db.dialect == "postgresql":
        pytest.skip(
            "on PostgreSQL the join is one statement (pintuan_join_team): nothing runs between "
            "its steps to fail, and test_join_postgres holds it to the statement path"
        )
    # given a join that fails after taking stock and a place (the process dying there)
    deal_id, team_id = team
    shopper = create_account(services)
    stock_before = committed(services, deal_id)
    real = teams.record_event

    def dies(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(teams, "record_event", dies)
    failed = TestClient(client.app, raise_server_exceptions=False).post(
        f"/v1/teams/{team_id}/seats",
        headers={**shopper.headers, "Idempotency-Key": "crash-1"},
    )

    # then nothing of it is left: no stock, place, seat nor claim
    assert failed.status_code == 500
    assert committed(services, deal_id) == stock_before
    assert count(services, Seat) == 1
    assert keys(services) == []

    # and the same request with the same key succeeds at once, without waiting for a lease
    monkeypatch.setattr(teams, "record_event", real)
    retried = join(client, shopper, team_id, "crash-1")
    assert retried.status_code == 201, retried.text
    assert count(services, Seat) == 2


def test_a_key_another_request_still_holds_refuses_the_join_and_changes_nothing(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    deal_id, team_id = team
    shopper = create_account(services)
    path = f"/v1/teams/{team_id}/seats"
    services.db.run_raw_sync(
        claim_key,
        f"user:{shopper.user_id}",
        "held-elsewhere",
        request_fingerprint("POST", path, b""),
        "another-request",
        LEASE,
    )

    response = join(client, shopper, team_id, "held-elsewhere")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert committed(services, deal_id) == 1
    assert count(services, Seat) == 1


def test_an_unknown_token_with_a_key_is_refused_and_claims_nothing(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    _, team_id = team

    response = client.post(
        f"/v1/teams/{team_id}/seats",
        headers={"Authorization": "Bearer not-a-token", "Idempotency-Key": "who-1"},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert keys(services) == []
    assert count(services, Seat) == 1


def test_the_same_key_of_two_shoppers_are_two_keys(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    _, team_id = team
    one, other = create_account(services), create_account(services)

    first = join(client, one, team_id, "shared-key")
    second = join(client, other, team_id, "shared-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["seat"]["id"] != second.json()["seat"]["id"]
    assert "Idempotent-Replayed" not in second.headers


def test_a_keyed_join_by_token_is_one_transaction(
    client: TestClient,
    services: Services,
    team: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given every unit of work the app runs, counted
    _, team_id = team
    shopper = create_account(services)
    join(client, shopper, team_id, None)  # its token's last use is recorded now, not below
    other_deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    other_team = client.post(
        f"/v1/deals/{other_deal.id}/teams", headers=create_account(services).headers
    ).json()["team"]["id"]
    units: list[str] = []
    for name in ("run", "run_raw"):
        real = getattr(services.db, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            units.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(services.db, name, counted)

    # when the shopper joins another team with a key
    response = join(client, shopper, other_team, "one-transaction")

    # then the lookup, the claim, the join and its answer took one transaction
    assert response.status_code == 201, response.text
    assert units == ["run_raw"]


def test_a_key_answered_elsewhere_meanwhile_undoes_the_work_and_answers_what_was_stored(
    services: Services, team: tuple[str, str]
) -> None:
    if services.db.is_sqlite:
        pytest.skip("SQLite's one writer holds the lock from the key's read to the commit")
    # given a keyed unit of work during which another request answers the same key
    deal_id, _ = team
    shopper = create_account(services)
    principal = Principal(shopper.user_id, Role.SHOPPER, "x", "en", "UTC", frozenset())
    request = KeyRequest("raced-1", request_fingerprint("POST", "/raced", b""), "/raced")
    claim = request.claim_for(principal)
    elsewhere = StoredResponse(201, '{"answered": "elsewhere"}', "application/json")
    before = committed(services, deal_id)

    def answer_elsewhere(tx: RawTx) -> None:
        write_answer(
            tx, claim.scope, claim.key, claim.fingerprint, "elsewhere", elsewhere,
            timedelta(hours=1), expired=False,
        )  # fmt: skip

    def work(tx: RawTx, _: Principal) -> str:
        tx.one(TAKE_STOCK, {"id": deal_id})
        services.db.run_raw_sync(answer_elsewhere)  # commits on another connection
        return '{"answered": "here"}'

    # when the unit commits
    answer = asyncio.run(run_raw_in_one(services, lambda tx: principal, request, work))

    # then its work is undone and it answers what the other request stored
    assert answer == Answer(elsewhere, replayed=True)
    assert committed(services, deal_id) == before
    [stored] = keys(services)
    assert stored.holder == "elsewhere"


def test_an_expired_answer_under_the_key_is_replaced_by_the_new_request(
    client: TestClient, services: Services, team: tuple[str, str]
) -> None:
    # given an answer stored under the key a day and more ago, past its time to live
    _, team_id = team
    shopper = create_account(services)
    path = f"/v1/teams/{team_id}/seats"
    old = utc_now() - timedelta(days=2)

    def store_old(session: Session) -> None:
        session.add(
            IdempotencyKey(
                scope=f"user:{shopper.user_id}", key="old-1", holder="old",
                request_hash=request_fingerprint("POST", path, b""), response_status=409,
                response_body="{}", response_content_type="application/problem+json",
                created_at=old, expires_at=old + timedelta(hours=1),
            )
        )  # fmt: skip

    services.db.run_sync(store_old)

    # when the shopper joins with that key
    response = join(client, shopper, team_id, "old-1")

    # then the join runs and its answer replaces the old one
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    [stored] = keys(services)
    assert (stored.response_status, stored.holder != "old") == (201, True)
    assert stored.expires_at > utc_now()


def test_a_repeat_whose_work_fails_is_still_answered_from_the_store(
    services: Services, team: tuple[str, str]
) -> None:
    # given a key whose answer is stored, and a repeat whose work fails for a reason of its own
    # (on PostgreSQL the work runs before the stored answer is looked at: a lock that timed
    # out on a hot deal, say)
    deal_id, _ = team
    shopper = create_account(services)
    principal = Principal(shopper.user_id, Role.SHOPPER, "x", "en", "UTC", frozenset())
    request = KeyRequest("failing-1", request_fingerprint("POST", "/failing", b""), "/failing")
    stored = StoredResponse(201, '{"answered": "first"}', "application/json")
    calls: list[str] = []

    def first(tx: RawTx, _: Principal) -> str:
        tx.one(TAKE_STOCK, {"id": deal_id})
        return stored.body

    def fails(tx: RawTx, _: Principal) -> str:
        calls.append("repeat")
        tx.one(TAKE_STOCK, {"id": deal_id})
        raise RuntimeError("the database went away")

    asyncio.run(run_raw_in_one(services, lambda tx: principal, request, first, status_code=201))
    before = committed(services, deal_id)

    # when the repeat comes
    answer = asyncio.run(run_raw_in_one(services, lambda tx: principal, request, fails))

    # then it gets the stored answer, as on either database, and nothing of its work is kept
    assert answer == Answer(stored, replayed=True)
    assert committed(services, deal_id) == before
    assert len(calls) == (0 if services.db.is_sqlite else 1)
