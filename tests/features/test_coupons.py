"""Lottery coupons: a lottery deal that says so gives each seat its draw did not pick a coupon,
on top of the full refund; the shopper takes it off a later held seat at the same merchant
before paying, pays the lower price, and gets the coupon back if that seat ends without a sale.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from pintuan.audit.coupons import INVARIANT as COUPONS
from pintuan.audit.service import audit_database
from pintuan.coupons.models import Coupon
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.ladder import Tier
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.features.test_bargains import open_bargain, set_terms
from tests.features.test_ledger import paid_team, pay
from tests.features.vouchering import sound

PRICE = 1500
OFF = 300


class Lost:
    """A lottery team of three with a coupon of 3.00 for its two losers, paid and drawn."""

    def __init__(self, client: TestClient, services: Services) -> None:
        self.merchant = create_merchant(services.db)
        self.deal = create_deal(
            services.db,
            self.merchant,
            team_size=3,
            lottery_winners=1,
            lottery_coupon=CouponTerms(OFF, 30),
        )
        self.shoppers = [create_account(services) for _ in range(3)]
        self.team_id, self.seats = paid_team(client, self.deal.id, self.shoppers)
        Worker(services).run_until_idle()
        winners = client.get(f"/v1/deals/{self.deal.id}/lottery").json()["draws"][0]["winners"]
        self.winner = winners[0]
        self.losers = [
            (shopper, seat)
            for shopper, seat in zip(self.shoppers, self.seats, strict=True)
            if seat != self.winner
        ]

    def coupon_of(self, client: TestClient, shopper: Account) -> dict[str, Any]:
        (coupon,) = client.get("/v1/me/coupons", headers=shopper.headers).json()["data"]
        return dict(coupon)


def held_seat(client: TestClient, services: Services, deal_id: str, shopper: Account) -> str:
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shopper.headers)
    assert started.status_code == 201, started.text
    return str(started.json()["seat"]["id"])


def apply(client: TestClient, shopper: Account, seat_id: str, coupon_id: str) -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/coupon", json={"coupon_id": coupon_id}, headers=shopper.headers
    )


def test_each_loser_is_refunded_in_full_and_gets_the_deals_coupon(
    client: TestClient, services: Services
) -> None:
    lost = Lost(client, services)

    published = client.get(f"/v1/deals/{lost.deal.id}").json()["lottery"]
    assert published["coupon"]["amount"]["amount"] == OFF
    assert published["coupon"]["valid_days"] == 30
    refunds = services.db.run_sync(
        lambda s: sorted((r.seat_id, r.amount) for r in s.scalars(select(Refund)))
    )
    assert refunds == sorted((seat, PRICE) for _, seat in lost.losers)
    for shopper, seat in lost.losers:
        coupon = lost.coupon_of(client, shopper)
        assert coupon["state"] == "available"
        assert coupon["amount"]["amount"] == OFF
        assert coupon["merchant_id"] == lost.merchant.id
        assert coupon["source"] == "lottery"
        assert coupon["seat_id"] is None
        issued = services.db.run_sync(lambda s, c=coupon: s.get(Coupon, c["id"]))
        assert issued.source_seat_id == seat
        assert issued.expires_at - issued.issued_at == timedelta(days=30)
    winner = lost.shoppers[lost.seats.index(lost.winner)]
    assert client.get("/v1/me/coupons", headers=winner.headers).json()["data"] == []
    # Drawn once: the worker passing again issues nothing more.
    Worker(services).run_until_idle()
    assert services.db.run_sync(lambda s: len(list(s.scalars(select(Coupon.id))))) == 2
    sound(services)


def test_a_coupon_lowers_a_later_seats_price_and_is_used_when_its_team_succeeds(
    client: TestClient, services: Services
) -> None:
    lost = Lost(client, services)
    shopper, _ = lost.losers[0]
    coupon = lost.coupon_of(client, shopper)
    later = create_deal(services.db, lost.merchant, team_size=2, title="Noodles for two")
    seat_id = held_seat(client, services, later.id, shopper)

    applied = apply(client, shopper, seat_id, coupon["id"])

    assert applied.status_code == 200, applied.text
    assert applied.json()["price"]["amount"] == PRICE - OFF
    assert applied.json()["coupon_id"] == coupon["id"]
    assert lost.coupon_of(client, shopper)["state"] == "applied"
    paid = pay(client, shopper, seat_id)
    assert paid["amount"]["amount"] == PRICE - OFF
    friend = create_account(services)
    team_id = applied.json()["team_id"]
    joined = client.post(f"/v1/teams/{team_id}/seats", headers=friend.headers).json()
    pay(client, friend, joined["seat"]["id"])
    Worker(services).run_until_idle()
    used = lost.coupon_of(client, shopper)
    assert (used["state"], used["seat_id"]) == ("used", seat_id)
    available = client.get("/v1/me/coupons?state=available", headers=shopper.headers).json()
    assert available["data"] == []
    amounts = services.db.run_sync(
        lambda s: sorted(s.scalars(select(Payment.amount).where(Payment.team_id == team_id)))
    )
    assert amounts == [PRICE - OFF, PRICE]
    sound(services)


def test_a_coupon_comes_back_when_its_seat_ends_without_a_sale(
    client: TestClient, services: Services
) -> None:
    lost = Lost(client, services)
    shopper, _ = lost.losers[0]
    coupon = lost.coupon_of(client, shopper)
    later = create_deal(services.db, lost.merchant, team_size=2, title="Noodles for two")
    first = held_seat(client, services, later.id, shopper)
    assert apply(client, shopper, first, coupon["id"]).status_code == 200
    left = client.post(f"/v1/seats/{first}/cancel", headers=shopper.headers)
    assert left.status_code == 200, left.text

    assert lost.coupon_of(client, shopper)["state"] == "available"
    second = held_seat(client, services, later.id, shopper)
    again = apply(client, shopper, second, coupon["id"])
    assert again.status_code == 200, again.text
    assert again.json()["price"]["amount"] == PRICE - OFF
    sound(services)


def test_a_coupon_is_refused_where_it_does_not_apply_and_nothing_changes(
    client: TestClient, services: Services
) -> None:
    lost = Lost(client, services)
    (shopper, _), (other_loser, _) = lost.losers
    coupon = lost.coupon_of(client, shopper)
    same_merchant = create_deal(services.db, lost.merchant, team_size=2, title="Noodles")
    elsewhere = create_deal(services.db, create_merchant(services.db), team_size=2)
    ladder = create_deal(
        services.db,
        lost.merchant,
        team_size=2,
        title="Ladder",
        ladder=(Tier(4, 1200),),
    )
    cheap = create_deal(
        services.db, lost.merchant, team_size=2, group_price=OFF, list_price=500, title="Tea"
    )

    def refused(seat_id: str, who: Account = shopper, coupon_id: str = coupon["id"]) -> str:
        answer = apply(client, who, seat_id, coupon_id)
        assert answer.status_code in (404, 409, 422), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        return str(answer.json()["code"])

    assert refused(held_seat(client, services, elsewhere.id, shopper)) == "coupon_not_applicable"
    assert refused(held_seat(client, services, ladder.id, shopper)) == "coupon_not_applicable"
    assert refused(held_seat(client, services, cheap.id, shopper)) == "coupon_not_applicable"
    # A bargain's purchase: its price was agreed with the friends who cut it.
    staff = create_account(services, role=Role.MERCHANT, merchant=lost.merchant)
    bargained = create_deal(services.db, lost.merchant, team_size=2, title="Rice cooker")
    assert set_terms(client, staff, bargained.id, floor=1000).status_code == 200
    bargain = open_bargain(client, shopper, bargained.id)
    bought = client.post(f"/v1/bargains/{bargain['id']}/purchase", headers=shopper.headers)
    assert bought.status_code == 201, bought.text
    assert refused(bought.json()["seat"]["id"]) == "coupon_not_applicable"
    # Someone else's coupon, or seat, is not found.
    own_seat = held_seat(client, services, same_merchant.id, shopper)
    assert refused(own_seat, who=other_loser) == "seat_not_found"
    assert refused(own_seat, coupon_id="cpn_nope") == "coupon_not_found"
    # After a payment began, too late.
    paying = client.post(
        f"/v1/seats/{own_seat}/payments", json={"provider": "sandbox"}, headers=shopper.headers
    )
    assert paying.status_code == 201, paying.text
    assert refused(own_seat) == "payment_begun"
    # An expired coupon.
    services.db.run_sync(
        lambda s: s.execute(
            update(Coupon)
            .where(Coupon.id == coupon["id"])
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
    )
    fresh = create_deal(services.db, lost.merchant, team_size=2, title="Rice")
    assert refused(held_seat(client, services, fresh.id, shopper)) == "coupon_expired"
    assert apply(client, shopper, own_seat, "").status_code == 422

    prices = services.db.run_sync(
        lambda s: set(s.scalars(select(Seat.price_amount).where(Seat.user_id == shopper.user_id)))
    )
    assert OFF not in {PRICE - p for p in prices}  # no seat was lowered
    assert services.db.run_sync(lambda s: s.get(Coupon, coupon["id"]).seat_id) is None


def test_one_coupon_on_one_seat_at_a_time(client: TestClient, services: Services) -> None:
    lost = Lost(client, services)
    shopper, _ = lost.losers[0]
    coupon = lost.coupon_of(client, shopper)
    first = create_deal(services.db, lost.merchant, team_size=2, title="Noodles")
    second = create_deal(services.db, lost.merchant, team_size=2, title="Rice")
    one = held_seat(client, services, first.id, shopper)
    two = held_seat(client, services, second.id, shopper)

    assert apply(client, shopper, one, coupon["id"]).status_code == 200
    taken = apply(client, shopper, two, coupon["id"])
    assert (taken.status_code, taken.json()["code"]) == (409, "coupon_applied")
    again = apply(client, shopper, one, coupon["id"])
    assert again.status_code == 409


def test_a_deals_coupon_is_checked_against_its_price_and_currency(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    def created(coupon: dict[str, Any]) -> Any:
        body = deal_body(merchant.id, team_size=3, lottery={"winners": 1, "coupon": coupon})
        return client.post("/v1/deals", json=body, headers=staff.headers)

    worth_the_price = created({"amount": {"amount": 5900, "currency": "USD"}})
    assert worth_the_price.status_code == 422
    assert worth_the_price.json()["errors"][0]["field"] == "lottery.coupon.amount"
    other_money = created({"amount": {"amount": 100, "currency": "EUR"}})
    assert other_money.status_code == 422
    too_long = created({"amount": {"amount": 100, "currency": "USD"}, "valid_days": 400})
    assert too_long.status_code == 422
    good = created({"amount": {"amount": 100, "currency": "USD"}, "valid_days": 14})
    assert good.status_code == 201, good.text
    assert good.json()["lottery"]["coupon"]["valid_days"] == 14
    assert good.json()["lottery"]["coupon"]["amount"]["amount"] == 100


def test_the_audit_finds_a_coupon_changed_lost_or_spent_twice(
    client: TestClient, services: Services
) -> None:
    lost = Lost(client, services)
    (shopper, _), (other, _) = lost.losers
    coupon = lost.coupon_of(client, shopper)
    later = create_deal(services.db, lost.merchant, team_size=2, title="Noodles")
    seat_id = held_seat(client, services, later.id, shopper)
    assert apply(client, shopper, seat_id, coupon["id"]).status_code == 200
    sound(services)

    def breaches() -> list[str]:
        found = services.db.run_sync(audit_database, write=False)
        return [b.detail for b in found if b.invariant == COUPONS]

    def changed(statement: Any) -> list[str]:
        services.db.run_sync(lambda s: s.execute(statement))
        return breaches()

    worth_more = changed(update(Coupon).where(Coupon.id == coupon["id"]).values(amount=OFF * 2))
    assert any("earned 300 USD" in b for b in worth_more), worth_more
    changed(update(Coupon).where(Coupon.id == coupon["id"]).values(amount=OFF))
    other_seat = held_seat(client, services, later.id, other)
    with pytest.raises(IntegrityError):  # the database refuses a coupon on two live seats
        services.db.run_sync(
            lambda s: s.execute(
                update(Seat).where(Seat.id == other_seat).values(coupon_id=coupon["id"])
            )
        )
    moved = changed(update(Coupon).where(Coupon.id == coupon["id"]).values(seat_id=other_seat))
    assert any(f"live seat {seat_id} took coupon" in b for b in moved), moved
    assert any(f"on seat {other_seat}, which did not take it" in b for b in moved), moved
    changed(update(Coupon).where(Coupon.id == coupon["id"]).values(seat_id=seat_id))
    assert breaches() == []
    services.db.run_sync(lambda s: s.execute(delete(Coupon).where(Coupon.id != coupon["id"])))
    assert any("has no coupon" in b for b in breaches())
