"""Refunds after success and disputes with Stripe: partial refunds through the official SDK
against the fake, and ``charge.refunded`` / ``charge.dispute.created`` / ``.closed`` through
the inbox."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.ledger import check_ledger
from pintuan.domain.payments import ProviderError, ProviderRefused
from pintuan.domain.roles import Role
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account
from tests.fakes.stripe_api import FakeStripe
from tests.features import test_stripe_payments_api as paying
from tests.features.test_ledger import balance
from tests.features.test_refunds import refund
from tests.features.test_stripe_payments_api import paid_with_stripe, team_with_seats

# The app talks to the fake Stripe as in the payment tests.
served_fake, fake, settings = paying.served_fake, paying.fake, paying.settings


def post(client: TestClient, hook: tuple[bytes, dict[str, str]]) -> None:
    body, headers = hook
    answer = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def captured_team(
    client: TestClient, services: Services, fake: FakeStripe
) -> tuple[list[tuple[Account, str]], list[str]]:
    """A team of two that succeeded on Stripe holds, captured by the worker: its shoppers'
    seats, and their payment intents."""
    _, seats = team_with_seats(client, services)
    intents = [paid_with_stripe(client, fake, shopper, seat_id) for shopper, seat_id in seats]
    Worker(services).run_until_idle()
    return seats, intents


def sound(services: Services) -> None:
    assert services.db.run_sync(check_ledger, write=False).breaches == []


def test_partial_refunds_go_through_stripe_and_its_notices_confirm_them_once(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given a team of two that succeeded on Stripe holds, captured by the worker
    seats, intents = captured_team(client, services, fake)
    operator = create_account(services, role=Role.OPERATOR)
    shopper, seat_id = seats[0]

    # When an operator refunds 500 and then 700 of the first seat
    first = refund(client, operator, seat_id, 500).json()
    second = refund(client, operator, seat_id, 700).json()
    Worker(services).run_until_idle()

    # Then Stripe refunded each part once, naming our refund
    made = fake.refunds_of(intents[0])
    assert sorted((r["amount"], r["metadata"]["pintuan_refund"]) for r in made) == sorted(
        [(500, first["id"]), (700, second["id"])]
    )
    # And its charge.refunded notice (twice) records nothing more, only Stripe's ids
    post(client, fake.charge_refunded(intents[0]))
    post(client, fake.charge_refunded(intents[0]))
    found = services.db.run_sync(
        lambda s: {r.id: (r.status, r.provider_ref) for r in s.scalars(select(Refund))},
        write=False,
    )
    by_key = {r["metadata"]["pintuan_refund"]: r["id"] for r in made}
    assert found == {k: ("succeeded", ref) for k, ref in by_key.items()}
    sound(services)

    # When 300 more is refunded in Stripe's dashboard and Stripe says so
    fake.refund_in_dashboard(intents[0], 300)
    post(client, fake.charge_refunded(intents[0]))

    # Then it is a refund after success too, and the shopper sees all three
    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert sorted((r["amount"]["amount"], r["source"]) for r in seen) == [
        (300, "provider"),
        (500, "request"),
        (700, "request"),
    ]
    assert balance(services, "provider_clearing:stripe") == 3000 - 1500
    sound(services)


def test_a_stripe_dispute_is_opened_then_lost_through_its_notices(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    _, intents = captured_team(client, services, fake)

    dispute = fake.open_dispute(intents[1], 1500)
    post(client, fake.object_event("charge.dispute.created", dispute))
    assert balance(services, "disputed") == 1500
    closed = fake.close_dispute(dispute["id"], "lost")
    post(client, fake.object_event("charge.dispute.closed", closed))

    found = services.db.run_sync(
        lambda s: [(d.provider_ref, d.status, d.amount) for d in s.scalars(select(Dispute))],
        write=False,
    )
    assert found == [(dispute["id"], "lost", 1500)]
    assert balance(services, "disputed") == 0
    sound(services)


def test_a_stripe_dispute_won_gives_the_money_back(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    _, intents = captured_team(client, services, fake)

    dispute = fake.open_dispute(intents[0], 800)
    post(client, fake.object_event("charge.dispute.created", dispute))
    post(
        client, fake.object_event("charge.dispute.closed", fake.close_dispute(dispute["id"], "won"))
    )

    assert balance(services, "disputed") == 0
    assert balance(services, "provider_clearing:stripe") == 3000
    sound(services)


def test_a_refund_stripe_will_not_make_is_refused_unless_an_earlier_try_made_it(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given a captured Stripe seat of 1500
    _, intents = captured_team(client, services, fake)
    stripe = services.providers["stripe"]

    # When 1200 is refunded in the dashboard and ours asks for 500: Stripe answers 400
    fake.refund_in_dashboard(intents[0], 1200)
    # Then it is the provider's word that the refund was not made
    with pytest.raises(ProviderRefused, match="amount_too_large"):
        stripe.refund(intents[0], 500, "rfd_first")

    # When our refund of 100 under a key is made, its answer lost and the key forgotten by
    # Stripe (a day later: an operator's retry), then the dashboard takes the rest but 50
    stripe.refund(intents[1], 100, "rfd_second")
    fake.forget_keys()
    fake.refund_in_dashboard(intents[1], 1350)
    # Then asking again finds the refund made under the key: done, not refused, made once
    creates = fake.calls["refunds.create"]
    stripe.refund(intents[1], 100, "rfd_second")
    assert [r["amount"] for r in fake.refunds_of(intents[1])] == [100, 1350]
    assert fake.calls["refunds.create"] == creates  # found first: never asked to make it again

    # And once that refund failed at the bank, asking again is Stripe's word that it is not made
    [ours] = [r for r in fake.refunds_of(intents[1]) if r["amount"] == 100]
    fake.fail_refund(ours["id"])
    with pytest.raises(ProviderRefused, match="failed at Stripe"):
        stripe.refund(intents[1], 100, "rfd_second")

    # And a Stripe failure without its word (a 500) is only a failure, asked again later
    fake.fail_next("refunds.create")
    with pytest.raises(ProviderError) as failed:
        stripe.refund(intents[1], 10, "rfd_third")
    assert not isinstance(failed.value, ProviderRefused)


def test_a_refund_made_under_our_key_is_found_on_any_page_of_the_payments_refunds(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given our refund of 100 made under a key, its answer lost and the key forgotten, and then
    # five more refunds in the dashboard, with Stripe's pages two refunds long
    _, intents = captured_team(client, services, fake)
    stripe = services.providers["stripe"]
    stripe.refund(intents[0], 100, "rfd_early")
    fake.forget_keys()
    for _ in range(5):
        fake.refund_in_dashboard(intents[0], 10)
    fake.page_cap = 2
    lists, creates = fake.calls["refunds.list"], fake.calls["refunds.create"]

    # When it is asked for again
    stripe.refund(intents[0], 100, "rfd_early")

    # Then it is found on the last page (newest first), and not made a second time
    assert fake.calls["refunds.create"] == creates
    assert sorted(r["amount"] for r in fake.refunds_of(intents[0])) == [10] * 5 + [100]
    assert fake.calls["refunds.list"] - lists == 3


def test_a_stripe_refund_that_fails_after_it_was_paid_is_owed_again_once(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given a refund of 600 that Stripe made
    seats, intents = captured_team(client, services, fake)
    operator = create_account(services, role=Role.OPERATOR)
    made = refund(client, operator, seats[0][1], 600).json()
    Worker(services).run_until_idle()
    [stripe_refund] = fake.refunds_of(intents[0])

    # When it fails at the bank, and Stripe says so in two notices
    post(client, fake.fail_refund(stripe_refund["id"]))
    post(client, fake.object_event("refund.updated", fake.refunds[stripe_refund["id"]]))

    # Then the refund is owed again, once, and waits for an operator's wallet payment
    row = services.db.run_sync(lambda s: s.get(Refund, made["id"]), write=False)
    assert row is not None
    assert (row.status, row.last_outcome, row.provider_ref) == (
        "pending",
        "returned",
        stripe_refund["id"],
    )
    assert "expired_or_canceled_card" in (row.last_error or "")
    assert balance(services, "provider_clearing:stripe") == 3000
    assert balance(services, "refunds_payable") == -600
    queued = client.get("/v1/operator/refunds/queue", headers=operator.headers).json()["data"]
    assert [(q["id"], q["actions"]) for q in queued] == [(made["id"], ["wallet"])]
    sound(services)


def given_back_in_full(
    client: TestClient, services: Services, shopper: Account, seat_id: str, ours: str
) -> None:
    """The seat's whole 1500 went back once: our refund of 500, made in a refund of the whole
    payment in Stripe's dashboard, and that refund's own 1000; the merchant keeps none of it."""
    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert sorted(
        (r["id"] == ours, r["amount"]["amount"], r["source"], r["status"]) for r in seen
    ) == [(False, 1000, "provider", "succeeded"), (True, 500, "request", "succeeded")]
    assert balance(services, "provider_clearing:stripe") == 3000 - 1500
    assert balance(services, "refunds_payable") == 0
    sound(services)


@pytest.mark.parametrize("first", ["news", "call"])
def test_our_partial_refund_counts_in_a_whole_refund_made_in_the_dashboard_meanwhile(
    client: TestClient, services: Services, fake: FakeStripe, first: str
) -> None:
    # Given an operator's refund of 500 of a captured seat of 1500, not yet asked of Stripe
    seats, intents = captured_team(client, services, fake)
    operator = create_account(services, role=Role.OPERATOR)
    shopper, seat_id = seats[0]
    ours = refund(client, operator, seat_id, 500).json()

    # When the whole 1500 is refunded in Stripe's dashboard meanwhile, and Stripe's notice of
    # it comes before or after the worker asks for ours (charge_already_refunded)
    fake.refund_in_dashboard(intents[0], 1500)
    if first == "news":
        post(client, fake.charge_refunded(intents[0]))
        Worker(services).run_until_idle()
    else:
        Worker(services).run_until_idle()
        post(client, fake.charge_refunded(intents[0]))

    # Then ours is made (in the dashboard's), and the dashboard's is recorded for the rest
    given_back_in_full(client, services, shopper, seat_id, ours["id"])


def test_a_refund_stripe_refused_is_made_in_a_whole_refund_made_in_the_dashboard_later(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given 1200 of a seat of 1500 refunded in the dashboard, and then our refund of 500, which
    # Stripe refuses (only 300 is left): it waits for an operator, who may pay it to the wallet
    seats, intents = captured_team(client, services, fake)
    operator = create_account(services, role=Role.OPERATOR)
    shopper, seat_id = seats[0]
    fake.refund_in_dashboard(intents[0], 1200)
    ours = refund(client, operator, seat_id, 500).json()
    Worker(services).run_until_idle()
    queued = client.get("/v1/operator/refunds/queue", headers=operator.headers).json()["data"]
    assert [(q["id"], q["actions"]) for q in queued] == [(ours["id"], ["retry", "wallet"])]

    # When the rest, 300, is refunded in the dashboard too, and Stripe tells of both
    fake.refund_in_dashboard(intents[0], 300)
    post(client, fake.charge_refunded(intents[0]))

    # Then the payer has had the whole payment back at Stripe, ours in it: it is made, out of
    # the queue (never paid again to the wallet), and the rest is the dashboard's own
    assert client.get("/v1/operator/refunds/queue", headers=operator.headers).json()["data"] == []
    given_back_in_full(client, services, shopper, seat_id, ours["id"])


def test_a_whole_refund_in_the_dashboard_after_one_of_ours_came_back_is_recorded_for_its_rest(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given our refund of 600 of a seat of 1500, made by Stripe and then failed at the bank: the
    # payer is owed it again, and it waits for an operator
    seats, intents = captured_team(client, services, fake)
    operator = create_account(services, role=Role.OPERATOR)
    shopper, seat_id = seats[0]
    ours = refund(client, operator, seat_id, 600).json()
    Worker(services).run_until_idle()
    [made] = fake.refunds_of(intents[0])
    post(client, fake.fail_refund(made["id"]))

    # When the whole 1500 is refunded in the dashboard, and Stripe says so
    fake.refund_in_dashboard(intents[0], 1500)
    post(client, fake.charge_refunded(intents[0]))

    # Then ours, owed again, was paid in it (and leaves the queue: never paid to the wallet too),
    # and the dashboard's is recorded for the rest, where it was lost as more than was left
    seen = client.get(f"/v1/seats/{seat_id}/refunds", headers=shopper.headers).json()["items"]
    assert sorted(
        (r["id"] == ours["id"], r["amount"]["amount"], r["source"], r["progress"]) for r in seen
    ) == [(False, 900, "provider", "done"), (True, 600, "request", "done")]
    assert client.get("/v1/operator/refunds/queue", headers=operator.headers).json()["data"] == []
    assert balance(services, "provider_clearing:stripe") == 3000 - 1500
    assert balance(services, "refunds_payable") == 0
    sound(services)

    # And Stripe's notice of our refund's failure, heard again, changes nothing
    post(client, fake.object_event("refund.updated", fake.refunds[made["id"]]))
    assert balance(services, "refunds_payable") == 0
    sound(services)
