"""Referral commissions (分销), one level: a deal pays the shopper whose share brought a seat a
part of what it paid, frozen until the order can no longer be refunded, shrunk by refunds before
that, then paid into the sharer's wallet; and withdrawals from a wallet, payouts with a
lifecycle."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.commissions.models import Commission
from pintuan.domain.commissions import commission_on, kept_after_refunds
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.features import sharing
from tests.features.pickingup import pickup_deal, take_seats
from tests.features.test_ledger import balance, pay, wallet
from tests.features.test_refund_notices import deliver, payment_of, sandbox
from tests.features.test_refunds import refund
from tests.features.vouchering import sound, terms

PRICE = 1500
RATE = 1000  # 10 %
WINDOW = timedelta(days=30)


@pytest.fixture(autouse=True)
def clock_back() -> Any:
    yield
    clock.offset = timedelta(0)


def refund_headers(account: Account, key: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key}


def shared_team(
    client: TestClient,
    services: Services,
    *,
    rate: int = RATE,
    brought: int = 1,
    **paid: Any,
) -> tuple[Any, Account, list[tuple[Account, str]]]:
    """A deal paying ``rate`` to sharers; a sharer's share brings the first ``brought`` of the
    team's three buyers (the sharer not among them); everyone pays. Returns the merchant, the
    sharer and the (buyer, seat) pairs."""
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=500)
        )
    )
    deal = create_deal(services.db, merchant, team_size=3, referral_commission_bps=rate)
    sharer = create_account(services)
    shared = sharing.share(services, sharer, deal_id=deal.id)
    buyers = [create_account(services) for _ in range(3)]
    for buyer in buyers[:brought]:
        sharing.visit(services, shared, user=buyer)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=buyers[0].headers).json()
    seats = [started["seat"]["id"]]
    for buyer in buyers[1:]:
        joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=buyer.headers)
        seats.append(joined.json()["seat"]["id"])
    for buyer, seat_id in zip(buyers, seats, strict=True):
        pay(client, buyer, seat_id, **paid)
    return merchant, sharer, list(zip(buyers, seats, strict=True))


def commissions(services: Services) -> list[Commission]:
    return services.db.run_sync(
        lambda s: list(s.scalars(select(Commission).order_by(Commission.id))), write=False
    )


def settle(services: Services) -> None:
    """The worker does everything due, and its housekeeping's commission sweep."""
    worker = Worker(services)
    worker.run_until_idle()
    worker.sweep_commissions(utc_now())


def staff_of(services: Services, merchant: Any) -> Account:
    return create_account(services, role=Role.MERCHANT, merchant=merchant)


def test_the_commission_is_frozen_for_the_seat_the_share_brought_and_nothing_else(
    client: TestClient, services: Services
) -> None:
    merchant, sharer, seats = shared_team(client, services, brought=2)
    settle(services)

    made = commissions(services)
    assert sorted(c.seat_id for c in made) == sorted(seat for _, seat in seats[:2])
    assert {(c.status, c.amount, c.sharer_id) for c in made} == {
        ("frozen", commission_on(PRICE, RATE), sharer.user_id)
    }
    # Frozen: out of the merchant's payable, not yet in the sharer's wallet.
    fee = PRICE * 500 // 10_000
    assert -balance(services, f"merchant_payable:{merchant.id}") == 3 * (PRICE - fee) - 2 * 150
    assert -balance(services, f"commissions_frozen:{sharer.user_id}") == 300
    assert wallet(services, sharer.user_id) == 0

    mine = client.get("/v1/me/commissions", headers=sharer.headers).json()
    assert mine["totals"]["frozen"] == [{"amount": 300, "currency": "USD"}]
    assert mine["totals"]["released"] == []
    assert [c["status"] for c in mine["data"]] == ["frozen", "frozen"]
    assert mine["data"][0]["deal_title"] == "Dumplings for three"
    # The buyers earn nothing; nobody but the merchant's staff sees the merchant's list.
    assert client.get("/v1/me/commissions", headers=seats[0][0].headers).json()["data"] == []
    listed = client.get(
        f"/v1/merchants/{merchant.id}/commissions", headers=staff_of(services, merchant).headers
    )
    assert listed.status_code == 200
    assert len(listed.json()["data"]) == 2
    assert (
        client.get(f"/v1/merchants/{merchant.id}/commissions", headers=sharer.headers).status_code
        == 404
    )
    # The sweep again changes nothing.
    settle(services)
    assert len(commissions(services)) == 2
    sound(services)


