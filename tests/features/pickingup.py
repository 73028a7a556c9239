"""Builders for pickup tests: an approved pickup point and a pickup deal of goods whose team
succeeded, each seat's shopper having chosen the point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_merchant, deal_body
from tests.features import sharing
from tests.features.test_ledger import pay

COMMISSION_BPS = 1000  # the platform's, on the merchant
LEADER_BPS = 500  # the pickup point leader's, on the deal
PRICE = 1500


def open_point(
    client: TestClient, services: Services, operator: Account, *, capacity: int = 50
) -> tuple[Account, dict[str, Any]]:
    """A shopper who applied to lead a pickup point, and the point an operator approved."""
    leader = create_account(services)
    applied = client.post(
        "/v1/pickup-points",
        json={
            "name": "Maple Court lobby",
            "address": "12 Maple Court, Jing'an",
            "opening_hours": "Daily 9:00-21:00",
            "capacity_per_day": capacity,
        },
        headers=leader.headers,
    )
    assert applied.status_code == 201, applied.text
    decided = client.post(
        f"/v1/pickup-points/{applied.json()['id']}/decision",
        json={"approve": True},
        headers=operator.headers,
    )
    assert decided.status_code == 200, decided.text
    return leader, decided.json()


def pickup_deal(
    client: TestClient,
    staff: Account,
    merchant_id: str,
    *,
    size: int = 2,
    leader_bps: int = LEADER_BPS,
    unclaimed_days: int = 3,
    referral_bps: int = 0,
) -> str:
    body = deal_body(
        merchant_id,
        title="Fresh lychees, 1 kg",
        vertical="goods",
        team_size=size,
        per_user_limit=3,
        stock=500,
        group_price={"amount": PRICE, "currency": "USD"},
        list_price={"amount": 2000, "currency": "USD"},
        pickup={"commission_bps": leader_bps, "unclaimed_days": unclaimed_days},
        referral_commission_bps=referral_bps,
    )
    made = client.post("/v1/deals", json=body, headers=staff.headers)
    assert made.status_code == 201, made.text
    deal_id = str(made.json()["id"])
    live = client.post(f"/v1/deals/{deal_id}/publish", headers=staff.headers)
    assert live.status_code == 200, live.text
    return deal_id


@dataclass
class PickupWorld:
    merchant: Merchant
    staff: Account
    operator: Account
    leader: Account
    point: dict[str, Any]
    deal_id: str
    shoppers: list[Account]
    seat_ids: list[str]

    def codes(self, client: TestClient) -> list[str]:
        found = []
        for shopper, seat_id in zip(self.shoppers, self.seat_ids, strict=True):
            read = client.get(f"/v1/seats/{seat_id}/pickup", headers=shopper.headers)
            assert read.status_code == 200, read.text
            found.append(str(read.json()["code"]))
        return found

    def arrive(self, client: TestClient) -> int:
        done = client.post(
            f"/v1/pickup-points/{self.point['id']}/arrivals",
            json={"deal_id": self.deal_id},
            headers=self.leader.headers,
        )
        assert done.status_code == 200, done.text
        return int(done.json()["arrived"])


def take_seats(client: TestClient, deal_id: str, shoppers: list[Account]) -> list[str]:
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers)
    assert started.status_code == 201, started.text
    team_id = started.json()["team"]["id"]
    seat_ids = [started.json()["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
        assert joined.status_code == 201, joined.text
        seat_ids.append(joined.json()["seat"]["id"])
    return seat_ids


def choose(client: TestClient, shopper: Account, seat_id: str, point_id: str) -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/pickup", json={"pickup_point_id": point_id}, headers=shopper.headers
    )


def pickup_world(
    client: TestClient,
    services: Services,
    *,
    size: int = 2,
    leader_bps: int = LEADER_BPS,
    unclaimed_days: int = 3,
    capacity: int = 50,
    referral_bps: int = 0,
    sharer: Account | None = None,
    **paid_with: Any,
) -> PickupWorld:
    """A merchant (commission 10%) with a pickup deal whose team of ``size`` succeeded, every
    seat at one approved point, paid and its money earned. With a ``sharer``, the first shopper
    came through their share of the deal (which pays them ``referral_bps``)."""
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=COMMISSION_BPS)
        )
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    operator = create_account(services, role=Role.OPERATOR)
    leader, point = open_point(client, services, operator, capacity=capacity)
    deal_id = pickup_deal(
        client,
        staff,
        merchant.id,
        size=size,
        leader_bps=leader_bps,
        unclaimed_days=unclaimed_days,
        referral_bps=referral_bps,
    )
    shoppers = [create_account(services) for _ in range(size)]
    if sharer is not None:
        sharing.visit(services, sharing.share(services, sharer, deal_id=deal_id), user=shoppers[0])
    seat_ids = take_seats(client, deal_id, shoppers)
    for shopper, seat_id in zip(shoppers, seat_ids, strict=True):
        chosen = choose(client, shopper, seat_id, point["id"])
        assert chosen.status_code == 200, chosen.text
        pay(client, shopper, seat_id, **paid_with)
    Worker(services).run_until_idle()
    return PickupWorld(merchant, staff, operator, leader, point, deal_id, shoppers, seat_ids)


def hand_over(client: TestClient, who: Account, code: str, **headers: str) -> Any:
    return client.post(
        "/v1/pickups/handover", json={"code": code}, headers={**who.headers, **headers}
    )


def commission(price: int = PRICE, bps: int = LEADER_BPS) -> int:
    """The leader's commission on ``price``, rounded down."""
    return price * bps // 10000


def merchant_part(price: int = PRICE) -> int:
    return price - (price * COMMISSION_BPS + 5000) // 10000
