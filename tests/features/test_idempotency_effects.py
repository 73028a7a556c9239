"""Idempotency before side effects: keys claimed before any write or provider call, answers
holding a secret never stored, and claims of crashed requests that lapse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.accounts.models import ApiToken
from pintuan.domain.payments import CheckoutRequest, ProviderError
from pintuan.idempotency.http import request_fingerprint
from pintuan.idempotency.models import IdempotencyKey
from pintuan.idempotency.service import StoredResponse, claim_key, release_key, store_response
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxProvider
from pintuan.services import Services
from tests.factories import PASSWORD, Account, create_account, create_deal, create_merchant

LEASE = timedelta(seconds=60)  # the default idempotency_lease_seconds
JSON = {"Content-Type": "application/json"}


def count(services: Services, table: Any) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(table))))


def stored_keys(services: Services) -> list[IdempotencyKey]:
    return services.db.run_sync(lambda s: list(s.scalars(select(IdempotencyKey))))


def no_stored_copy_of(services: Services, secret: str) -> bool:
    return all(secret not in (k.response_body or "") for k in stored_keys(services))


def held_seat(client: TestClient, services: Services) -> tuple[Account, str]:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    assert started.status_code == 201, started.text
    return shopper, started.json()["seat"]["id"]


def topup(client: TestClient, shopper: Account, key: str, amount: int = 5000) -> Any:
    return client.post(
        "/v1/me/wallet/topups",
        json={"amount": {"amount": amount, "currency": "USD"}},
        headers={**shopper.headers, "Idempotency-Key": key},
    )


# ------------------------------------------------------------------ payments and top-ups


def test_repeated_top_ups_with_one_key_make_one_payment_and_one_checkout(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)

    answers = [topup(client, shopper, "topup-1") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    assert count(services, Payment) == 1
    assert count(services, SandboxIntent) == 1


def test_repeated_seat_payments_with_one_key_make_one_payment_and_one_checkout(
    client: TestClient, services: Services
) -> None:
    shopper, seat_id = held_seat(client, services)
    headers = {**shopper.headers, "Idempotency-Key": "pay-1"}

    answers = [
        client.post(f"/v1/seats/{seat_id}/payments", json={}, headers=headers) for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].json() == answers[2].json()
    assert answers[2].headers["idempotent-replayed"] == "true"
    assert count(services, Payment) == 1
    assert count(services, SandboxIntent) == 1


def test_a_payment_by_pay_link_claims_its_key_before_the_checkout(
    client: TestClient, services: Services
) -> None:
    shopper, seat_id = held_seat(client, services)
    link = client.post(f"/v1/seats/{seat_id}/pay-links", headers=shopper.headers).json()
    friend = create_account(services)
    headers = {**friend.headers, "Idempotency-Key": "friend-pays"}

    first = client.post(f"/v1/pay-links/{link['token']}/payments", json={}, headers=headers)
    second = client.post(f"/v1/pay-links/{link['token']}/payments", json={}, headers=headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert count(services, SandboxIntent) == 1


def test_a_pay_link_is_computed_not_stored_so_its_token_stays_out_of_the_key_store(
    client: TestClient, services: Services
) -> None:
    shopper, seat_id = held_seat(client, services)
    headers = {**shopper.headers, "Idempotency-Key": "link-1"}

    first = client.post(f"/v1/seats/{seat_id}/pay-links", headers=headers)
    second = client.post(f"/v1/seats/{seat_id}/pay-links", headers=headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert no_stored_copy_of(services, first.json()["token"])


def test_a_key_claimed_by_a_request_still_running_refuses_a_top_up_before_any_checkout(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    first = topup(client, shopper, "seen")
    assert first.status_code == 201
    body = b'{"amount": {"amount": 5000, "currency": "USD"}}'
    services.db.run_raw_sync(
        claim_key,
        f"user:{shopper.user_id}",
        "running",
        request_fingerprint("POST", "/v1/me/wallet/topups", body),
        "another-request",
        LEASE,
    )

    response = client.post(
        "/v1/me/wallet/topups",
        content=body,
        headers={
            **shopper.headers,
            "Idempotency-Key": "running",
            "Content-Type": "application/json",
        },
    )

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert count(services, Payment) == 1
    assert count(services, SandboxIntent) == 1


def test_a_checkout_the_provider_could_not_open_frees_the_key_for_a_retry(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    shopper = create_account(services)
    opened = SandboxProvider.create_checkout

    def down(self: SandboxProvider, request: CheckoutRequest) -> Any:
        raise ProviderError("the sandbox is down")

    monkeypatch.setattr(SandboxProvider, "create_checkout", down)
    failed = topup(client, shopper, "retry-me")
    monkeypatch.setattr(SandboxProvider, "create_checkout", opened)
    retried = topup(client, shopper, "retry-me")

    assert failed.status_code == 502
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["status"] == "requires_action"
    assert count(services, SandboxIntent) == 1


# ------------------------------------------------------------------ secrets shown once


def test_a_new_token_is_not_kept_in_the_key_store_and_a_repeat_is_refused(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    headers = {**shopper.headers, "Idempotency-Key": "token-1"}

    created = client.post("/v1/me/tokens", json={"name": "laptop"}, headers=headers)
    repeat = client.post("/v1/me/tokens", json={"name": "laptop"}, headers=headers)

    assert created.status_code == 201
    secret = created.json()["token"]
    assert no_stored_copy_of(services, secret)
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_secret_not_replayed"
    assert "shown only once" in repeat.json()["detail"]
    assert secret not in repeat.text
    assert count(services, ApiToken) == 2  # the factory's and the one created


def test_a_token_exchanged_for_a_password_is_not_kept_either(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    body = {"email": shopper.email, "password": PASSWORD, "name": "cli"}
    headers = {"Idempotency-Key": "login-token"}

    created = client.post("/v1/tokens", json=body, headers=headers)
    repeat = client.post("/v1/tokens", json=body, headers=headers)

    assert created.status_code == 201
    assert all(
        created.json()["token"] not in (k.response_body or "") for k in stored_keys(services)
    )
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_secret_not_replayed"


# ------------------------------------------------------------------ leases


def test_a_key_left_in_progress_by_a_crashed_request_frees_itself_after_the_lease(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    body = b'{"amount": {"amount": 5000, "currency": "USD"}}'
    # A process claimed the key and died before answering.
    services.db.run_raw_sync(
        claim_key,
        f"user:{shopper.user_id}",
        "orphan",
        request_fingerprint("POST", "/v1/me/wallet/topups", body),
        "crashed-request",
        LEASE,
    )
    headers = {**shopper.headers, "Idempotency-Key": "orphan", **JSON}

    clock.offset = LEASE / 2  # well within: a slow machine may take seconds to get here
    within = client.post("/v1/me/wallet/topups", content=body, headers=headers)
    clock.offset = LEASE + timedelta(seconds=1)
    after = client.post("/v1/me/wallet/topups", content=body, headers=headers)
    repeat = client.post("/v1/me/wallet/topups", content=body, headers=headers)

    assert within.status_code == 409
    assert within.json()["code"] == "idempotency_in_progress"
    assert after.status_code == 201
    assert repeat.json() == after.json()
    assert count(services, Payment) == 1


def test_a_request_that_outlived_its_lease_cannot_overwrite_or_release_the_new_holder(
    services: Services,
) -> None:
    scope, key, fingerprint = "user:usr_1", "slow", "f" * 64
    services.db.run_raw_sync(claim_key, scope, key, fingerprint, "slow-request", LEASE)
    clock.offset = LEASE + timedelta(seconds=1)
    services.db.run_raw_sync(claim_key, scope, key, fingerprint, "new-holder", LEASE)

    late = StoredResponse(201, '{"late": true}', "application/json")
    stored = services.db.run_raw_sync(
        store_response, scope, key, "slow-request", late, timedelta(hours=24)
    )
    services.db.run_raw_sync(release_key, scope, key, "slow-request")

    assert stored is False
    [row] = stored_keys(services)
    assert row.holder == "new-holder"
    assert row.response_body is None