def test_a_deal_without_commissions_and_an_unshared_team_pay_none(
    client: TestClient, services: Services
) -> None:
    shared_team(client, services, rate=0)
    shared_team(client, services, brought=0)
    settle(services)
    assert commissions(services) == []
    sound(services)


def test_refunds_shrink_the_frozen_commission_and_a_full_refund_claws_it_all_back(
    client: TestClient, services: Services
) -> None:
    merchant, sharer, seats = shared_team(client, services, brought=1)
    settle(services)
    staff = staff_of(services, merchant)
    seat_id = seats[0][1]

    part = client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": 600, "reason": "one dish was missing"},
        headers=refund_headers(staff, "k1"),
    )
    assert part.status_code == 201, part.text
    (c,) = commissions(services)
    assert c.status == "frozen"
    assert c.amount - c.clawed_back == kept_after_refunds(150, PRICE, 600, RATE) == 90
    assert -balance(services, f"commissions_frozen:{sharer.user_id}") == 90
    sound(services)

    rest = client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": PRICE - 600, "reason": "cancelled"},
        headers=refund_headers(staff, "k2"),
    )
    assert rest.status_code == 201, rest.text
    (c,) = commissions(services)
    assert (c.status, c.clawed_back) == ("clawed_back", 150)
    assert balance(services, f"commissions_frozen:{sharer.user_id}") == 0
    # Past the window nothing is released: nothing is left.
    sharing.move_to(utc_now() + WINDOW + timedelta(days=1))
    settle(services)
    assert wallet(services, sharer.user_id) == 0
    sound(services)


def test_once_the_refund_window_closes_the_commission_is_paid_and_refunds_are_refused(
    client: TestClient, services: Services
) -> None:
    merchant, sharer, seats = shared_team(client, services, brought=1)
    settle(services)
    staff = staff_of(services, merchant)
    seat_id = seats[0][1]

    # A day before the window closes: still frozen, still refundable.
    sharing.move_to(utc_now() + WINDOW - timedelta(days=1))
    settle(services)
    assert commissions(services)[0].status == "frozen"

    sharing.move_to(utc_now() + timedelta(days=1, minutes=1))
    settle(services)
    (c,) = commissions(services)
    assert (c.status, c.released_at is not None) == ("released", True)
    assert wallet(services, sharer.user_id) == 150
    assert balance(services, f"commissions_frozen:{sharer.user_id}") == 0
    mine = client.get("/v1/me/commissions?status=released", headers=sharer.headers).json()
    assert mine["totals"]["released"] == [{"amount": 150, "currency": "USD"}]
    assert len(mine["data"]) == 1

    refused = client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": 100, "reason": "too late"},
        headers=refund_headers(staff, "late"),
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "refund_window_closed"
    # The other buyers' orders (no commission) are past the window too.
    other = client.post(
        f"/v1/seats/{seats[1][1]}/refunds",
        json={"amount": 100, "reason": "too late"},
        headers=refund_headers(staff, "late2"),
    )
    assert other.json()["code"] == "refund_window_closed"
    sound(services)


def test_a_commission_waits_for_the_vouchers_redemption(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(
        services.db,
        merchant,
        team_size=2,
        referral_commission_bps=RATE,
        voucher=terms(valid_days=90),
    )
    sharer = create_account(services)
    shared = sharing.share(services, sharer, deal_id=deal.id)
    buyers = [create_account(services) for _ in range(2)]
    sharing.visit(services, shared, user=buyers[0])
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=buyers[0].headers).json()
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=buyers[1].headers)
    pay(client, buyers[0], started["seat"]["id"])
    pay(client, buyers[1], joined.json()["seat"]["id"])
    settle(services)
    assert [c.status for c in commissions(services)] == ["frozen"]

    # Unredeemed, the voucher may still be refunded: the window has not even opened.
    sharing.move_to(utc_now() + WINDOW + timedelta(days=5))
    settle(services)
    assert [c.status for c in commissions(services)] == ["frozen"]

    staff = staff_of(services, merchant)
    (voucher,) = client.get("/v1/me/vouchers", headers=buyers[0].headers).json()["data"]
    redeemed = client.post(
        "/v1/vouchers/redeem", json={"code": voucher["code"]}, headers=staff.headers
    )
    assert redeemed.status_code == 200, redeemed.text
    sharing.move_to(utc_now() + WINDOW + timedelta(minutes=1))
    settle(services)
    assert [c.status for c in commissions(services)] == ["released"]
    assert wallet(services, sharer.user_id) == 150
    sound(services)


