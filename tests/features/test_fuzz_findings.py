"""Answers the OpenAPI fuzzing (tests/features/test_openapi_fuzz.py) found to be a 500, each
kept here as the plain request that showed it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.domain.roles import Role
from pintuan.ledger.models import Journal
from pintuan.services import Services
from tests.factories import create_account, create_merchant


@pytest.mark.parametrize("amount", [0, -1])
def test_a_payout_of_nothing_or_less_is_refused_as_invalid_and_records_nothing(
    client: TestClient, services: Services, amount: int
) -> None:
    merchant = create_merchant(services.db)
    operator = create_account(services, role=Role.OPERATOR)

    response = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": amount, "currency": "USD"}},
        headers=operator.headers,
    )

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    journals = services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Journal)))
    assert journals == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/ops/invite-tree?root=%00",
        "/v1/growth/export.csv?merchant_id=%00",
        "/v1/deals/deal_%00",
        "/deals/deal_%00",
    ],
)
def test_a_nul_character_in_the_path_or_query_is_refused_as_invalid(
    client: TestClient, services: Services, path: str
) -> None:
    operator = create_account(services, role=Role.OPERATOR)

    response = client.get(path, headers=operator.headers)

    # PostgreSQL cannot hold a NUL in text: it reached the database as a 500.
    assert response.status_code == 422, response.text
