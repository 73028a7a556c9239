"""Every payment ends: owed calls run out of attempts or time, provider news ends a payment's
course, and the operators' queue acts on what is left, on both databases.

The sandbox is real (it keeps its own records); only its line fails, through the faltering
provider of the money machine's tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from pintuan.audit.facts import EARNED_ONCE, check_facts
from pintuan.audit.ledger import check_ledger
from pintuan.audit.service import audit_database
from pintuan.domain.payments import EventKind, PaymentStyle, ProviderEvent
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.ledger import service as ledger
from pintuan.ledger.models import Journal
from pintuan.notifications.models import Notification
from pintuan.payments.endings import CallLimits
from pintuan.payments.models import Payment, PaymentAttempt
from pintuan.payments.service import CHECKOUT_CANCELLED, claim_due_actions
from pintuan.services import Services
from pintuan.worker import PAYMENT_LEASE, Worker
from tests.console_data import log_in
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_payment_properties import (
    FalteringSandbox,
    Fault,
    faltering_sandbox,
    notify,
    operations_at_the_sandbox,
    pay_with_sandbox,
    provider_disagreements,
)

LIMITS = CallLimits(
    max_attempts=3, deadline_after=timedelta(hours=72), capture_margin=timedelta(hours=1)
)


@pytest.fixture(autouse=True)
def still_time(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(UTC)
    monkeypatch.setattr(clock, "now", lambda: start + clock.offset)


def worker_of(services: Services) -> Worker:
    worker = Worker(services)
    worker._limits = LIMITS  # a small cap, so that a test reaches it in a few ticks
    return worker


def payment(services: Services, payment_id: str) -> Payment:
    found = services.db.run_sync(lambda s: s.get(Payment, payment_id), write=False)
    assert found is not None
    return found


def history(services: Services, payment_id: str) -> list[tuple[str, str]]:
    return services.db.run_sync(
        lambda s: [
            (a.action, a.outcome)
            for a in s.scalars(
                select(PaymentAttempt)
                .where(PaymentAttempt.payment_id == payment_id)
                .order_by(PaymentAttempt.id)
            )
        ],
        write=False,
    )


def sound(services: Services) -> None:
    """The ledger check and the whole audit pass with no grace, and the sandbox agrees."""
    assert services.db.run_sync(check_ledger, write=False).breaches == []
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0)), write=False) == []
    assert (
        services.db.run_sync(lambda s: provider_disagreements(s, settled=False), write=False) == []
    )


def tick_until_due(worker: Worker, services: Services, payment_id: str) -> None:
    """Move the clock to the payment's next attempt and let the worker make it."""
    due = payment(services, payment_id).next_attempt_at
    assert due is not None
    clock.advance(max(due - utc_now(), timedelta(0)))
    worker.tick()


class World:
    def __init__(self, services: Services, client: TestClient) -> None:
        self.services, self.client = services, client
        self.provider: FalteringSandbox = faltering_sandbox(services)
        self.worker = worker_of(services)
        self.merchant = create_merchant(services.db)
        self.operator = create_account(services, role=Role.OPERATOR)
        self.shoppers = [create_account(services) for _ in range(2)]

    def joiners_hold(self) -> tuple[str, str]:
        """A team of two (its leader's seat free) whose joiner opened a hold's checkout at the
        sandbox (not yet approved); returns the team and the payment."""
        deal = create_deal(self.services.db, self.merchant, team_size=2, leader_price=0)
        team = self.client.post(f"/v1/deals/{deal.id}/teams", headers=self.shoppers[0].headers)
        team_id = team.json()["team"]["id"]
        joined = self.client.post(f"/v1/teams/{team_id}/seats", headers=self.shoppers[1].headers)
        seat = joined.json()["seat"]["id"]
        return team_id, pay_with_sandbox(self.client, self.provider, self.shoppers[1], seat, "hold")

    def succeeded_hold(self) -> str:
        """A team of two whose joiner paid by hold: the team succeeded, the capture is owed."""
        _, hold = self.joiners_hold()
        notify(self.client, self.provider, hold)
        assert (
            payment(self.services, hold).status,
            payment(self.services, hold).pending_action,
        ) == (
            "authorized",
            "capture",
        )
        return hold

    def leaders_checkout(self, style: str) -> str:
        """The first shopper starts a team of a new deal and opens its checkout at the sandbox
        (not yet approved); returns the payment."""
        deal = create_deal(self.services.db, self.merchant, team_size=2)
        team = self.client.post(f"/v1/deals/{deal.id}/teams", headers=self.shoppers[0].headers)
        seat = team.json()["seat"]["id"]
        return pay_with_sandbox(self.client, self.provider, self.shoppers[0], seat, style)

    def failed_charge(self, *faults: Fault) -> str:
        """A charge for a team that failed: its refund is owed, and its first call met the
        first of ``faults`` (by default a 500 each time until its attempts run out)."""
        deal = create_deal(self.services.db, self.merchant, team_size=2)
        team = self.client.post(f"/v1/deals/{deal.id}/teams", headers=self.shoppers[0].headers)
        seat = team.json()["seat"]["id"]
        charge = pay_with_sandbox(self.client, self.provider, self.shoppers[0], seat, "charge")
        notify(self.client, self.provider, charge)
        clock.advance(timedelta(days=2))
        self.provider.faults["refund"].extend(faults or [Fault.REFUSED] * LIMITS.max_attempts)
        self.worker.tick()  # fails the team: the refund is owed
        self.worker.tick()  # and its call fails once
        assert payment(self.services, charge).attempts == 1
        return charge

    def act(self, payment_id: str, action: str, key: str | None = "k1") -> Any:
        headers = dict(self.operator.headers)
        if key:
            headers["Idempotency-Key"] = f"{payment_id}:{action}:{key}"
        return self.client.post(
            f"/v1/operator/payments/{payment_id}/actions", json={"action": action}, headers=headers
        )

    def queue(self) -> list[dict[str, Any]]:
        listed = self.client.get("/v1/operator/payments/queue", headers=self.operator.headers)
        assert listed.status_code == 200, listed.text
        return list(listed.json()["data"])