def taken_back_in_full(services: Services, sharer: Account) -> None:
    """The one commission, on a seat of ``PRICE``, was all taken back: none reached the sharer."""
    assert [(c.status, c.clawed_back) for c in commissions(services)] == [
        ("clawed_back", commission_on(PRICE, RATE))
    ]
    assert wallet(services, sharer.user_id) == 0
    sound(services)


@pytest.mark.parametrize("fulfilment", ["pickup", "delivery"])
def test_a_commission_on_goods_waits_until_they_reach_the_buyer(
    client: TestClient, services: Services, fulfilment: str
) -> None:
    # Given a deal of goods paying sharers, collected at a pickup point or delivered, whose
    # buyers paid before choosing a point or an address (paying does not ask for them)
    merchant = create_merchant(services.db)
    staff = staff_of(services, merchant)
    if fulfilment == "pickup":
        deal_id = pickup_deal(client, staff, merchant.id, referral_bps=RATE)
    else:
        deal_id = create_deal(
            services.db,
            merchant,
            team_size=2,
            vertical=Vertical.GOODS,
            referral_commission_bps=RATE,
        ).id
    sharer = create_account(services)
    shared = sharing.share(services, sharer, deal_id=deal_id)
    buyers = [create_account(services) for _ in range(2)]
    sharing.visit(services, shared, user=buyers[0])
    seat_ids = take_seats(client, deal_id, buyers)
    for buyer, seat_id in zip(buyers, seat_ids, strict=True):
        pay(client, buyer, seat_id)
    settle(services)
    assert [c.status for c in commissions(services)] == ["frozen"]

    # When the refund window's length has passed since the team succeeded
    sharing.move_to(utc_now() + WINDOW + timedelta(days=1))
    settle(services)

    # Then nothing reached the buyer, so the order is not complete: the commission is still
    # frozen, and a refund of the whole order takes all of it back
    assert [c.status for c in commissions(services)] == ["frozen"]
    made = refund(client, staff, seat_ids[0], PRICE)
    assert made.status_code == 201, made.text
    taken_back_in_full(services, sharer)


@pytest.mark.parametrize("decided", ["lost", "won"])
def test_a_disputed_commission_waits_for_the_banks_decision_and_a_lost_one_takes_it_back(
    client: TestClient, services: Services, decided: str
) -> None:
    # Given a frozen commission on a seat the sharer brought, whose payer's bank disputes the
    # whole payment
    _, sharer, seats = shared_team(client, services)
    settle(services)
    assert [c.status for c in commissions(services)] == ["frozen"]
    ref = payment_of(services, seats[0][1]).provider_ref
    deliver(client, sandbox(services).dispute(ref, "dp_commission", PRICE))

    # When the refund window closes while the dispute is open
    sharing.move_to(utc_now() + WINDOW + timedelta(days=1))
    settle(services)

    # Then the commission waits for the bank
    assert [c.status for c in commissions(services)] == ["frozen"]

    # When the bank decides
    deliver(client, sandbox(services).dispute(ref, "dp_commission", PRICE, decided))
    settle(services)

    # Then a lost dispute takes the commission back as a refund would, and a won one lets it
    # be paid
    if decided == "lost":
        taken_back_in_full(services, sharer)
    else:
        assert [c.status for c in commissions(services)] == ["released"]
        assert wallet(services, sharer.user_id) == commission_on(PRICE, RATE)
        sound(services)


def test_a_deal_states_its_commission_and_a_bad_one_is_refused(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = staff_of(services, merchant)
    made = client.post(
        "/v1/deals", json=deal_body(merchant.id, referral_commission_bps=800), headers=staff.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["referral_commission_bps"] == 800
    too_much = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, referral_commission_bps=3001),
        headers=staff.headers,
    )
    assert too_much.status_code == 422
    changed = client.patch(
        f"/v1/deals/{made.json()['id']}", json={"referral_commission_bps": 0}, headers=staff.headers
    )
    assert changed.json()["referral_commission_bps"] == 0


# ---------------------------------------------------------------------------- withdrawals


def released_commission(client: TestClient, services: Services) -> Account:
    """A sharer with 150 USD of commission in their wallet."""
    _, sharer, _ = shared_team(client, services, brought=1)
    settle(services)
    sharing.move_to(utc_now() + WINDOW + timedelta(minutes=1))
    settle(services)
    assert wallet(services, sharer.user_id) == 150
    return sharer


