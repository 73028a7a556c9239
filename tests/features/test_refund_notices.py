"""The sandbox's news of refunds and disputes, through the inbox: our refund confirmed once, a
refund made in its dashboard recorded as a refund after success, disputes opened, won and lost
with their journals, and the merchant's list of disputes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.ledger import check_ledger
from pintuan.domain.payments import EventKind, ProviderEvent
from pintuan.domain.refunds import MoneyNotice, NoticeKind
from pintuan.kit.time import utc_now
from pintuan.ledger.models import Journal
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxProvider
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.payments.service import handle_provider_event
from pintuan.services import Services
from pintuan.worker import Worker
from tests.features.test_ledger import balance
from tests.features.test_refunds import confirmed_team, refund


def sandbox(services: Services) -> SandboxProvider:
    provider = services.providers["sandbox"]
    assert isinstance(provider, SandboxProvider)
    return provider


def deliver(client: TestClient, hook: tuple[bytes, dict[str, str]]) -> dict[str, Any]:
    body, headers = hook
    answer = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def payment_of(services: Services, seat_id: str) -> Payment:
    found = services.db.run_sync(
        lambda s: s.scalar(
            select(Payment).where(Payment.seat_id == seat_id, Payment.status == "captured")
        ),
        write=False,
    )
    assert found is not None
    return found


def journal_kinds(services: Services, payment_id: str) -> list[str]:
    return sorted(
        services.db.run_sync(
            lambda s: s.scalars(select(Journal.kind).where(Journal.payment_id == payment_id)).all(),
            write=False,
        )
    )


def tell_total(services: Services, payment: Payment, event_id: str, ref: str, total: int) -> None:
    """The provider's news of a refund ``ref`` that tells only the total refunded so far (as
    Alipay's does), applied through the inbox."""
    news = ProviderEvent(
        event_id=event_id,
        kind=EventKind.OTHER,
        raw_type="TRADE_SUCCESS.refund",
        provider_ref=payment.provider_ref,
        notices=(
            MoneyNotice(NoticeKind.REFUNDED, ref, None, request_no=ref, refunded_total=total),
        ),
    )
    services.db.run_raw_sync(handle_provider_event, "sandbox", news, "{}", utc_now())


def sound(services: Services) -> None:
    assert services.db.run_sync(check_ledger, write=False).breaches == []


def test_the_notice_of_our_own_refund_confirms_it_once(
    client: TestClient, services: Services
) -> None:
    # Given a refund the sandbox made before the worker could record its answer
    _, staff, seats = confirmed_team(client, services)
    seat_id = seats[0][1]
    payment = payment_of(services, seat_id)
    asked = refund(client, staff, seat_id, 600).json()
    assert payment.provider_ref is not None
    sandbox(services).refund(payment.provider_ref, 600, asked["id"])

    # When its notice arrives, twice, and then the worker runs (its call is a repeat)
    hook = sandbox(services).refund_notice(payment.provider_ref, asked["id"])
    assert deliver(client, hook)["duplicate"] is False
    assert deliver(client, hook)["duplicate"] is True
    Worker(services).run_until_idle()

    # Then the refund is done once, with the provider's id of it
    found = services.db.run_sync(lambda s: s.get(Refund, asked["id"]), write=False)
    assert found is not None
    assert (found.status, found.provider_ref) == ("succeeded", f"re_{asked['id']}")
    assert journal_kinds(services, payment.id).count("refund_paid") == 1
    sound(services)


def test_a_refund_made_in_the_providers_dashboard_is_recorded_as_a_refund_after_success(
    client: TestClient, services: Services
) -> None:
    merchant, _, seats = confirmed_team(client, services)
    shopper, seat_id = seats[1]
    payment = payment_of(services, seat_id)
    assert payment.provider_ref is not None

    hook = sandbox(services).refund_in_dashboard(payment.provider_ref, 300)
    deliver(client, hook)
    deliver(client, hook)

    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert [(r["amount"]["amount"], r["status"], r["source"]) for r in seen] == [
        (300, "succeeded", "provider")
    ]
    assert balance(services, f"merchant_payable:{merchant.id}") == -2700 + 270
    sound(services)