@pytest.fixture
def world(services: Services, client: TestClient) -> World:
    return World(services, client)


def spend_capture(world: World, hold: str) -> None:
    world.provider.faults["capture"].extend([Fault.REFUSED] * LIMITS.max_attempts)
    world.worker.tick()
    for _ in range(LIMITS.max_attempts - 1):
        tick_until_due(world.worker, world.services, hold)


# ---------------------------------------------------------------------------- the worker ends them


def test_a_capture_refused_until_its_attempts_run_out_goes_to_the_queue_with_its_history(
    world: World, services: Services
) -> None:
    # Given a succeeded team's hold whose capture the provider refuses every time
    hold = world.succeeded_hold()

    # When the worker has tried as often as it may
    spend_capture(world, hold)

    # Then the payment owes nothing more, ended with its reason, in the operators' queue
    ended = payment(services, hold)
    assert (ended.status, ended.pending_action, ended.end_reason) == (
        "authorized",
        None,
        "capture_failed",
    )
    assert ended.queued_at is not None
    assert ended.attempts == LIMITS.max_attempts
    assert history(services, hold) == [
        *[("capture", "failed")] * LIMITS.max_attempts,
        ("give_up", "capture_failed"),
    ]
    assert len([c for c in world.provider.calls if c.kind == "capture"]) == LIMITS.max_attempts
    # no further attempt however long the worker runs
    clock.advance(timedelta(days=30))
    world.worker.run_until_idle()
    assert len([c for c in world.provider.calls if c.kind == "capture"]) == LIMITS.max_attempts
    # the queue lists it with the actions that fit, and the operators were told
    assert [(p["id"], p["end_reason"], p["actions"]) for p in world.queue()] == [
        (hold, "capture_failed", ["retry", "refund", "write_off", "charge_again"])
    ]
    detail = world.client.get(f"/v1/operator/payments/{hold}", headers=world.operator.headers)
    assert [h["outcome"] for h in detail.json()["history"]][-1] == "capture_failed"
    notices = services.db.run_sync(
        lambda s: [
            (n.user_id, n.kind)
            for n in s.scalars(select(Notification).where(Notification.kind == "payment_queued"))
        ],
        write=False,
    )
    assert notices == [(world.operator.user_id, "payment_queued")]
    sound(services)


def _past_its_hold_with_captures_failing(world: World, services: Services, hold: str) -> None:
    """The first capture fails, and the worker next runs (failing again) after the hold's end."""
    hold_end = payment(services, hold).capture_before
    assert hold_end is not None
    assert hold_end - utc_now() > timedelta(days=6)
    world.worker._limits = CallLimits(
        max_attempts=20, deadline_after=timedelta(days=30), capture_margin=timedelta(hours=1)
    )
    world.worker.tick()
    assert payment(services, hold).call_deadline == hold_end - LIMITS.capture_margin
    clock.advance(hold_end - utc_now() + timedelta(minutes=1))
    world.worker.tick()


def test_a_capture_whose_worker_stops_during_every_call_goes_to_the_queue_at_its_cap(
    world: World, services: Services
) -> None:
    # Given a succeeded team's hold whose capture is owed
    hold = world.succeeded_hold()

    # When a worker takes its call and stops before it answers, as often as it may be made,
    # and each time the next worker takes it over once the lease has run out
    for _ in range(LIMITS.max_attempts):
        [due] = services.db.run_sync(claim_due_actions, utc_now(), 10, PAYMENT_LEASE, LIMITS)
        assert (due.payment_id, due.action) == (hold, "capture")
        clock.advance(PAYMENT_LEASE + timedelta(seconds=1))

    # Then the next worker makes no call: the capture waits for the operators undecided
    world.worker.tick()
    ended = payment(services, hold)
    assert (ended.status, ended.pending_action, ended.end_reason) == (
        "authorized",
        None,
        "capture_failed",
    )
    assert ended.attempts == LIMITS.max_attempts
    assert "stopped" in (ended.last_error or "")
    assert [c for c in world.provider.calls if c.kind == "capture"] == []
    assert history(services, hold) == [("capture", "failed"), ("give_up", "capture_failed")]
    assert [p["id"] for p in world.queue()] == [hold]
    sound(services)

    # And an operator's retry captures it once
    assert world.act(hold, "retry").status_code == 200
    world.worker.tick()
    assert payment(services, hold).status == "captured"
    sound(services)


