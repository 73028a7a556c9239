"""The ledger follows every money movement: holds, charges, captures, refunds, wallets, friends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.audit.ledger import check_ledger
from pintuan.kit.time import clock
from pintuan.ledger.models import Entry, Journal, Wallet
from pintuan.merchants.models import Merchant
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.tampering import tamper


def journals(services: Services, payment_id: str) -> dict[str, str]:
    rows = services.db.run_sync(
        lambda s: s.execute(
            select(Journal.kind, Journal.status).where(Journal.payment_id == payment_id)
        ).all()
    )
    return dict(rows)


def balance(services: Services, account: str, currency: str = "USD") -> int:
    """Debits minus credits of posted journals."""
    return services.db.run_sync(
        lambda s: sum(
            s.scalars(
                select(Entry.amount)
                .join(Journal, Journal.id == Entry.journal_id)
                .where(
                    Entry.account == account,
                    Entry.currency == currency,
                    Journal.status == "posted",
                )
            ).all()
        )
    )


def wallet(services: Services, user_id: str, currency: str = "USD") -> int:
    found = services.db.run_sync(lambda s: s.get(Wallet, (user_id, currency)))
    return found.balance if found else 0


def sound(services: Services) -> None:
    report = services.db.run_sync(check_ledger, write=False)
    assert report.breaches == []


def pay(client: TestClient, shopper: Account, seat_id: str, **body: Any) -> dict[str, Any]:
    payment = client.post(f"/v1/seats/{seat_id}/payments", json=body, headers=shopper.headers)
    assert payment.status_code == 201, payment.text
    if payment.json()["status"] == "requires_action":
        done = client.post(
            f"/v1/test_helpers/payments/{payment.json()['id']}/succeed", headers=shopper.headers
        )
        assert done.status_code == 200, done.text
        return dict(done.json())
    return dict(payment.json())


def paid_team(client: TestClient, deal_id: str, shoppers: list[Account]) -> tuple[str, list[str]]:
    """The first shopper starts a team of the deal, the others join it, and each pays for their
    seat through the sandbox; returns the team and its seats, in the shoppers' order."""
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers)
    assert started.status_code == 201, started.text
    team_id = started.json()["team"]["id"]
    seats = [started.json()["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
        assert joined.status_code == 201, joined.text
        seats.append(joined.json()["seat"]["id"])
    for shopper, seat_id in zip(shoppers, seats, strict=True):
        pay(client, shopper, seat_id)
    return team_id, seats


def team_of_two(
    client: TestClient, services: Services, commission_bps: int = 0
) -> tuple[str, list[tuple[Account, str]]]:
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=commission_bps)
        )
    )
    deal = create_deal(services.db, merchant, team_size=2)
    leader, joiner = create_account(services), create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=joiner.headers).json()
    return merchant.id, [(leader, started["seat"]["id"]), (joiner, joined["seat"]["id"])]


def test_a_hold_is_pending_until_captured_then_the_merchant_earns_less_the_fee(
    client: TestClient, services: Services
) -> None:
    merchant_id, seats = team_of_two(client, services, commission_bps=1000)
    first = pay(client, *seats[0])
    assert journals(services, first["id"]) == {"authorize": "pending"}
    assert balance(services, "shopper_funds_held") == 0  # pending journals hold no balance

    second = pay(client, *seats[1])
    Worker(services).run_until_idle()

    for payment in (first, second):
        assert journals(services, payment["id"]) == {"authorize": "posted", "earn": "posted"}
    assert balance(services, "provider_clearing:sandbox") == 3000
    assert balance(services, f"merchant_payable:{merchant_id}") == -2700
    assert balance(services, "platform_fees") == -300
    assert balance(services, "shopper_funds_held") == 0
    sound(services)


def test_a_failed_team_voids_its_holds_and_leaves_no_balance(
    client: TestClient, services: Services
) -> None:
    _, seats = team_of_two(client, services)
    paid = pay(client, *seats[0])

    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()

    assert journals(services, paid["id"]) == {"authorize": "voided"}
    assert balance(services, "provider_clearing:sandbox") == 0
    sound(services)


def test_a_failed_charge_is_owed_back_then_refunded(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    _, seats = team_of_two(client, services)
    paid = pay(client, *seats[0])
    assert journals(services, paid["id"]) == {"charge": "posted"}

    clock.offset = timedelta(days=2)
    worker = Worker(services)
    worker.tick()  # fails the team: the charge is owed back before the provider is asked

    owed = journals(services, paid["id"])
    worker.run_until_idle()

    assert owed == {"charge": "posted", "owe_back": "posted"}
    assert journals(services, paid["id"]) == {
        "charge": "posted",
        "owe_back": "posted",
        "refund": "posted",
    }
    assert balance(services, "refunds_payable") == 0
    assert balance(services, "provider_clearing:sandbox") == 0
    sound(services)


def test_a_succeeded_team_of_charges_earns_at_once(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    merchant_id, seats = team_of_two(client, services, commission_bps=250)
    payments = [pay(client, *seat) for seat in seats]

    for payment in payments:
        assert journals(services, payment["id"]) == {"charge": "posted", "earn": "posted"}
    assert balance(services, f"merchant_payable:{merchant_id}") == -(3000 - 76)  # 37.5 → 38 each
    sound(services)


def test_a_wallet_is_topped_up_through_a_provider_and_pays_a_seat_at_once(
    client: TestClient, services: Services
) -> None:
    _, seats = team_of_two(client, services)
    shopper, seat_id = seats[0]
    topup = client.post(
        "/v1/me/wallet/topups",
        json={"amount": {"amount": 5000, "currency": "USD"}},
        headers=shopper.headers,
    )
    assert topup.status_code == 201, topup.text
    assert topup.json()["style"] == "charge"
    client.post(f"/v1/test_helpers/payments/{topup.json()['id']}/succeed", headers=shopper.headers)
    assert wallet(services, shopper.user_id) == 5000

    paid = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "wallet"}, headers=shopper.headers
    )

    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "charged"
    assert paid.json()["next_action"] is None
    assert wallet(services, shopper.user_id) == 3500
    seen = client.get("/v1/me/wallet", headers=shopper.headers).json()
    assert seen["balances"] == [{"amount": 3500, "currency": "USD"}]
    sound(services)