def test_a_dispute_lost_is_borne_by_the_merchant_and_shows_on_its_list(
    client: TestClient, services: Services
) -> None:
    # Given a merchant owed 2700 for a team of two (10% fee)
    merchant, staff, seats = confirmed_team(client, services)
    payment = payment_of(services, seats[0][1])
    assert payment.provider_ref is not None
    payable = f"merchant_payable:{merchant.id}"

    # When the payer's bank disputes the whole seat: the sandbox takes the money back
    deliver(client, sandbox(services).dispute(payment.provider_ref, "dp_1", 1500))

    # Then the money sits in the disputed account, taken from the provider's clearing
    assert balance(services, "disputed") == 1500
    assert balance(services, "provider_clearing:sandbox") == 3000 - 1500
    assert balance(services, payable) == -2700
    listed = client.get(f"/v1/merchants/{merchant.id}/disputes", headers=staff.headers).json()
    assert [(d["status"], d["amount"]["amount"]) for d in listed["items"]] == [("open", 1500)]
    # And nothing of a disputed seat is left to refund
    refused = refund(client, staff, seats[0][1], 1)
    assert refused.json()["code"] == "refund_exceeds_paid"
    sound(services)

    # When the dispute is lost (and the notice comes twice)
    hook = sandbox(services).dispute(payment.provider_ref, "dp_1", 1500, "lost")
    deliver(client, hook)
    deliver(client, hook)

    # Then the merchant bears all of it; the fee stays the platform's
    assert balance(services, "disputed") == 0
    assert balance(services, payable) == -2700 + 1500
    assert balance(services, "platform_fees") == -300
    listed = client.get(f"/v1/merchants/{merchant.id}/disputes", headers=staff.headers).json()
    assert [d["status"] for d in listed["items"]] == ["lost"]
    sound(services)


def test_a_dispute_won_gives_the_money_back_and_the_seat_may_be_refunded_again(
    client: TestClient, services: Services
) -> None:
    merchant, staff, seats = confirmed_team(client, services)
    payment = payment_of(services, seats[0][1])
    assert payment.provider_ref is not None
    deliver(client, sandbox(services).dispute(payment.provider_ref, "dp_2", 1000))
    assert refund(client, staff, seats[0][1], 501).json()["code"] == "refund_exceeds_paid"

    deliver(client, sandbox(services).dispute(payment.provider_ref, "dp_2", 1000, "won"))

    assert balance(services, "disputed") == 0
    assert balance(services, "provider_clearing:sandbox") == 3000
    assert balance(services, f"merchant_payable:{merchant.id}") == -2700
    assert refund(client, staff, seats[0][1], 1500).status_code == 201
    sound(services)


def test_a_decision_whose_opening_was_missed_opens_and_decides_the_dispute(
    client: TestClient, services: Services
) -> None:
    merchant, _, seats = confirmed_team(client, services)
    payment = payment_of(services, seats[0][1])
    assert payment.provider_ref is not None
    deliver(client, sandbox(services).dispute(payment.provider_ref, "dp_3", 700, "lost"))
    disputes = services.db.run_sync(
        lambda s: [(d.status, d.amount) for d in s.scalars(select(Dispute))], write=False
    )
    assert disputes == [("lost", 700)]
    assert balance(services, f"merchant_payable:{merchant.id}") == -2700 + 700
    sound(services)


@pytest.mark.parametrize(
    ("refund_to", "total"),
    # Ours went back the way the money came, so the provider's total counts it; or into the
    # payer's wallet, which the provider never saw.
    [("original", 650), ("wallet", 250)],
)
def test_a_refund_told_only_as_the_total_so_far_is_recorded_as_the_difference(
    client: TestClient, services: Services, refund_to: str, total: int
) -> None:
    # Given a seat with 400 refunded through Pintuan (Alipay tells only the total refunded)
    _, staff, seats = confirmed_team(client, services, refund_to=refund_to)
    shopper, seat_id = seats[0]
    payment = payment_of(services, seat_id)
    assert refund(client, staff, seat_id, 400).status_code == 201
    Worker(services).run_until_idle()

    # When the provider tells of a refund made elsewhere, with the total refunded there (twice,
    # as two notifications of the same refund)
    for event_id in ("evt_total_1", "evt_total_2"):
        tell_total(services, payment, event_id, "HZ0001", total)

    # Then the other 250 is a refund after success, recorded once
    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert sorted((r["amount"]["amount"], r["source"], r["destination"]) for r in seen) == [
        (250, "provider", "original"),
        (400, "request", refund_to),
    ]
    sound(services)


def test_a_dashboard_refund_goes_back_through_the_provider_even_when_the_payer_chose_the_wallet(
    client: TestClient, services: Services
) -> None:
    _, _, seats = confirmed_team(client, services, refund_to="wallet")
    shopper, seat_id = seats[0]
    payment = payment_of(services, seat_id)
    assert payment.provider_ref is not None

    deliver(client, sandbox(services).refund_in_dashboard(payment.provider_ref, 200))

    [seen] = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert seen["destination"] == "original"
    assert balance(services, "provider_clearing:sandbox") == 3000 - 200
    sound(services)
