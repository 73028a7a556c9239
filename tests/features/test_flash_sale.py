"""Flash sales (秒杀): a deal that opens at its start, sells one unit to each shopper, and says
``deal_not_started`` (with the opening instant) to whoever comes early. The race at the
opening instant is in ``tests/concurrency/test_flash_sale_races.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from tests.factories import create_account, create_deal, create_merchant, deal_body


def test_a_flash_sale_sells_one_to_each_shopper_from_its_opening(
    client: TestClient, services: Services
) -> None:
    opening = utc_now() + timedelta(minutes=5)
    deal = create_deal(
        services.db, create_merchant(services.db), stock=2, starts_at=opening, flash_sale=True
    )
    amy, bo = create_account(services), create_account(services)

    early = client.post(f"/v1/deals/{deal.id}/teams", headers=amy.headers)
    alone = client.post(f"/v1/deals/{deal.id}/solo", headers=amy.headers)

    assert (early.status_code, early.json()["code"]) == (409, "deal_not_started")
    assert datetime.fromisoformat(early.json()["starts_at"]) == opening
    assert alone.json()["code"] == "deal_not_started"
    shown = client.get(f"/v1/deals/{deal.id}").json()
    assert (shown["flash_sale"], shown["per_user_limit"], shown["committed"]) == (True, 1, 0)

    clock.offset = timedelta(minutes=5, seconds=1)
    first = client.post(f"/v1/deals/{deal.id}/teams", headers=amy.headers)
    again = client.post(f"/v1/deals/{deal.id}/teams", headers=amy.headers)
    other = client.post(f"/v1/deals/{deal.id}/teams", headers=bo.headers)
    late = client.post(f"/v1/deals/{deal.id}/teams", headers=create_account(services).headers)

    assert first.status_code == 201, first.text
    assert again.json()["code"] == "limit_reached"
    assert other.status_code == 201, other.text
    assert late.json()["code"] == "sold_out"


def test_a_flash_sale_must_sell_one_per_shopper(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    two = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, flash_sale=True, per_user_limit=2),
        headers=staff.headers,
    )
    one = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, flash_sale=True, per_user_limit=1),
        headers=staff.headers,
    )
    raised = client.patch(
        f"/v1/deals/{one.json()['id']}", json={"per_user_limit": 3}, headers=staff.headers
    )

    assert two.status_code == 422
    assert [e["field"] for e in two.json()["errors"]] == ["per_user_limit"]
    assert one.status_code == 201, one.text
    assert one.json()["flash_sale"] is True
    assert raised.status_code == 422
    plain = client.post("/v1/deals", json=deal_body(merchant.id), headers=staff.headers)
    assert plain.json()["flash_sale"] is False
