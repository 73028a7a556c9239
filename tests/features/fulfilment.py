"""Builders for fulfilment tests: a succeeded team of goods with addresses in a shopper's book."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import US_ADDRESS as SEEDED_US_ADDRESS
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_teams_api import join, pay, start

CN_ADDRESS = {
    "recipient": "Chen Jing",
    "phone": "+86 138 0013 8000",
    "country": "CN",
    "region": "上海市",
    "city": "上海市",
    "district": "静安区",
    "line1": "南京西路 1266 号 12 楼",
    "postcode": "200040",
}
US_ADDRESS = {**SEEDED_US_ADDRESS, "region": "ca"}


@dataclass
class GoodsOrder:
    merchant: Merchant
    staff: Account
    shoppers: list[Account]
    deal_id: str
    team_id: str
    seat_ids: list[str]


def add_address(client: TestClient, shopper: Account, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/me/addresses", json={**CN_ADDRESS, **overrides}, headers=shopper.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def goods_team(
    client: TestClient, services: Services, *, succeed: bool = True, size: int = 2
) -> GoodsOrder:
    """A CN merchant's goods deal with a team of ``size``, every seat paid (so the team
    succeeded) unless ``succeed`` is False (then only held)."""
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(
        services.db, merchant, team_size=size, vertical=Vertical.GOODS, title="Lychees, 2 kg"
    )
    shoppers = [create_account(services) for _ in range(size)]
    started = start(client, shoppers[0], deal.id)
    team_id = started["team"]["id"]
    seat_ids = [started["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = join(client, shopper, team_id)
        assert joined.status_code == 201, joined.text
        seat_ids.append(joined.json()["seat"]["id"])
    if succeed:
        for shopper, seat_id in zip(shoppers, seat_ids, strict=True):
            pay(client, shopper, seat_id)
        Worker(services).run_until_idle()
    return GoodsOrder(merchant, staff, shoppers, deal.id, team_id, seat_ids)


def choose(client: TestClient, shopper: Account, seat_id: str, address_id: str) -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/address", json={"address_id": address_id}, headers=shopper.headers
    )


def ship(client: TestClient, staff: Account, seat_id: str, tracking: str = "SF1234567890") -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/shipment",
        json={"carrier": "SF Express", "tracking_number": tracking},
        headers=staff.headers,
    )
