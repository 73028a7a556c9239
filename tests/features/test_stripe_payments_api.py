"""Paying for seats with Stripe through the HTTP API and the worker, the official SDK talking
to a fake of Stripe on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pintuan.audit.service import audit_database
from pintuan.config import Settings
from pintuan.kit.time import clock, utc_now
from pintuan.payments.endings import CallLimits
from pintuan.payments.models import Payment
from pintuan.payments.service import claim_due_actions
from pintuan.services import Services
from pintuan.worker import PAYMENT_LEASE, Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe

PUBLISHABLE_KEY = "pk_test_pintuan"


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeStripe]:
    # Stripe's clock is the application's, so moving time in a test moves both.
    with running_fake_stripe(now=lambda: utc_now().timestamp()) as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeStripe) -> FakeStripe:
    served_fake.reset()
    return served_fake


@pytest.fixture
def settings(database_url: str, fake: FakeStripe) -> Settings:
    return make_settings(
        database_url,
        stripe_secret_key=fake.secret_key,
        stripe_webhook_secret=fake.webhook_secret,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_api_base=fake.base_url,
    )


def team_with_seats(
    client: TestClient, services: Services, team_size: int = 2, members: int = 2
) -> tuple[str, list[tuple[Account, str]]]:
    """A team of a new deal and its first ``members`` shoppers with their held seats."""
    deal = create_deal(services.db, create_merchant(services.db), team_size=team_size)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    team_id = started["team"]["id"]
    seats = [(leader, started["seat"]["id"])]
    for _ in range(members - 1):
        friend = create_account(services)
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=friend.headers)
        assert joined.status_code == 201, joined.text
        seats.append((friend, joined.json()["seat"]["id"]))
    return team_id, seats


def pay_with_stripe(client: TestClient, shopper: Account, seat_id: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "stripe"}, headers=shopper.headers
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


def intent_of(payment: dict[str, Any]) -> str:
    """The PaymentIntent id, read from the client secret as Stripe.js reads it."""
    secret: str = payment["next_action"]["client_params"]["client_secret"]
    return secret.split("_secret_")[0]


def deliver(client: TestClient, fake: FakeStripe, event_type: str, intent: str) -> Any:
    body, headers = fake.webhook(event_type, intent)
    return client.post("/v1/webhooks/stripe", content=body, headers=headers)


def paid_with_stripe(client: TestClient, fake: FakeStripe, shopper: Account, seat_id: str) -> str:
    """The shopper pays in the Payment Element and Stripe tells us; returns the intent id."""
    intent = intent_of(pay_with_stripe(client, shopper, seat_id))
    fake.confirm(intent)
    delivered = deliver(client, fake, "payment_intent.amount_capturable_updated", intent)
    assert delivered.status_code == 200, delivered.text
    return intent


def statuses(services: Services) -> list[str]:
    return services.db.run_sync(lambda s: sorted(p.status for p in s.query(Payment).all()))


def audit_clean(services: Services) -> None:
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def test_a_stripe_payment_is_finished_by_the_client_sdk_and_marked_paid_by_its_webhook(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    team_id, [(shopper, seat_id), _] = team_with_seats(client, services)

    payment = pay_with_stripe(client, shopper, seat_id)
    intent = intent_of(payment)
    fake.confirm(intent)
    body, headers = fake.webhook("payment_intent.amount_capturable_updated", intent)
    first = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    redelivered = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    same_news = deliver(client, fake, "payment_intent.amount_capturable_updated", intent)

    assert (payment["provider"], payment["style"], payment["status"]) == (
        "stripe",
        "hold",
        "requires_action",
    )
    assert payment["next_action"]["type"] == "use_client_sdk"
    assert payment["next_action"]["url"] is None
    assert payment["next_action"]["client_params"]["publishable_key"] == PUBLISHABLE_KEY
    assert fake.intents[intent]["capture_method"] == "manual"
    assert fake.intents[intent]["metadata"] == {"payment_id": payment["id"]}
    assert first.json() == {"received": True, "duplicate": False}
    assert redelivered.json() == {"received": True, "duplicate": True}
    assert same_news.json() == {"received": True, "duplicate": False}  # another event id
    read = client.get(f"/v1/payments/{payment['id']}", headers=shopper.headers).json()
    assert read["status"] == "authorized"
    assert client.get(f"/v1/teams/{team_id}").json()["seats_paid"] == 1


def test_a_forged_stripe_webhook_is_refused_and_changes_nothing(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    _, [(shopper, seat_id), _] = team_with_seats(client, services)
    intent = intent_of(pay_with_stripe(client, shopper, seat_id))
    fake.confirm(intent)
    body = fake.event("payment_intent.amount_capturable_updated", intent)

    forged = client.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": fake.sign(body, secret="whsec_someone_else")},
    )
    stale = client.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": fake.sign(body, timestamp=int(utc_now().timestamp()) - 301)},
    )

    assert (forged.status_code, forged.json()["code"]) == (400, "invalid_signature")
    assert (stale.status_code, stale.json()["code"]) == (400, "stale_signature")
    assert statuses(services) == ["requires_action"]


def test_a_declined_card_fails_the_payment_and_leaves_the_seat_held(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    team_id, [(shopper, seat_id), _] = team_with_seats(client, services)
    intent = intent_of(pay_with_stripe(client, shopper, seat_id))
    fake.confirm(intent, succeed=False)

    delivered = deliver(client, fake, "payment_intent.payment_failed", intent)

    assert delivered.status_code == 200
    assert statuses(services) == ["failed"]
    assert client.get(f"/v1/teams/{team_id}").json()["seats_paid"] == 0


def test_when_the_team_fills_the_worker_captures_each_hold_once(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    team_id, seats = team_with_seats(client, services)
    intents = [paid_with_stripe(client, fake, shopper, seat) for shopper, seat in seats]

    Worker(services).run_until_idle()
    echoes = [deliver(client, fake, "payment_intent.succeeded", i) for i in intents]

    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "succeeded"
    assert [fake.captures_of(i) for i in intents] == [1, 1]
    assert [fake.intents[i]["amount_received"] for i in intents] == [1500, 1500]
    assert [e.status_code for e in echoes] == [200, 200]
    assert statuses(services) == ["captured", "captured"]
    audit_clean(services)


def test_when_the_team_fails_the_worker_cancels_each_hold(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    team_id, [(leader, seat_id)] = team_with_seats(client, services, team_size=3, members=1)
    intent = paid_with_stripe(client, fake, leader, seat_id)

    clock.advance(timedelta(days=2))
    Worker(services).run_until_idle()

    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "failed"
    assert fake.intents[intent]["status"] == "canceled"
    assert fake.performed["payment_intents.capture"] == 0
    assert statuses(services) == ["voided"]
    audit_clean(services)


def test_captures_stripe_refuses_are_retried_after_a_backoff_and_done_once(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    team_id, seats = team_with_seats(client, services)
    intents = [paid_with_stripe(client, fake, shopper, seat) for shopper, seat in seats]
    fake.fail_next("payment_intents.capture", times=2)
    worker = Worker(services)

    first = worker.run_until_idle()
    waiting = statuses(services)
    too_soon = worker.run_until_idle()
    clock.advance(timedelta(seconds=6))  # past the first backoff (5 s)
    worker.run_until_idle()

    assert first.provider_failures == 2
    assert waiting == ["authorized", "authorized"]
    assert too_soon.provider_calls == too_soon.provider_failures == 0
    assert fake.calls["payment_intents.capture"] == 4
    assert [fake.captures_of(i) for i in intents] == [1, 1]
    assert statuses(services) == ["captured", "captured"]
    attempts = services.db.run_sync(lambda s: [p.attempts for p in s.query(Payment).all()])
    assert attempts == [2, 2]  # each call counted: the one that failed, the one that captured
    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "succeeded"
    audit_clean(services)


def test_a_seat_of_a_deal_waiting_to_tip_past_stripes_hold_is_charged_not_held(
    client: TestClient, services: Services
) -> None:
    # Given a deal with a tipping point that ends in 30 days: a full team waits for the tip
    # until then, far past Stripe's seven-day card hold
    deal = create_deal(
        services.db,
        create_merchant(services.db),
        team_size=2,
        tipping_point=10,
        ends_at=utc_now() + timedelta(days=30),
    )
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers).json()

    # When its seat is paid with Stripe
    payment = pay_with_stripe(client, shopper, started["seat"]["id"])

    # Then it is charged now (refunded if the deal never tips), and the shopper is told why
    assert payment["style"] == "charge"
    assert "hold" in payment["style_note"]


def test_a_captures_first_failure_after_a_lost_attempt_asks_stripe_for_the_holds_end(
    client: TestClient, services: Services, fake: FakeStripe
) -> None:
    # Given a team filled on Stripe holds, whose ends Stripe's notices did not say
    _, seats = team_with_seats(client, services)
    for shopper, seat in seats:
        paid_with_stripe(client, fake, shopper, seat)
    limits = CallLimits.of(services.settings)
    assert services.db.run_sync(
        lambda s: [p.capture_before for p in s.query(Payment).all()], write=False
    ) == [None, None]

    # When a worker takes the captures and stops before they answer, and the next worker's
    # captures fail without Stripe's word (a 500)
    services.db.run_sync(claim_due_actions, utc_now(), 10, PAYMENT_LEASE, limits)
    clock.advance(PAYMENT_LEASE + timedelta(seconds=1))
    fake.fail_next("payment_intents.capture", times=2)
    Worker(services).tick()

    # Then those first failures asked Stripe for each hold's end, which each capture's deadline
    # is never later than (less the margin)
    found = services.db.run_sync(
        lambda s: [(p.attempts, p.capture_before, p.call_deadline) for p in s.query(Payment)],
        write=False,
    )
    for attempts, hold_end, deadline in found:
        assert attempts == 2
        assert hold_end is not None
        assert deadline <= hold_end - limits.capture_margin
