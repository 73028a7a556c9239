"""Builders for voucher tests: a local-services deal whose team succeeded, its vouchers issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.audit.ledger import check_ledger
from pintuan.audit.service import audit_database
from pintuan.domain.roles import Role
from pintuan.domain.vouchers import SettleOn, VoucherTerms
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_ledger import pay

COMMISSION_BPS = 1000
PRICE = 1500  # the factory's group price


def terms(**overrides: Any) -> VoucherTerms:
    values: dict[str, Any] = {
        "valid_days": 30,
        "valid_until": None,
        "locations": ("Jing'an shop",),
        "refund_anytime": True,
        "settle_on": SettleOn.REDEMPTION,
    }
    values.update(overrides)
    return VoucherTerms(**values)


@dataclass
class VoucherTeam:
    merchant: Merchant
    staff: Account
    shoppers: list[Account]
    deal_id: str
    seat_ids: list[str]

    def vouchers(self, client: TestClient) -> list[dict[str, Any]]:
        """Each shopper's one voucher, in the order of ``shoppers``."""
        found = []
        for shopper in self.shoppers:
            listed = client.get("/v1/me/vouchers", headers=shopper.headers)
            assert listed.status_code == 200, listed.text
            (voucher,) = listed.json()["data"]
            found.append(voucher)
        return found


def voucher_team(
    client: TestClient,
    services: Services,
    *,
    size: int = 2,
    voucher: VoucherTerms | None = None,
    **paid_with: Any,
) -> VoucherTeam:
    """A merchant (commission 10%) with a food deal that issues vouchers, whose team of
    ``size`` succeeded, every seat paid and its money earned."""
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=COMMISSION_BPS)
        )
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(
        services.db, merchant, team_size=size, voucher=voucher or terms(), title="Hotpot for two"
    )
    shoppers = [create_account(services) for _ in range(size)]
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shoppers[0].headers)
    assert started.status_code == 201, started.text
    team_id = started.json()["team"]["id"]
    seat_ids = [started.json()["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
        assert joined.status_code == 201, joined.text
        seat_ids.append(joined.json()["seat"]["id"])
    for shopper, seat_id in zip(shoppers, seat_ids, strict=True):
        pay(client, shopper, seat_id, **paid_with)
    Worker(services).run_until_idle()
    return VoucherTeam(merchant, staff, shoppers, deal.id, seat_ids)


def redeem(client: TestClient, who: Account, code: str, **body: Any) -> Any:
    return client.post("/v1/vouchers/redeem", json={"code": code, **body}, headers=who.headers)


def merchant_part(price: int = PRICE) -> int:
    return price - (price * COMMISSION_BPS + 5000) // 10000


def sound(services: Services) -> None:
    """The ledger's checks and the engine's audit both pass."""
    breaches = services.db.run_sync(check_ledger, write=False).breaches
    assert breaches == [], breaches
    found = services.db.run_sync(audit_database, write=False)
    assert found == [], found
