"""Refunds after a team's success: by the merchant's staff or an operator, in parts, up to what
was paid, taken back from the merchant and the fee in proportion, paid back through the provider
(or into the wallet at once), and seen by the shopper."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from pintuan.audit.ledger import check_ledger
from pintuan.audit.service import audit_database
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.ledger.models import Journal
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_ledger import balance, pay, wallet
from tests.features.test_payment_properties import Fault, faltering_sandbox

_keys = itertools.count()


def sound(services: Services) -> None:
    assert services.db.run_sync(check_ledger, write=False).breaches == []


def confirmed_team(
    client: TestClient, services: Services, *, commission_bps: int = 1000, **paid_with: Any
) -> tuple[Merchant, Account, list[tuple[Account, str]]]:
    """A merchant (with its staff) whose team of two succeeded, both seats paid with
    ``paid_with`` and the money earned (captured or charged)."""
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=commission_bps)
        )
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, team_size=2)
    leader, joiner = create_account(services), create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=joiner.headers)
    seats = [(leader, started["seat"]["id"]), (joiner, joined.json()["seat"]["id"])]
    for shopper, seat_id in seats:
        pay(client, shopper, seat_id, **paid_with)
    Worker(services).run_until_idle()
    return merchant, staff, seats


def refund(
    client: TestClient, who: Account, seat_id: str, amount: int, reason: str = "damaged box"
) -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": amount, "reason": reason},
        headers={**who.headers, "Idempotency-Key": f"refund-{next(_keys)}"},
    )


def sandbox_refunds(services: Services) -> list[tuple[str, int]]:
    return services.db.run_sync(
        lambda s: sorted(
            (r.idempotency_key, r.amount)
            for r in s.execute(
                text("SELECT idempotency_key, amount FROM sandbox_operations WHERE kind = 'refund'")
            )
        ),
        write=False,
    )


def test_staff_refund_a_captured_seat_in_parts_through_the_provider(
    client: TestClient, services: Services
) -> None:
    # Given a team that succeeded on card holds, 10% commission
    merchant, staff, seats = confirmed_team(client, services)
    shopper, seat_id = seats[1]
    payable = f"merchant_payable:{merchant.id}"
    assert balance(services, payable) == -2700

    # When the staff refund 500 of the seat's 1500, then 1000 more
    first = refund(client, staff, seat_id, 500)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "pending"
    assert first.json()["merchant_part"]["amount"] + first.json()["fee_part"]["amount"] == 500
    sound(services)
    Worker(services).run_until_idle()
    second = refund(client, staff, seat_id, 1000)
    assert second.status_code == 201, second.text
    Worker(services).run_until_idle()

    # Then the sandbox refunded each part once, by the refund's own id
    assert sandbox_refunds(services) == sorted(
        [(first.json()["id"], 500), (second.json()["id"], 1000)]
    )
    # And the merchant and the fee gave back the whole seat in proportion
    assert balance(services, payable) == -2700 + 1350
    assert balance(services, "platform_fees") == -300 + 150
    assert balance(services, "refunds_payable") == 0
    assert balance(services, "provider_clearing:sandbox") == 3000 - 1500
    sound(services)
    # And the shopper sees both, done
    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers)
    assert [(r["amount"]["amount"], r["status"]) for r in seen.json()["items"]] == [
        (500, "succeeded"),
        (1000, "succeeded"),
    ]

    # And nothing more can be refunded; the refusal changes nothing
    more = refund(client, staff, seat_id, 1)
    assert (more.status_code, more.json()["code"]) == (422, "refund_exceeds_paid")
    assert more.json()["errors"] == [{"field": "amount", "message": "at most 0"}]
    sound(services)


def test_a_refund_larger_than_what_is_left_is_refused_and_says_how_much_is_left(
    client: TestClient, services: Services
) -> None:
    _, staff, seats = confirmed_team(client, services)
    seat_id = seats[0][1]
    assert refund(client, staff, seat_id, 400).status_code == 201
    too_much = refund(client, staff, seat_id, 1101)
    assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_exceeds_paid")
    assert "1100" in too_much.json()["detail"]
    assert refund(client, staff, seat_id, 1100).status_code == 201
    sound(services)


def test_an_operator_may_refund_and_a_seat_of_a_paid_wallet_comes_back_at_once(
    client: TestClient, services: Services
) -> None:
    # Given a team paid from the shoppers' wallets
    shoppers_money = 5000
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=2)
    leader, joiner = create_account(services), create_account(services)
    for shopper in (leader, joiner):
        topup = client.post(
            "/v1/me/wallet/topups",
            json={"amount": {"amount": shoppers_money, "currency": "USD"}},
            headers=shopper.headers,
        ).json()
        client.post(f"/v1/test_helpers/payments/{topup['id']}/succeed", headers=shopper.headers)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=joiner.headers)
    pay(client, leader, started["seat"]["id"], provider="wallet")
    pay(client, joiner, joined.json()["seat"]["id"], provider="wallet")
    assert wallet(services, joiner.user_id) == shoppers_money - 1500

    # When an operator refunds 700 of the joiner's seat
    done = refund(client, operator, joined.json()["seat"]["id"], 700)

    # Then it is back in the wallet at once, no provider call owed
    assert done.status_code == 201, done.text
    assert (done.json()["status"], done.json()["destination"]) == ("succeeded", "wallet")
    assert wallet(services, joiner.user_id) == shoppers_money - 1500 + 700
    sound(services)


def test_only_the_merchants_staff_and_operators_may_refund_and_a_key_is_required(
    client: TestClient, services: Services
) -> None:
    _, staff, seats = confirmed_team(client, services)
    shopper, seat_id = seats[0]
    stranger = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    for who in (shopper, stranger):
        refused = refund(client, who, seat_id, 100)
        assert (refused.status_code, refused.json()["code"]) == (404, "seat_not_found")
    keyless = client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": 100, "reason": "x"},
        headers=staff.headers,
    )
    assert (keyless.status_code, keyless.json()["code"]) == (422, "idempotency_key_required")
    for body in ({"amount": 0, "reason": "x"}, {"amount": 100, "reason": ""}, {"amount": "1"}):
        bad = client.post(
            f"/v1/seats/{seat_id}/refunds",
            json=body,
            headers={**staff.headers, "Idempotency-Key": f"bad-{next(_keys)}"},
        )
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error"), bad.text
    assert (
        services.db.run_sync(
            lambda s: s.scalars(select(Journal.id).where(Journal.kind == "refund_owed")).all()
        )
        == []
    )


def test_a_seat_whose_team_has_not_succeeded_is_not_refundable(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, team_size=2)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    pay(client, leader, started["seat"]["id"])
    refused = refund(client, staff, started["seat"]["id"], 100)
    assert (refused.status_code, refused.json()["code"]) == (409, "seat_not_refundable")


def test_the_same_key_refunds_once(client: TestClient, services: Services) -> None:
    _, staff, seats = confirmed_team(client, services)
    headers = {**staff.headers, "Idempotency-Key": "refund-once"}
    body = {"amount": 300, "reason": "late delivery"}
    first = client.post(f"/v1/seats/{seats[0][1]}/refunds", json=body, headers=headers)
    again = client.post(f"/v1/seats/{seats[0][1]}/refunds", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    listed = client.get(f"/v1/seats/{seats[0][1]}/refunds", headers=staff.headers)
    assert len(listed.json()["items"]) == 1


def test_a_refund_after_the_merchant_was_paid_out_is_taken_from_what_it_is_owed_next(
    client: TestClient, services: Services
) -> None:
    # Given a merchant paid out everything it was owed
    merchant, staff, seats = confirmed_team(client, services)
    operator = create_account(services, role=Role.OPERATOR)
    paid_out = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": 2700, "currency": "USD"}},
        headers={**operator.headers, "Idempotency-Key": "pay-out-all"},
    )
    assert paid_out.status_code == 201, paid_out.text

    # When a seat is refunded in full afterwards
    assert refund(client, staff, seats[0][1], 1500).status_code == 201
    Worker(services).run_until_idle()

    # Then the merchant owes its part back (its payable is below zero) and the ledger holds
    owed = client.get(f"/v1/merchants/{merchant.id}/balance", headers=operator.headers).json()
    assert owed["owed"] == [{"amount": -1350, "currency": "USD"}]
    sound(services)


def test_a_refund_the_provider_keeps_refusing_is_money_in_limbo_until_it_is_made(
    client: TestClient, services: Services
) -> None:
    # Given a refund whose provider refuses it
    _, staff, seats = confirmed_team(client, services)
    provider = faltering_sandbox(services)
    provider.faults["refund"].extend([Fault.REFUSED] * 2)
    made = refund(client, staff, seats[0][1], 300).json()
    worker = Worker(services)
    worker.tick()

    # Then after the grace period the audit reports it as money in limbo
    limbo = services.db.run_sync(lambda s: audit_database(s, timedelta(0)), write=False)
    assert [b.invariant for b in limbo] == ["5 no money in limbo"]
    assert made["id"] in limbo[0].detail

    # When the provider recovers and the backoff runs out, it is made once and all is sound
    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        worker.run_until_idle()
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0)), write=False) == []
    assert [c.key for c in provider.calls if c.kind == "refund"] == [made["id"]] * 3