def test_a_capture_unanswered_past_the_end_of_its_hold_is_asked_again_and_ends_as_expired(
    world: World, services: Services
) -> None:
    # Given a succeeded team's hold, whose end the sandbox gave (seven days after approval)
    hold = world.succeeded_hold()
    world.provider.faults["capture"].extend([Fault.REFUSED] * 2)

    # When its captures fail without an answer until after the hold's end
    _past_its_hold_with_captures_failing(world, services, hold)

    # Then nobody knows yet whether a capture went through: with the operators, undecided
    undecided = payment(services, hold)
    assert (undecided.status, undecided.pending_action, undecided.end_reason) == (
        "authorized",
        None,
        "capture_failed",
    )
    assert [p["actions"] for p in world.queue()] == [
        ["retry", "refund", "write_off", "charge_again"]
    ]
    sound(services)

    # When an operator retries, the provider answers for good: the hold has lapsed
    assert world.act(hold, "retry").status_code == 200
    world.worker.tick()

    # Then it is expired, its authorisation voided, and back with the operators
    ended = payment(services, hold)
    assert (ended.status, ended.pending_action, ended.end_reason) == (
        "expired",
        None,
        "hold_expired",
    )
    assert ended.queued_at is not None
    journals = services.db.run_sync(
        lambda s: {
            j.kind: j.status for j in s.scalars(select(Journal).where(Journal.payment_id == hold))
        },
        write=False,
    )
    assert journals == {"authorize": "voided"}
    assert [p["actions"] for p in world.queue()] == [["write_off", "refund", "charge_again"]]
    sound(services)


def test_a_capture_whose_answer_was_lost_before_the_hold_ended_is_found_captured(
    world: World, services: Services
) -> None:
    # Given a succeeded team's hold whose first capture went through at the provider but whose
    # answer was lost, and whose next one fails too, after the hold's end
    hold = world.succeeded_hold()
    world.provider.faults["capture"].extend([Fault.LOST, Fault.REFUSED])
    _past_its_hold_with_captures_failing(world, services, hold)
    assert payment(services, hold).end_reason == "capture_failed"  # not taken for expired

    # When an operator retries
    assert world.act(hold, "retry").status_code == 200
    world.worker.tick()

    # Then the provider's answer under the same key is the capture it made: the merchant earns
    found = payment(services, hold)
    assert (found.status, found.pending_action) == ("captured", None)
    assert world.queue() == []
    sound(services)


def test_a_void_whose_answers_were_lost_retried_past_the_holds_end_ends_as_lapsed(
    world: World, services: Services
) -> None:
    # Given a hold of a team that failed, whose void the provider made but never answered
    deal = create_deal(services.db, world.merchant, team_size=2)
    team = world.client.post(f"/v1/deals/{deal.id}/teams", headers=world.shoppers[0].headers)
    seat = team.json()["seat"]["id"]
    hold = pay_with_sandbox(world.client, world.provider, world.shoppers[0], seat, "hold")
    notify(world.client, world.provider, hold)
    clock.advance(timedelta(days=2))
    world.provider.faults["void"].extend([Fault.LOST] * LIMITS.max_attempts)
    world.worker.tick()  # fails the team: the void is owed
    for _ in range(LIMITS.max_attempts):
        tick_until_due(world.worker, services, hold)
    queued = payment(services, hold)
    assert history(services, hold)[-4:] == [
        *[("void", "failed")] * LIMITS.max_attempts,
        ("give_up", "void_failed"),
    ]
    assert (queued.status, queued.pending_action, queued.end_reason) == (
        "authorized",
        None,
        "void_failed",
    )
    assert [(p["id"], p["actions"]) for p in world.queue()] == [(hold, ["retry"])]
    sound(services)

    # When no operator acts before the hold's end, and then one retries
    hold_end = queued.capture_before
    assert hold_end is not None
    clock.advance(hold_end - utc_now() + timedelta(hours=1))
    retried = world.act(hold, "retry")

    # Then nothing is left to void: the payment ends as a lapsed hold and leaves the queue
    assert retried.status_code == 200, retried.text
    ended = payment(services, hold)
    assert (ended.status, ended.pending_action, ended.end_reason, ended.resolution) == (
        "expired",
        None,
        "hold_expired",
        "retry",
    )
    assert ended.resolved_at is not None
    assert world.queue() == []
    assert history(services, hold)[-1] == ("operator_retry", "hold_expired")
    journals = services.db.run_sync(
        lambda s: {
            j.kind: j.status for j in s.scalars(select(Journal).where(Journal.payment_id == hold))
        },
        write=False,
    )
    assert journals == {"authorize": "voided"}
    voids = [c for c in world.provider.calls if c.kind == "void"]
    world.worker.run_until_idle()
    assert [c for c in world.provider.calls if c.kind == "void"] == voids  # nothing more asked
    again = world.act(hold, "retry", key="k2")
    assert (again.status_code, again.json()["code"]) == (409, "payment_not_queued")
    sound(services)