def test_a_short_wallet_is_refused_and_nothing_changes(
    client: TestClient, services: Services
) -> None:
    _, seats = team_of_two(client, services)
    shopper, seat_id = seats[0]

    refused = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "wallet"}, headers=shopper.headers
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_funds"
    assert services.db.run_sync(lambda s: s.scalars(select(Payment.id)).all()) == []
    assert services.db.run_sync(lambda s: s.scalars(select(Journal.id)).all()) == []
    assert services.db.run_sync(lambda s: s.get(Seat, seat_id).status) == "held"


def test_money_owed_back_goes_to_the_wallet_at_once_when_the_shopper_chose_so(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    _, seats = team_of_two(client, services)
    shopper, seat_id = seats[0]
    paid = pay(client, shopper, seat_id, refund_to="wallet")

    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()

    assert wallet(services, shopper.user_id) == 1500
    assert services.db.run_sync(lambda s: s.get(Payment, paid["id"]).status) == "refunded"
    assert journals(services, paid["id"]) == {
        "charge": "posted",
        "owe_back": "posted",
        "wallet_refund": "posted",
    }
    # the sandbox was never asked to refund: the money stays with the provider, owed as balance
    assert balance(services, "provider_clearing:sandbox") == 1500
    (notice,) = client.get("/v1/me/notifications", headers=shopper.headers).json()["data"]
    assert notice["kind"] == "team_failed"
    assert [(m["how"], m["done"]) for m in notice["data"]["money"]] == [("wallet", True)]
    sound(services)


def test_a_friend_pays_through_a_shared_link_and_is_refunded_if_the_team_fails(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    _, seats = team_of_two(client, services)
    shopper, seat_id = seats[0]
    friend = create_account(services)

    link = client.post(f"/v1/seats/{seat_id}/pay-links", headers=shopper.headers)
    assert link.status_code == 201, link.text
    token = link.json()["token"]
    seen = client.get(f"/v1/pay-links/{token}")
    paid = client.post(
        f"/v1/pay-links/{token}/payments", json={"refund_to": "wallet"}, headers=friend.headers
    )
    assert paid.status_code == 201, paid.text
    client.post(f"/v1/test_helpers/payments/{paid.json()['id']}/succeed", headers=friend.headers)

    assert seen.json()["amount"] == {"amount": 1500, "currency": "USD"}
    assert seen.json()["seat_id"] == seat_id
    team = client.get(f"/v1/teams/{seen.json()['team_id']}").json()
    assert team["seats_paid"] == 1

    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()
    assert wallet(services, friend.user_id) == 1500
    assert wallet(services, shopper.user_id) == 0
    sound(services)


def test_a_forged_or_expired_pay_link_is_refused(client: TestClient, services: Services) -> None:
    _, seats = team_of_two(client, services)
    shopper, seat_id = seats[0]
    token = client.post(f"/v1/seats/{seat_id}/pay-links", headers=shopper.headers).json()["token"]

    # Its signature's last two characters changed (to others than they are: a signature ends in
    # "xx" once in 4,096 links).
    tail = "yy" if token.endswith("xx") else "xx"
    forged = client.get(f"/v1/pay-links/{token[:-2]}{tail}")
    clock.offset = timedelta(hours=1)
    expired = client.get(f"/v1/pay-links/{token}")

    assert forged.status_code == 404
    assert forged.json()["code"] == "pay_link_not_found"
    assert expired.status_code == 410
    assert expired.json()["code"] == "pay_link_expired"


def test_the_check_finds_a_journal_that_does_not_balance_and_a_missing_one(
    client: TestClient, services: Services
) -> None:
    _, seats = team_of_two(client, services)
    paid = pay(client, *seats[0])
    tamper(
        services.db,
        lambda s: s.execute(
            update(Entry)
            .where(Entry.journal_id == f"{paid['id']}:authorize", Entry.amount > 0)
            .values(amount=1499)
        ),
    )
    services.db.run_sync(
        lambda s: s.execute(
            update(Payment).where(Payment.id == paid["id"]).values(status="captured")
        )
    )

    details = [b.detail for b in services.db.run_sync(check_ledger, write=False).breaches]

    assert any("is off by -1 USD" in d for d in details)
    assert any(f"payment {paid['id']} is captured" in d for d in details)
