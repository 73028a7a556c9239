"""Money to move (payouts, top-ups) is at least one minor unit and at most what Pintuan accepts:
anything else is a validation problem (422) and nothing is written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pintuan.domain.roles import Role
from pintuan.ledger.models import Journal
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent
from pintuan.services import Services
from tests.factories import create_account, create_merchant
from tests.features.test_idempotency_effects import count, stored_keys, topup


@pytest.mark.parametrize("amount", [0, -1, -15000])
def test_a_payout_of_nothing_or_less_is_refused_and_writes_nothing(
    client: TestClient, services: Services, amount: int
) -> None:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    ops = create_account(services, role=Role.OPERATOR)
    journals = count(services, Journal)

    response = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": amount, "currency": "CNY"}},
        headers={**ops.headers, "Idempotency-Key": f"payout{amount}"},
    )

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == "amount"
    assert count(services, Journal) == journals
    assert stored_keys(services) == []


@pytest.mark.parametrize("amount", [0, -1, 10**15])
def test_a_top_up_of_nothing_less_or_too_much_is_refused_and_writes_nothing(
    client: TestClient, services: Services, amount: int
) -> None:
    shopper = create_account(services)

    response = topup(client, shopper, f"topup{amount}", amount=amount)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert count(services, Payment) == 0
    assert count(services, SandboxIntent) == 0