def withdraw(client: TestClient, account: Account, amount: int, key: str, **extra: Any) -> Any:
    body = {"amount": {"amount": amount, "currency": "USD"}, "destination": "IBAN DE89 3704"}
    return client.post(
        "/v1/me/wallet/withdrawals",
        json={**body, **extra},
        headers={**account.headers, "Idempotency-Key": key},
    )


def test_a_withdrawal_leaves_the_wallet_at_once_and_a_failed_one_comes_back(
    client: TestClient, services: Services
) -> None:
    sharer = released_commission(client, services)
    operator = create_account(services, role=Role.OPERATOR)

    made = withdraw(client, sharer, 100, "w1")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["status"], body["user_id"], body["merchant_id"]) == (
        "pending",
        sharer.user_id,
        None,
    )
    assert body["destination"] == "IBAN DE89 3704"
    assert wallet(services, sharer.user_id) == 50
    assert withdraw(client, sharer, 100, "w1").json()["id"] == body["id"]  # a retry: once
    assert wallet(services, sharer.user_id) == 50

    too_much = withdraw(client, sharer, 51, "w2")
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "withdrawal_exceeds_balance"
    assert wallet(services, sharer.user_id) == 50
    no_key = client.post(
        "/v1/me/wallet/withdrawals",
        json={"amount": {"amount": 1, "currency": "USD"}, "destination": "x"},
        headers=sharer.headers,
    )
    assert no_key.json()["code"] == "idempotency_key_required"
    blank = withdraw(client, sharer, 10, "w3", destination="   ")
    assert blank.status_code == 422

    pending = client.get("/v1/ops/withdrawals?status=pending", headers=operator.headers).json()
    assert [w["id"] for w in pending["data"]] == [body["id"]]
    assert client.get("/v1/ops/withdrawals", headers=sharer.headers).status_code == 403

    def move(status: str) -> Any:
        return client.post(
            f"/v1/payouts/{body['id']}/status",
            json={"status": status},
            headers={**operator.headers, "Idempotency-Key": f"move-{status}"},
        )

    assert move("sent").json()["status"] == "sent"
    assert wallet(services, sharer.user_id) == 50
    failed = move("failed")
    assert failed.json()["status"] == "failed"
    assert wallet(services, sharer.user_id) == 150
    assert move("paid").json()["code"] == "payout_transition_invalid"
    mine = client.get("/v1/me/wallet/withdrawals", headers=sharer.headers).json()
    assert [(w["id"], w["status"]) for w in mine["data"]] == [(body["id"], "failed")]
    sound(services)


def test_a_paid_withdrawal_stays_paid_and_the_wallet_never_goes_below_zero(
    client: TestClient, services: Services
) -> None:
    sharer = released_commission(client, services)
    operator = create_account(services, role=Role.OPERATOR)
    made = withdraw(client, sharer, 150, "all").json()
    assert wallet(services, sharer.user_id) == 0
    for status in ("sent", "paid"):
        moved = client.post(
            f"/v1/payouts/{made['id']}/status",
            json={"status": status, "reference": "bank-77"},
            headers={**operator.headers, "Idempotency-Key": status},
        )
        assert moved.status_code == 200, moved.text
    assert wallet(services, sharer.user_id) == 0
    assert withdraw(client, sharer, 1, "more").json()["code"] == "withdrawal_exceeds_balance"
    sound(services)


def test_finding_commissions_to_freeze_starts_from_the_deals_not_from_every_seat(
    services: Services,
) -> None:
    # SQLite's planner, without statistics, walked every seat ever sold to find the few a share
    # brought; the query names its order, from the deals to their conversions by index.
    if not services.db.is_sqlite:
        pytest.skip("PostgreSQL plans the joins itself, with its statistics")
    from pintuan.kit.rawsql import Sql
    from pintuan.ledger.commissions import FREEZE_CANDIDATES

    # Every parameter given (the plan does not depend on their values).
    names = set(re.findall(r":(\w+)", FREEZE_CANDIDATES.text))
    explain = Sql("EXPLAIN QUERY PLAN " + FREEZE_CANDIDATES.text)
    steps = [
        row[3]
        for row in services.db.run_raw_sync(
            lambda tx: tx.all(explain, dict.fromkeys(names, "x")), write=False
        )
    ]
    assert steps[0] == "SCAN d"
    assert not [step for step in steps if step.startswith("SCAN") and step != "SCAN d"]
    assert any("ix_share_conversions_deal_id_kind" in step for step in steps)
