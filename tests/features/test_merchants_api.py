"""Operators onboard merchants; merchants move pending → approved → suspended."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.factories import create_account, create_merchant

MERCHANT = {
    "name": "Jade Garden",
    "slug": "jade-garden",
    "country": "CN",
    "currency": "CNY",
    "time_zone": "Asia/Shanghai",
}


def test_an_operator_registers_and_approves_a_merchant(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)

    created = client.post("/v1/merchants", json=MERCHANT, headers=operator.headers)
    merchant_id = created.json()["id"]
    approved = client.post(f"/v1/merchants/{merchant_id}/approve", headers=operator.headers)
    suspended = client.post(f"/v1/merchants/{merchant_id}/suspend", headers=operator.headers)

    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    assert approved.json()["status"] == "approved"
    assert suspended.json()["status"] == "suspended"


def test_pending_merchants_are_hidden_from_the_public(
    client: TestClient, services: Services
) -> None:
    pending = create_merchant(services.db, approved=False)
    approved = create_merchant(services.db)

    listed = [m["id"] for m in client.get("/v1/merchants").json()["data"]]

    assert listed == [approved.id]
    assert client.get(f"/v1/merchants/{pending.id}").status_code == 404


def test_a_taken_slug_is_refused(client: TestClient, services: Services) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    client.post("/v1/merchants", json=MERCHANT, headers=operator.headers)

    again = client.post("/v1/merchants", json=MERCHANT, headers=operator.headers)

    assert again.status_code == 409
    assert again.json()["code"] == "slug_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "XYZ"),
        ("currency", "usd"),
        ("country", "ZZ"),
        ("time_zone", "Asia/Atlantis"),
        ("slug", "Not A Slug"),
        ("commission_bps", 10001),
    ],
)
def test_bad_merchant_fields_are_refused(
    client: TestClient, services: Services, field: str, value: object
) -> None:
    operator = create_account(services, role=Role.OPERATOR)

    response = client.post(
        "/v1/merchants", json={**MERCHANT, field: value}, headers=operator.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_operators_add_staff_who_then_see_the_staff_list(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    future_staff = create_account(services)

    added = client.post(
        f"/v1/merchants/{merchant.id}/staff",
        json={"email": future_staff.email},
        headers=operator.headers,
    )
    staff_list = client.get(f"/v1/merchants/{merchant.id}/staff", headers=future_staff.headers)

    assert added.status_code == 201, added.text
    assert [s["user_id"] for s in staff_list.json()["data"]] == [future_staff.user_id]
    me = client.get("/v1/me", headers=future_staff.headers).json()
    assert (me["role"], me["merchant_ids"]) == ("merchant", [merchant.id])