def test_news_of_another_amount_is_returned_to_the_payer_at_once_and_recorded(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a held seat paid by hold, and one paid by charge
    deal = create_deal(services.db, world.merchant, team_size=3)
    seats = []
    for shopper in world.shoppers:
        started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
        seats.append(started.json()["seat"]["id"])
    hold = pay_with_sandbox(client, world.provider, world.shoppers[0], seats[0], "hold")
    charge = pay_with_sandbox(client, world.provider, world.shoppers[1], seats[1], "charge")

    # When the provider takes another sum than asked for each, and says so
    for paid in (hold, charge):
        ref = world.provider.sandbox.intent_of_payment(paid).ref
        body, headers = world.provider.sandbox.complete_checkout(ref, approve=True, amount=999)
        assert client.post("/v1/webhooks/sandbox", content=body, headers=headers).status_code == 200
    # (a repeat of the news changes nothing)
    assert client.post("/v1/webhooks/sandbox", content=body, headers=headers).status_code == 200

    # Then nothing is kept for the seats, and what was taken goes back: voided, refunded
    for paid in (hold, charge):
        found = payment(services, paid)
        assert (found.end_reason, found.taken_amount) == ("amount_mismatch", 999)
    assert payment(services, hold).pending_action == "void"
    assert payment(services, charge).pending_action == "refund"
    sound(services)
    world.worker.run_until_idle()
    assert (payment(services, hold).status, payment(services, charge).status) == (
        "voided",
        "refunded",
    )
    refund_ref = world.provider.sandbox.intent_of_payment(charge).ref
    assert (refund_ref, "refund", 999) in operations_at_the_sandbox(services)
    seat_states = services.db.run_sync(
        lambda s: sorted(s.execute(text("SELECT status FROM seats")).scalars()), write=False
    )
    assert seat_states == ["held", "held"]
    assert world.queue() == []
    assert ("news", "amount_mismatch") in history(services, charge)
    sound(services)


def test_a_provider_cancelling_a_hold_ends_it_and_the_worker_stops_capturing(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a succeeded team's hold whose capture is refused once
    hold = world.succeeded_hold()
    world.provider.faults["capture"].append(Fault.REFUSED)
    world.worker.tick()

    # When the provider cancels the hold and says so
    ref = world.provider.sandbox.intent_of_payment(hold).ref
    body, headers = world.provider.sandbox.expire_hold(ref)
    assert client.post("/v1/webhooks/sandbox", content=body, headers=headers).status_code == 200

    # Then it is expired and queued at once; the worker asks the provider nothing more
    ended = payment(services, hold)
    assert (ended.status, ended.pending_action, ended.end_reason) == (
        "expired",
        None,
        "hold_expired",
    )
    calls = len(world.provider.calls)
    clock.advance(timedelta(hours=2))
    world.worker.run_until_idle()
    assert len(world.provider.calls) == calls
    sound(services)


def test_a_hold_cancelled_before_its_authorisation_arrived_never_pays_its_seat(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a joiner's hold that the payer approved, and that then lapsed at the provider
    team_id, hold = world.joiners_hold()
    ref = world.provider.sandbox.intent_of_payment(hold).ref
    approved = world.provider.sandbox.complete_checkout(ref, approve=True)
    cancelled = world.provider.sandbox.expire_hold(ref)

    # When the notices arrive out of order: the cancel first, then the older approval
    for body, headers in (cancelled, approved):
        delivered = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
        assert delivered.status_code == 200, delivered.text

    # Then the checkout stays cancelled: no seat is paid with a hold that no longer exists
    ended = payment(services, hold)
    assert (ended.status, ended.end_reason, ended.pending_action) == ("failed", "cancelled", None)
    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "forming"
    # and nothing is ever asked of the provider for it, while the seat's hold runs out
    calls = len(world.provider.calls)
    clock.advance(timedelta(hours=2))
    world.worker.run_until_idle()
    assert len(world.provider.calls) == calls
    assert payment(services, hold).status == "failed"
    sound(services)


def test_a_charge_that_arrives_after_a_cancel_still_counts(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a checkout the provider reported cancelled
    charge = world.leaders_checkout("charge")
    ref = world.provider.sandbox.intent_of_payment(charge).ref
    taken = world.provider.sandbox.complete_checkout(ref, approve=True)
    services.db.run_raw_sync(
        lambda tx: tx.execute(CHECKOUT_CANCELLED, {"id": charge, "now": tx.instant(clock.now())})
    )
    assert payment(services, charge).end_reason == "cancelled"

    # When news of money taken arrives after it
    delivered = client.post("/v1/webhooks/sandbox", content=taken[0], headers=taken[1])
    assert delivered.status_code == 200, delivered.text

    # Then that money counts, as money taken always does
    found = payment(services, charge)
    assert (found.status, found.end_reason) == ("charged", None)
    sound(services)


def test_polls_end_when_no_news_comes(world: World, services: Services, client: TestClient) -> None:
    waiting = world.leaders_checkout("hold")
    for _ in range(LIMITS.max_attempts):
        tick_until_due(world.worker, services, waiting)
    ended = payment(services, waiting)
    assert (ended.status, ended.pending_action, ended.end_reason) == ("failed", None, "no_news")
    assert ended.queued_at is None
    sound(services)


def test_polls_whose_news_does_not_end_the_checkout_back_off_and_end(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a checkout whose provider, asked, only ever says it is still waiting for its payer
    waiting = world.leaders_checkout("hold")
    ref = world.provider.sandbox.intent_of_payment(waiting).ref
    news = ProviderEvent("evt_waiting", EventKind.OTHER, "requires_payment_method", ref)
    monkeypatch.setattr(world.provider.sandbox, "fetch_status", lambda _: news)

    # When the worker polls it: each time its news is no news, asked again after a backoff
    tick_until_due(world.worker, services, waiting)
    polled = payment(services, waiting)
    assert (polled.pending_action, polled.attempts) == ("poll", 1)
    assert polled.next_attempt_at is not None
    assert timedelta(seconds=5) <= polled.next_attempt_at - utc_now() < PAYMENT_LEASE
    for _ in range(LIMITS.max_attempts - 1):
        tick_until_due(world.worker, services, waiting)

    # Then its polls end as any without news do, saying what the provider said
    ended = payment(services, waiting)
    assert (ended.status, ended.pending_action, ended.end_reason) == ("failed", None, "no_news")
    assert "requires_payment_method" in (ended.last_error or "")
    assert history(services, waiting) == [("poll", "no_news")] * LIMITS.max_attempts + [
        ("give_up", "no_news")
    ]
    sound(services)


def test_a_checkout_approved_for_another_amount_after_its_polls_ended_goes_back_when_told(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a checkout whose polls ended with no news
    waiting = world.leaders_checkout("charge")
    for _ in range(LIMITS.max_attempts):
        tick_until_due(world.worker, services, waiting)
    assert payment(services, waiting).end_reason == "no_news"

    # When the payer approves it after all, the provider takes another sum, and its news waits
    ref = world.provider.sandbox.intent_of_payment(waiting).ref
    body, headers = world.provider.sandbox.complete_checkout(ref, approve=True, amount=999)

    # Then the audit waits for the news, as for any checkout whose approval has not reached us
    sound(services)

    # And once the news comes, what was taken goes back to the payer
    assert client.post("/v1/webhooks/sandbox", content=body, headers=headers).status_code == 200
    found = payment(services, waiting)
    assert (found.status, found.end_reason, found.taken_amount, found.pending_action) == (
        "charged",
        "amount_mismatch",
        999,
        "refund",
    )
    world.worker.run_until_idle()
    assert payment(services, waiting).status == "refunded"
    sound(services)


# ---------------------------------------------------------------------------- the queue's actions


def test_retry_owes_the_capture_again_and_the_worker_makes_it(
    world: World, services: Services
) -> None:
    hold = world.succeeded_hold()
    spend_capture(world, hold)

    retried = world.act(hold, "retry", key=None)  # moving no money, it needs no key

    assert retried.status_code == 200, retried.text
    assert retried.json()["payment"]["actions"] == []
    world.worker.tick()
    done = payment(services, hold)
    assert (done.status, done.pending_action, done.end_reason, done.resolution) == (
        "captured",
        None,
        None,
        "retry",
    )
    assert world.queue() == []
    again = world.act(hold, "retry", key=None)
    assert (again.status_code, again.json()["code"]) == (409, "payment_not_queued")
    sound(services)


def test_write_off_pays_the_merchant_from_the_platform_and_lets_the_hold_go(
    world: World, services: Services
) -> None:
    hold = world.succeeded_hold()
    spend_capture(world, hold)

    unkeyed = world.act(hold, "write_off", key=None)
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (422, "idempotency_key_required")
    assert world.queue() != []
    written = world.act(hold, "write_off")
    repeat = world.act(hold, "write_off")

    assert written.status_code == 200, written.text
    assert repeat.json() == written.json()
    kinds = services.db.run_sync(
        lambda s: sorted(
            (j.kind, j.status) for j in s.scalars(select(Journal).where(Journal.payment_id == hold))
        ),
        write=False,
    )
    assert kinds == [("authorize", "pending"), ("write_off", "posted")]
    balance = world.client.get(
        f"/v1/merchants/{world.merchant.id}/balance", headers=world.operator.headers
    )
    assert sum(m["amount"] for m in balance.json()["owed"]) > 0
    world.worker.tick()  # the shopper's hold is let go
    assert payment(services, hold).status == "voided"
    sound(services)


def notices_of(services: Services, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return services.db.run_sync(
        lambda s: [
            (n.user_id, n.data)
            for n in s.scalars(select(Notification).where(Notification.kind == kind))
        ],
        write=False,
    )


@pytest.mark.parametrize("style", ["hold", "charge"])
def test_charge_again_asks_the_shopper_to_pay_again_and_their_money_goes_to_the_merchant(
    world: World, services: Services, style: str
) -> None:
    # Given a confirmed seat whose hold could not be captured
    hold = world.succeeded_hold()
    spend_capture(world, hold)
    seat_id = payment(services, hold).seat_id
    assert seat_id is not None
    shopper = world.shoppers[1]
    assert (
        world.client.post(
            f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=shopper.headers
        ).json()["code"]
        == "seat_not_payable"
    )

    # When an operator asks its shopper to pay again
    unkeyed = world.act(hold, "charge_again", key=None)
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (422, "idempotency_key_required")
    asked = world.act(hold, "charge_again")
    assert asked.status_code == 200, asked.text
    assert asked.json()["payment"]["actions"] == []
    world.worker.tick()  # the old hold is let go; the shopper is told

    # Then the shopper sees it and pays again, and the merchant earns the seat once
    assert payment(services, hold).status == "voided"
    [(told, data)] = notices_of(services, "pay_again")
    assert (told, data["amount"]) == (shopper.user_id, payment(services, hold).amount)
    log_in(world.client, shopper)
    orders = world.client.get("/orders", headers={"accept": "text/html"})
    world.client.cookies.clear()
    assert f'action="/seats/{seat_id}/pay"' in orders.text
    assert "Pay again" in orders.text
    again = pay_with_sandbox(world.client, world.provider, shopper, seat_id, style)
    notify(world.client, world.provider, again)
    world.worker.tick()  # a hold is captured
    assert payment(services, again).status == ("captured" if style == "hold" else "charged")
    balance = world.client.get(
        f"/v1/merchants/{world.merchant.id}/balance", headers=world.operator.headers
    )
    assert sum(m["amount"] for m in balance.json()["owed"]) > 0
    twice = world.client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=shopper.headers
    )
    assert twice.json()["code"] == "seat_not_payable"
    assert world.queue() == []
    sound(services)


def test_a_shopper_who_does_not_pay_again_in_time_is_back_with_the_operators_as_unpaid(
    world: World, services: Services
) -> None:
    hold = world.succeeded_hold()
    spend_capture(world, hold)
    seat_id = payment(services, hold).seat_id
    assert world.act(hold, "charge_again").status_code == 200
    world.worker.tick()
    sound(services)  # the seat waits for its shopper: no money, and none missing

    clock.advance(timedelta(hours=services.settings.payment_repay_hours, minutes=10))
    world.worker.run_until_idle()

    back = payment(services, hold)
    assert (back.end_reason, back.resolution, back.resolved_at) == ("unpaid", None, None)
    assert [(p["id"], p["actions"]) for p in world.queue()] == [
        (hold, ["write_off", "charge_again"])
    ]
    assert history(services, hold)[-1] == ("pay_again", "unpaid")
    late = world.client.post(
        f"/v1/seats/{seat_id}/payments",
        json={"provider": "sandbox"},
        headers=world.shoppers[1].headers,
    )
    assert late.json()["code"] == "seat_not_payable"
    assert len(notices_of(services, "payment_queued")) == 2  # queued, then back
    sound(services)
    assert world.act(hold, "write_off", key="k2").status_code == 200
    assert world.queue() == []
    sound(services)


def test_a_refund_the_provider_declined_is_paid_into_the_payers_wallet(
    world: World, services: Services
) -> None:
    charge = world.failed_charge(Fault.DECLINED)  # ends at once: the provider said no
    assert payment(services, charge).end_reason == "refund_failed"
    assert [p["actions"] for p in world.queue()] == [["retry", "refund"]]
    assert world.act(charge, "write_off").json()["code"] == "queue_action_not_available"

    refunded = world.act(charge, "refund")

    assert refunded.status_code == 200, refunded.text
    assert payment(services, charge).status == "refunded"
    wallet = world.client.get("/v1/me/wallet", headers=world.shoppers[0].headers).json()
    assert [b["amount"] for b in wallet["balances"]] == [payment(services, charge).amount]
    assert world.queue() == []
    sound(services)


def test_a_refund_that_only_failed_is_retried_until_the_provider_says_no_then_paid_to_the_wallet(
    world: World, services: Services
) -> None:
    # Given a refund whose every call failed (500s) until its attempts ran out: made or not,
    # nobody knows, so paying the payer from the wallet could pay them twice
    charge = world.failed_charge()
    for _ in range(LIMITS.max_attempts - 1):
        tick_until_due(world.worker, services, charge)
    assert payment(services, charge).end_reason == "refund_failed"
    assert [p["actions"] for p in world.queue()] == [["retry"]]
    refused = world.act(charge, "refund")
    assert (refused.status_code, refused.json()["code"]) == (409, "refund_outcome_unknown")

    # When a retry's call gets the provider's answer, that it will not refund
    world.provider.faults["refund"].append(Fault.DECLINED)
    assert world.act(charge, "retry", key=None).status_code == 200
    world.worker.tick()
    assert payment(services, charge).end_reason == "refund_failed"
    assert [p["actions"] for p in world.queue()] == [["retry", "refund"]]

    # Then the payer is paid from the wallet, once (a new key: the first one's answer was 409)
    assert world.act(charge, "refund", key="k2").status_code == 200
    assert payment(services, charge).status == "refunded"
    wallet = world.client.get("/v1/me/wallet", headers=world.shoppers[0].headers).json()
    assert [b["amount"] for b in wallet["balances"]] == [payment(services, charge).amount]
    sound(services)


def test_a_refund_whose_answers_were_lost_waits_with_the_operators_until_a_retry_finds_it(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a charge for a team that failed, whose refund the provider makes but whose every
    # answer is lost until its attempts run out
    deal = create_deal(services.db, world.merchant, team_size=2)
    team = client.post(f"/v1/deals/{deal.id}/teams", headers=world.shoppers[0].headers).json()
    charge = pay_with_sandbox(
        client, world.provider, world.shoppers[0], team["seat"]["id"], "charge"
    )
    notify(client, world.provider, charge)
    clock.advance(timedelta(days=2))
    world.provider.faults["refund"].extend([Fault.LOST] * LIMITS.max_attempts)
    world.worker.tick()  # fails the team: the refund is owed
    world.worker.tick()
    for _ in range(LIMITS.max_attempts - 1):
        tick_until_due(world.worker, services, charge)
    ended = payment(services, charge)
    assert (ended.status, ended.end_reason) == ("charged", "refund_failed")
    ref = world.provider.sandbox.intent_of_payment(charge).ref
    made = [op for op in operations_at_the_sandbox(services) if op[:2] == (ref, "refund")]
    assert made == [(ref, "refund", ended.amount)]

    # Then the audit waits for the answer with the operators, who may only retry
    sound(services)
    assert [p["actions"] for p in world.queue()] == [["retry"]]
    assert world.act(charge, "refund").json()["code"] == "refund_outcome_unknown"

    # When an operator retries, the provider answers with the refund it made, once
    assert world.act(charge, "retry", key=None).status_code == 200
    world.worker.tick()
    assert payment(services, charge).status == "refunded"
    made = [op for op in operations_at_the_sandbox(services) if op[:2] == (ref, "refund")]
    assert made == [(ref, "refund", ended.amount)]
    sound(services)


def test_only_operators_see_and_act_on_the_queue(world: World) -> None:
    shopper = world.shoppers[0]
    assert (
        world.client.get("/v1/operator/payments/queue", headers=shopper.headers).status_code == 403
    )
    missing = world.act("pay_missing", "retry", key=None)
    assert (missing.status_code, missing.json()["code"]) == (404, "payment_not_found")


# ---------------------------------------------------------------------------- racing


def test_an_operators_retry_racing_the_worker_makes_one_provider_call_and_one_journal(
    world: World, services: Services
) -> None:
    # Given a hold in the queue after its capture ran out of attempts
    hold = world.succeeded_hold()
    spend_capture(world, hold)
    calls = len([c for c in world.provider.calls if c.kind == "capture"])
    other = worker_of(services)

    # When two operators retry it while two workers tick, all at once
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def operator(key: str) -> None:
        barrier.wait()
        answers.append(world.act(hold, "retry", key=key).status_code)

    def ticking(worker: Worker) -> None:
        barrier.wait()
        for _ in range(5):
            worker.tick()

    threads = [
        threading.Thread(target=operator, args=("a",)),
        threading.Thread(target=operator, args=("b",)),
        threading.Thread(target=ticking, args=(world.worker,)),
        threading.Thread(target=ticking, args=(other,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.worker.run_until_idle()

    # Then one retry was taken, the sandbox captured once, and one earning was journalled
    assert sorted(answers) == [200, 409]
    assert len([c for c in world.provider.calls if c.kind == "capture"]) == calls + 1
    ref = world.provider.sandbox.intent_of_payment(hold).ref
    assert [op for op in operations_at_the_sandbox(services) if op[0] == ref] == [
        (ref, "capture", payment(services, hold).amount)
    ]
    earned = services.db.run_sync(
        lambda s: s.scalar(
            text("SELECT COUNT(*) FROM ledger_journals WHERE payment_id = :p AND kind = 'earn'"),
            {"p": hold},
        ),
        write=False,
    )
    assert earned == 1
    assert payment(services, hold).status == "captured"
    sound(services)


# ---------------------------------------------------------------------------- money owed back


RETURNS_FAILING = {"charge": ("refund", Fault.DECLINED), "hold": ("void", Fault.REFUSED)}


def paid_twice(world: World, style: str) -> tuple[str, str, str]:
    """A seat of a team of three paid twice (by its shopper, and by a friend through a pay
    link, both approved): the second came too late and is owed back, and its return failed for
    good, so it waits with the operators. Returns the team and both payments."""
    services, client = world.services, world.client
    deal = create_deal(services.db, world.merchant, team_size=3, leader_price=0)
    leader, joiner = world.shoppers
    team = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()["team"]["id"]
    seat = client.post(f"/v1/teams/{team}/seats", headers=joiner.headers).json()["seat"]["id"]
    first = pay_with_sandbox(client, world.provider, joiner, seat, style)
    friend = create_account(services)
    link = client.post(f"/v1/seats/{seat}/pay-links", headers=joiner.headers).json()["token"]
    world.provider.style = PaymentStyle(style)
    paid = client.post(
        f"/v1/pay-links/{link}/payments", json={"provider": "sandbox"}, headers=friend.headers
    )
    assert paid.status_code == 201, paid.text
    second = str(paid.json()["id"])
    notify(client, world.provider, first)
    notify(client, world.provider, second)
    kind, fault = RETURNS_FAILING[style]
    assert payment(services, second).pending_action == kind
    world.provider.faults[kind].extend([fault] * LIMITS.max_attempts)
    world.worker.tick()
    for _ in range(LIMITS.max_attempts - 1):
        if payment(services, second).end_reason is not None:
            break
        tick_until_due(world.worker, services, second)
    assert (payment(services, second).end_reason, payment(services, second).pending_action) == (
        f"{kind}_failed",
        None,
    )
    return team, first, second


def paid_twice_and_filled(world: World, style: str) -> tuple[str, str]:
    """:func:`paid_twice`, and then the seat's team filled and succeeded. Returns both
    payments."""
    services, client = world.services, world.client
    team, first, second = paid_twice(world, style)
    third = create_account(services)
    last = client.post(f"/v1/teams/{team}/seats", headers=third.headers).json()["seat"]["id"]
    notify(client, world.provider, pay_with_sandbox(client, world.provider, third, last, style))
    world.worker.run_until_idle()
    return first, second


@pytest.mark.parametrize("style", ["charge", "hold"])
def test_a_second_payment_whose_return_failed_is_never_kept_when_its_team_succeeds(
    world: World, services: Services, style: str
) -> None:
    first, second = paid_twice_and_filled(world, style)

    # The first payment is the seat's, and the second is still only owed back: neither
    # captured nor earned, and still with the operators
    journals = services.db.run_sync(
        lambda s: sorted(
            (j.payment_id == second, j.kind)
            for j in s.scalars(select(Journal).where(Journal.payment_id.in_([first, second])))
        ),
        write=False,
    )
    assert (True, "earn") not in journals
    assert (False, "earn") in journals
    assert payment(services, second).status == ("charged" if style == "charge" else "authorized")
    assert payment(services, second).end_reason == f"{RETURNS_FAILING[style][0]}_failed"
    assert [p["id"] for p in world.queue()] == [second]
    sound(services)


@pytest.mark.parametrize("style", ["charge", "hold"])
def test_a_team_fails_with_a_second_payment_whose_return_waits_with_the_operators(
    world: World, services: Services, style: str
) -> None:
    # Given a seat paid twice whose second payment's return failed until its attempts ran out
    team, first, second = paid_twice(world, style)
    kind = RETURNS_FAILING[style][0]
    world.provider.faults[kind].clear()  # the provider answers again
    calls = len([c for c in world.provider.calls if c.kind == kind])
    waiting = payment(services, second)

    # When its team fails
    clock.advance(timedelta(days=2))
    world.worker.run_until_idle()

    # Then the team ends and the seat's own payment goes back, while the second stays as it
    # was, the operators' (its journal of money owed back is not written twice)
    assert world.client.get(f"/v1/teams/{team}").json()["status"] == "failed"
    assert payment(services, first).status == ("refunded" if style == "charge" else "voided")
    assert len([c for c in world.provider.calls if c.kind == kind]) == calls + 1
    still = payment(services, second)
    assert (still.status, still.pending_action, still.end_reason) == (
        waiting.status,
        None,
        f"{kind}_failed",
    )
    assert [p["id"] for p in world.queue()] == [second]
    sound(services)


def test_a_second_hold_whose_void_failed_lapsing_leaves_the_queue_and_is_never_written_off(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a seat paid twice by holds, whose second hold's void failed for good, and whose team
    # then succeeded on the first
    first, second = paid_twice_and_filled(world, "hold")

    # When the provider lets the second hold lapse, and says so
    ref = world.provider.sandbox.intent_of_payment(second).ref
    body, headers = world.provider.sandbox.expire_hold(ref)
    assert client.post("/v1/webhooks/sandbox", content=body, headers=headers).status_code == 200

    # Then nothing is left to void and nothing of it was the seat's: it ends as lapsed and
    # leaves the queue, where a write-off would have paid the merchant for the seat again
    ended = payment(services, second)
    assert (ended.status, ended.pending_action, ended.end_reason, ended.queued_at) == (
        "expired",
        None,
        "hold_expired",
        None,
    )
    assert world.queue() == []
    written_off = world.act(second, "write_off")
    assert written_off.status_code == 409, written_off.text
    assert payment(services, first).status == "captured"
    sound(services)


def test_the_audit_finds_a_seat_whose_money_was_earned_twice(
    world: World, services: Services
) -> None:
    # Given the seat paid twice, and its second payment earned as well (as a path that forgot
    # it was owed back would have done)
    first, second = paid_twice_and_filled(world, "charge")
    services.db.run_raw_sync(ledger.earn_charge, second, utc_now())

    # Then the audit names the seat and both payments
    found = services.db.run_sync(check_facts, write=False)
    [earned_twice] = [f for f in found if f.invariant == EARNED_ONCE]
    assert first in earned_twice.detail
    assert second in earned_twice.detail


def test_a_lottery_losers_capture_that_failed_is_given_back_never_paid_by_the_platform(
    world: World, services: Services, client: TestClient
) -> None:
    # Given a lottery team of three paid by holds, whose captures all failed for good
    deal = create_deal(services.db, world.merchant, team_size=3, lottery_winners=1)
    shoppers = [*world.shoppers, create_account(services)]
    team = client.post(f"/v1/deals/{deal.id}/teams", headers=shoppers[0].headers).json()
    team_id, seats = team["team"]["id"], [team["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
        seats.append(joined.json()["seat"]["id"])
    holds = [
        pay_with_sandbox(client, world.provider, shopper, seat, "hold")
        for shopper, seat in zip(shoppers, seats, strict=True)
    ]
    for hold in holds:
        notify(client, world.provider, hold)
    world.provider.faults["capture"].extend([Fault.REFUSED] * LIMITS.max_attempts * 3)
    world.worker.tick()
    for _ in range(LIMITS.max_attempts - 1):
        tick_until_due(world.worker, services, holds[0])
    won = services.db.run_sync(
        lambda s: {row[0]: row[1] for row in s.execute(text("SELECT id, lottery_won FROM seats"))},
        write=False,
    )
    queued = {p["id"]: p["actions"] for p in world.queue()}
    assert set(queued) == set(holds)

    # Then a loser's hold may only be given back or retried: the merchant earns nothing for a
    # seat that lost, so the platform never pays it for one, nor is the loser charged again
    for hold, seat in zip(holds, seats, strict=True):
        kept = ["retry", "refund", "write_off", "charge_again"]
        assert queued[hold] == (kept if won[seat] else ["retry", "refund"])
        if not won[seat]:
            refused = world.act(hold, "write_off")
            assert refused.json()["code"] == "queue_action_not_available"

    # When the operators give the losers their holds back and capture the winner's
    for hold, seat in zip(holds, seats, strict=True):
        assert world.act(hold, "retry" if won[seat] else "refund").status_code == 200
    world.worker.run_until_idle()

    # Then the team owes its losers nothing more (no money of theirs was taken), and the
    # worker is idle
    flag = services.db.run_sync(
        lambda s: s.execute(
            text("SELECT lottery_refunds_due FROM teams WHERE id = :id"), {"id": team_id}
        ).scalar(),
        write=False,
    )
    assert not flag
    assert world.worker.tick().total() == 0
    statuses = sorted(payment(services, hold).status for hold in holds)
    assert statuses == ["captured", "voided", "voided"]
    sound(services)
