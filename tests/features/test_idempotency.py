"""Idempotency-Key: one effect and one answer per caller and key."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.idempotency.http import request_fingerprint
from pintuan.idempotency.models import IdempotencyKey
from pintuan.idempotency.service import claim_key
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.console_data import start_over_api
from tests.factories import create_account, create_deal, create_merchant, deal_body


def deal_count(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Deal)))


def staff_of_new_merchant(services: Services) -> tuple[Any, Any]:
    merchant = create_merchant(services.db)
    return merchant, create_account(services, role=Role.MERCHANT, merchant=merchant)


def test_a_repeated_request_replays_the_first_answer_and_creates_one_deal(
    client: TestClient, services: Services
) -> None:
    merchant, staff = staff_of_new_merchant(services)
    headers = {**staff.headers, "Idempotency-Key": "create-hotpot-1"}
    body = deal_body(merchant.id)

    first = client.post("/v1/deals", json=body, headers=headers)
    second = client.post("/v1/deals", json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert deal_count(services) == 1


def test_the_same_key_with_a_different_body_is_refused(
    client: TestClient, services: Services
) -> None:
    merchant, staff = staff_of_new_merchant(services)
    headers = {**staff.headers, "Idempotency-Key": "k1"}
    client.post("/v1/deals", json=deal_body(merchant.id), headers=headers)

    response = client.post("/v1/deals", json=deal_body(merchant.id, stock=7), headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_mismatch"
    assert deal_count(services) == 1


def test_a_repeat_while_the_first_is_still_running_gets_409(
    client: TestClient, services: Services
) -> None:
    merchant, staff = staff_of_new_merchant(services)
    body = deal_body(merchant.id)
    raw = json.dumps(body).encode()
    # The first request has claimed the key and not finished (as another process would).
    services.db.run_raw_sync(
        claim_key,
        f"user:{staff.user_id}",
        "slow-1",
        request_fingerprint("POST", "/v1/deals", raw),
        "the-first-request",
        timedelta(seconds=60),
    )

    response = client.post(
        "/v1/deals",
        content=raw,
        headers={**staff.headers, "Idempotency-Key": "slow-1", "Content-Type": "application/json"},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert deal_count(services) == 0


def test_a_refusal_is_replayed_too(client: TestClient, services: Services) -> None:
    merchant, staff = staff_of_new_merchant(services)
    deal = create_deal(services.db, merchant, live=False)
    headers = {**staff.headers, "Idempotency-Key": "pause-draft"}

    first = client.post(f"/v1/deals/{deal.id}/pause", headers=headers)
    client.post(f"/v1/deals/{deal.id}/publish", headers=staff.headers)
    second = client.post(f"/v1/deals/{deal.id}/pause", headers=headers)

    assert first.status_code == second.status_code == 409
    assert first.json() == second.json()
    assert client.get(f"/v1/deals/{deal.id}").json()["status"] == "live"


def test_keys_are_scoped_per_caller(client: TestClient, services: Services) -> None:
    merchant, staff = staff_of_new_merchant(services)
    colleague = create_account(services, role=Role.MERCHANT, merchant=merchant)
    body = deal_body(merchant.id)

    for account in (staff, colleague):
        response = client.post(
            "/v1/deals", json=body, headers={**account.headers, "Idempotency-Key": "same"}
        )
        assert response.status_code == 201

    assert deal_count(services) == 2


def test_an_expired_key_can_be_used_again(client: TestClient, services: Services) -> None:
    merchant, staff = staff_of_new_merchant(services)
    headers = {**staff.headers, "Idempotency-Key": "old"}
    client.post("/v1/deals", json=deal_body(merchant.id), headers=headers)
    services.db.run_sync(
        lambda s: s.execute(
            update(IdempotencyKey).values(expires_at=utc_now() - timedelta(seconds=1))
        )
    )

    again = client.post("/v1/deals", json=deal_body(merchant.id), headers=headers)

    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert deal_count(services) == 2


def test_a_request_that_fails_validation_stores_no_key(
    client: TestClient, services: Services
) -> None:
    merchant, staff = staff_of_new_merchant(services)
    headers = {**staff.headers, "Idempotency-Key": "bad-then-good"}

    bad = client.post("/v1/deals", json=deal_body(merchant.id, team_size=1), headers=headers)
    good = client.post("/v1/deals", json=deal_body(merchant.id), headers=headers)

    assert bad.status_code == 422
    assert good.status_code == 201


def test_an_oversized_key_is_refused(client: TestClient, services: Services) -> None:
    merchant, staff = staff_of_new_merchant(services)

    response = client.post(
        "/v1/deals",
        json=deal_body(merchant.id),
        headers={**staff.headers, "Idempotency-Key": "k" * 256},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert deal_count(services) == 0


def test_a_keyed_join_is_one_seat_one_answer_and_its_key_follows_every_rule(
    client: TestClient, services: Services
) -> None:
    # The join runs its key, its caller and its work in one transaction; on SQLite it reads
    # the key and writes it once, answer included, instead of claiming it first.
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3)
    team_id = start_over_api(client, create_account(services), deal.id).team_id
    shopper = create_account(services)
    keyed = {**shopper.headers, "Idempotency-Key": "join-1"}
    path = f"/v1/teams/{team_id}/seats"

    first = client.post(path, headers=keyed)
    again = client.post(path, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"

    # the same key for another request is refused, and changes nothing
    other = client.post(f"/v1/deals/{deal.id}/teams", headers=keyed)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_mismatch")

    # a refusal is kept and replayed: joining a team one is in already
    refused_key = {**shopper.headers, "Idempotency-Key": "join-2"}
    refused = client.post(path, headers=refused_key)
    assert refused.status_code == 409
    replayed = client.post(path, headers=refused_key)
    assert (replayed.status_code, replayed.json()) == (409, refused.json())
    assert replayed.headers["idempotent-replayed"] == "true"

    # a key past its time is free again, its row replaced by the new request's answer
    services.db.run_sync(
        lambda s: s.execute(
            update(IdempotencyKey).values(expires_at=utc_now() - timedelta(seconds=1))
        )
    )
    other_deal = create_deal(services.db, merchant, team_size=3)  # a shopper's limit is per deal
    other_team = start_over_api(client, create_account(services), other_deal.id)
    other_path = f"/v1/teams/{other_team.team_id}/seats"
    reused = client.post(other_path, headers=keyed)
    assert reused.status_code == 201
    assert "idempotent-replayed" not in reused.headers
    kept = client.post(other_path, headers=keyed)
    assert (kept.json(), kept.headers["idempotent-replayed"]) == (reused.json(), "true")
    assert len(client.get(f"/v1/teams/{team_id}").json()["members"]) == 2  # leader, shopper

    # a key another request holds (claimed, no answer yet) is refused as in progress
    third = create_account(services)
    fingerprint = request_fingerprint("POST", path, b"")
    services.db.run_raw_sync(
        lambda tx: claim_key(
            tx, f"user:{third.user_id}", "join-3", fingerprint, "other", timedelta(minutes=1)
        )
    )
    held = client.post(path, headers={**third.headers, "Idempotency-Key": "join-3"})
    assert (held.status_code, held.json()["code"]) == (409, "idempotency_in_progress")
