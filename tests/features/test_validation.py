"""Bad input gets an RFC 9457 problem naming the field, and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import isoformat_z, utc_now
from pintuan.services import Services
from tests.factories import create_account, create_merchant, deal_body

NOW = utc_now()

BAD_DEALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "group price above list price",
        {"group_price": {"amount": 9000, "currency": "USD"}},
        "group_price.amount",
    ),
    (
        "group price equal to list price",
        {"group_price": {"amount": 8800, "currency": "USD"}},
        "group_price.amount",
    ),
    (
        "currency unlike the merchant's",
        {
            "list_price": {"amount": 8800, "currency": "EUR"},
            "group_price": {"amount": 5900, "currency": "EUR"},
        },
        "list_price.currency",
    ),
    (
        "unknown currency",
        {"list_price": {"amount": 8800, "currency": "ABC"}},
        "list_price.currency",
    ),
    ("float amount", {"list_price": {"amount": 88.5, "currency": "USD"}}, "list_price.amount"),
    ("string amount", {"list_price": {"amount": "8800", "currency": "USD"}}, "list_price.amount"),
    (
        "amount beyond the currency's range",
        {"list_price": {"amount": 10**12, "currency": "USD"}},
        "list_price.amount",
    ),
    ("zero group price", {"group_price": {"amount": 0, "currency": "USD"}}, "group_price.amount"),
    ("end before start", {"ends_at": isoformat_z(NOW - timedelta(days=1))}, "ends_at"),
    ("naive start time", {"starts_at": "2026-12-01T10:00:00"}, "starts_at"),
    ("team of one", {"team_size": 1}, "team_size"),
    ("team of 101", {"team_size": 101}, "team_size"),
    ("window too short", {"team_window_minutes": 4}, "team_window_minutes"),
    ("window too long", {"team_window_minutes": 10081}, "team_window_minutes"),
    ("unknown vertical", {"vertical": "weapons"}, "vertical"),
    ("empty title", {"title": ""}, "title"),
    ("no stock", {"stock": 0}, "stock"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("not a url", {"image_urls": ["javascript:alert(1)"]}, "image_urls.0"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_DEALS, ids=[c[0] for c in BAD_DEALS])
def test_a_bad_deal_is_refused_with_the_field_named_and_nothing_written(
    client: TestClient, services: Services, case: str, change: dict[str, Any], field: str
) -> None:
    merchant = create_merchant(services.db, currency="USD")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    response = client.post(
        "/v1/deals", json=deal_body(merchant.id, **change), headers=staff.headers
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"] == f"/problems/{problem['code']}"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Deal))) == 0


def test_a_body_that_is_not_json_is_a_problem_too(client: TestClient, services: Services) -> None:
    staff = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))

    response = client.post(
        "/v1/deals",
        content=b"{not json",
        headers={**staff.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_an_unknown_route_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
