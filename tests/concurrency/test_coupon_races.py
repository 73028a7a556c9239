"""Coupons under real concurrency: API processes on one database, requests fired at once.

One coupon applied to twenty seats at once lowers exactly one of them. A coupon applied while
its seat's payment begins (from the wallet, or at the provider) ends one way or the other: the
payment at the full price and the coupon refused, or the coupon applied and the payment at the
lowered price; never a payment asking the old price of a lowered seat. The audit, which checks
each payment of a lowered seat against its price, passes after each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.coupons import CouponTerms
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, running_cluster
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_ledger import paid_team
from tests.features.vouchering import sound

SERVERS = 3
PRICE = 1500
OFF = 300


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def losers_with_coupons(
    client: TestClient, services: Services, merchant: object, teams: int
) -> list[tuple[Account, str]]:
    """Shoppers who lost a lottery draw at ``merchant``, each with their coupon's id."""
    deal = create_deal(
        services.db,
        merchant,  # type: ignore[arg-type]
        team_size=3,
        stock=3 * teams,
        lottery_winners=1,
        lottery_coupon=CouponTerms(OFF, 30),
    )
    shoppers = [create_account(services) for _ in range(3 * teams)]
    for t in range(teams):
        paid_team(client, deal.id, shoppers[3 * t : 3 * t + 3])
    Worker(services).run_until_idle()
    found = []
    for shopper in shoppers:
        coupons = client.get("/v1/me/coupons", headers=shopper.headers).json()["data"]
        found += [(shopper, c["id"]) for c in coupons]
    assert len(found) == 2 * teams
    return found


def test_one_coupon_applied_to_twenty_seats_at_once_lowers_one(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    ((shopper, coupon_id), *_) = losers_with_coupons(client, services, merchant, 1)
    seats = []
    for n in range(20):
        deal = create_deal(services.db, merchant, team_size=2, title=f"Noodles {n}")
        started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers).json()
        seats.append(started["seat"]["id"])

    calls = [
        Call("POST", f"/v1/seats/{seat_id}/coupon", shopper.token, {"coupon_id": coupon_id})
        for seat_id in seats
    ]
    replies = asyncio.run(cluster.fire_async(calls))

    assert_no_server_errors(cluster, replies)
    seen = Counter(r.outcome for r in replies)
    assert seen["200"] == 1, seen
    assert set(seen) <= {"200", "409 coupon_applied", "409 coupon_taken"}, seen
    lowered = services.db.run_sync(
        lambda s: list(s.scalars(select(Seat.id).where(Seat.coupon_id == coupon_id)))
    )
    (winner,) = [r for r in replies if r.status == 200]
    assert lowered == [winner.body["id"]]
    assert winner.body["price"]["amount"] == PRICE - OFF
    sound(services)


@pytest.mark.parametrize("provider", ["wallet", "sandbox"])
def test_a_coupon_racing_its_seats_payment_never_leaves_a_payment_at_the_old_price(
    cluster: Cluster, services: Services, client: TestClient, provider: str
) -> None:
    merchant = create_merchant(services.db)
    holders = losers_with_coupons(client, services, merchant, 6)
    later = create_deal(services.db, merchant, team_size=2, stock=100, title="Rice")
    calls = []
    for shopper, coupon_id in holders:
        if provider == "wallet":  # enough in the wallet for the full price
            topup = client.post(
                "/v1/me/wallet/topups",
                json={"provider": "sandbox", "amount": {"amount": PRICE, "currency": "USD"}},
                headers=shopper.headers,
            ).json()
            client.post(f"/v1/test_helpers/payments/{topup['id']}/succeed", headers=shopper.headers)
        started = client.post(f"/v1/deals/{later.id}/teams", headers=shopper.headers).json()
        seat_id = started["seat"]["id"]
        calls.append(
            Call("POST", f"/v1/seats/{seat_id}/coupon", shopper.token, {"coupon_id": coupon_id})
        )
        calls.append(
            Call("POST", f"/v1/seats/{seat_id}/payments", shopper.token, {"provider": provider})
        )

    replies = asyncio.run(cluster.fire_async(calls))

    assert_no_server_errors(cluster, replies)
    applied = Counter(r.outcome for r in replies[0::2])
    # A wallet payment is taken at once: the seat is then paid, no longer held.
    assert set(applied) <= {"200", "409 payment_begun", "409 seat_not_payable"}, applied
    paid = Counter(r.outcome for r in replies[1::2])
    assert set(paid) == {"201"}, paid

    rows = services.db.run_sync(
        lambda s: s.execute(
            select(Seat.price_amount, Payment.amount, Seat.coupon_id)
            .join(Payment, Payment.seat_id == Seat.id)
            .where(Seat.deal_id == later.id)
        ).all()
    )
    assert len(rows) == len(holders)
    for price, amount, coupon_id in rows:
        assert amount == price, (price, amount, coupon_id)
        assert price == (PRICE - OFF if coupon_id else PRICE)
    sound(services)
