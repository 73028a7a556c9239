"""The group-buy engine under random operations, checked against a small in-memory model.

Shoppers start and join teams, pay through the sandbox (approve or decline), the sandbox's signed
webhooks arrive late, out of order, twice or stale, shoppers cancel, the clock jumps minutes to
days and the worker ticks. After every step the database must agree with the model and keep the
invariants of DESIGN.md; once everything has ended no money may be left in limbo.

Shoppers and the provider's webhooks go through the public HTTP API, the contract that stays put
while the service functions behind it are reshaped for speed; the sandbox's own helpers complete
checkouts, and the worker and the audit are called directly.

The model is plain Python: teams, seats and payments and the rules of DESIGN.md. Time in the
model is whole minutes since the example started (the sum of the clock jumps). Real time only
adds the example's few seconds to that, so a deadline ``d`` minutes after an event has passed
exactly when ``now - event >= d`` in model minutes.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pintuan.audit.service import audit_database
from pintuan.domain.payments import PaymentStyle, ProviderAction
from pintuan.domain.roles import Role
from pintuan.kit.db import Database
from pintuan.kit.time import clock, utc_now
from pintuan.ledger import guard as ledger_guard
from pintuan.models import Base
from pintuan.payments.endings import CallLimits
from pintuan.payments.models import PaymentAttempt
from pintuan.payments.providers import sandbox as sandbox_provider
from pintuan.payments.providers.sandbox import SIGNATURE_HEADER, SandboxProvider, sign
from pintuan.services import Services
from pintuan.worker import TickReport, Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.properties import walks

SHOPPERS = 4
HOLD_MINUTES = 10  # Settings.seat_hold_minutes
TOLERANCE_MINUTES = 5  # the sandbox's signature tolerance
FIRST_POLL_MINUTES = 2  # payments/owed.py: an unfinished checkout is first asked about then
LONGEST_BACKOFF_MINUTES = 60  # payments/service.py: an owed call waits at most this long
DEAL_MINUTES = 30 * 24 * 60
SETTLE_MINUTES = 2 * 24 * 60  # past every hold and every team window
GROUP_PRICE = 1500
FOREVER = timedelta(days=3650)
LIVE = ("held", "paid", "confirmed")
ENDED_SEAT = ("confirmed", "released", "refunded")
MONEY_KEPT = ("authorized", "charged")
ACTION_RESULT = {"capture": "captured", "void": "voided", "refund": "refunded"}

DEAL_SPECS = st.fixed_dictionaries(
    {
        "team_size": st.integers(2, 3),
        "stock": st.integers(2, 8),
        "per_user_limit": st.integers(1, 2),
        "window": st.sampled_from([30, 60, 24 * 60]),
        "new_shoppers_only": st.booleans(),
        "leader_price": st.sampled_from([None, 1000]),
    }
)
# Mostly a few minutes (holds last 10, signatures 5), sometimes past a team window or days.
JUMPS = st.sampled_from([0, 0, 1, 2, 4, 6, 9, 11, 30, 60, 24 * 60, 3 * 24 * 60])
PICK = st.integers(0, 15)  # which of the candidates a rule acts on
# How a shopper who takes a seat pays: not yet, or at once on the sandbox's page.
PAY_AT_ONCE = st.sampled_from([None, PaymentStyle.HOLD, PaymentStyle.CHARGE])


# ---------------------------------------------------------------------------- the model


@dataclass(eq=False)
class MDeal:
    id: str
    team_size: int
    stock: int
    per_user_limit: int
    window: int
    new_shoppers_only: bool
    leader_price: int | None
    ends: int
    ended: bool = False

    def __repr__(self) -> str:
        return self.id


@dataclass(eq=False)
class MTeam:
    id: str
    deal: MDeal
    expires: int
    status: str = "forming"
    seats: list[MSeat] = field(default_factory=list)

    def live(self) -> list[MSeat]:
        return [s for s in self.seats if s.status in LIVE]

    def has_member(self, user: int) -> bool:
        return any(s.user == user for s in self.live())

    def __repr__(self) -> str:
        return self.id


@dataclass(eq=False)
class MSeat:
    id: str
    team: MTeam
    user: int
    price: int
    hold_expires: int
    status: str = "held"
    payments: list[MPayment] = field(default_factory=list)

    def __repr__(self) -> str:
        return self.id


@dataclass(eq=False)
class MPayment:
    id: str
    seat: MSeat
    ref: str
    style: str
    opened: int  # when its checkout opened
    status: str = "requires_action"
    pending: str | None = None  # the capture, void or refund owed to the provider
    intent: str = "requires_action"  # the sandbox's own record
    # When the sandbox was asked about the unfinished checkout and had nothing to say.
    unanswered: list[datetime] = field(default_factory=list)

    def __repr__(self) -> str:
        return self.id


@dataclass(eq=False)
class MWebhook:
    body: bytes
    headers: dict[str, str]
    event_id: str
    payment: MPayment
    kind: str  # authorized, charged or failed
    signed_at: int

    def __repr__(self) -> str:
        return f"{self.kind}:{self.payment.id}"


@dataclass(frozen=True)
class Asked:
    """Every asking of the sandbox about an unfinished checkout so far: its answers by event
    id, as (ref, kind), and the askings that learnt nothing by their row, as (payment id, when).
    """

    answers: dict[str, tuple[str, str]]
    unanswered: dict[int, tuple[str, datetime]]

    def since(self, before: Asked) -> tuple[list[tuple[str, str]], list[tuple[str, datetime]]]:
        """What was learnt since ``before``, and whom it asked in vain, in order."""
        return (
            [found for key, found in self.answers.items() if key not in before.answers],
            [self.unanswered[key] for key in sorted(self.unanswered.keys() - before.unanswered)],
        )


# ---------------------------------------------------------------------------- helpers


def step(**strategies: Any) -> Callable[[Callable[..., Any]], Any]:
    """A rule that first marks the run unclean; the invariant marks it clean again. Teardown
    settles only clean runs, so a failing step is reported as it failed."""

    def decorate(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(self: EngineMachine, **args: Any) -> Any:
            self.clean = False
            return fn(self, **args)

        return rule(**strategies)(run)

    return decorate


def answer(response: Any) -> tuple[str | None, Any]:
    """(None, the body) of a success, or (the problem's code, None) of a refusal."""
    assert response.status_code < 500, response.text
    if response.status_code < 300:
        return None, response.json()
    return response.json()["code"], None


def _empty_tables(db: Database) -> None:
    """Each example starts on empty tables. Unlike conftest's TRUNCATE, a DELETE of a few
    rows costs PostgreSQL milliseconds rather than a few hundred."""

    def work(session: Session) -> None:
        # The ledger's rows are append-only, even for a test's reset; on SQLite the write lock
        # is taken up front (a deferred transaction could not change the schema under a writer).
        conn = session.connection()
        ledger_guard.remove(conn)
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        ledger_guard.install(conn)

    db.run_sync(work)


def report_of(report: TickReport) -> tuple[int, int, int, int, int]:
    return (
        report.holds_released,
        report.teams_failed,
        report.provider_calls,
        report.provider_failures,
        report.deals_ended,
    )


# ---------------------------------------------------------------------------- the machine


class EngineMachine(RuleBasedStateMachine):
    def __init__(self, services: Services, client: TestClient) -> None:
        super().__init__()
        clock.offset = timedelta(0)
        _empty_tables(services.db)
        self.services = services
        self.db = services.db
        self.client = client
        settings = services.settings
        assert settings.seat_hold_minutes == HOLD_MINUTES
        self.secret = settings.sandbox_secret()
        # One sandbox per payment style: the shopper's payment picks its style through the
        # provider's default, as ``POST /v1/seats/{id}/payments`` does.
        self.sandboxes = {
            style: SandboxProvider(
                self.db, secret=self.secret, style=style, base_url=settings.base_url
            )
            for style in PaymentStyle
        }
        self.worker = Worker(services)
        limits = CallLimits.of(settings)
        self.poll_cap = limits.cap(ProviderAction.POLL)
        self.poll_deadline = limits.deadline_after
        self.last_pass = 0  # when the worker last made a pass
        self.merchant = create_merchant(self.db)
        self.staff = create_account(services, role=Role.MERCHANT, merchant=self.merchant)
        self.shoppers: list[Account] = [create_account(services) for _ in range(SHOPPERS)]
        self.now = 0
        self.deals: list[MDeal] = []
        self.teams: list[MTeam] = []
        self.all_seats: list[MSeat] = []
        self.all_payments: list[MPayment] = []
        self.all_webhooks: list[MWebhook] = []
        self.accepted: set[str] = set()  # event ids pintuan has stored
        self.team_ends: dict[str, str] = {}  # end states as first seen in the database
        self.seat_ends: dict[str, str] = {}
        self.clean = False
        self.settled = False
        self.audited: Any = None  # the state the audit last passed

    # ------------------------------------------------------------------ the model's rules

    def open_teams(self) -> list[MTeam]:
        return [t for t in self.teams if t.status == "forming" and self.now < t.expires]

    def live_seats(self) -> list[MSeat]:
        return [s for s in self.all_seats if s.status in ("held", "paid")]

    def held_seats(self) -> list[MSeat]:
        return [s for s in self.all_seats if s.status == "held"]

    def open_checkouts(self) -> list[MPayment]:
        return [p for p in self.all_payments if p.intent == "requires_action"]

    def committed(self, deal: MDeal) -> int:
        return sum(len(t.live()) for t in self.teams if t.deal is deal)

    def held_by(self, deal: MDeal, user: int) -> int:
        return sum(1 for t in self.teams if t.deal is deal for s in t.live() if s.user == user)

    def deal_refusal(self, deal: MDeal) -> str | None:
        if self.now >= deal.ends:
            return "deal_not_live"
        if self.committed(deal) >= deal.stock:
            return "sold_out"
        return None

    def end_seats(self, seats: list[MSeat]) -> list[MSeat]:
        ended = [s for s in seats if s.status in ("held", "paid")]
        for s in ended:
            s.status = "released" if s.status == "held" else "refunded"
        for team in {id(s.team): s.team for s in ended}.values():
            # A forming team whose last member went fails at once: nobody is left to fill it.
            if team.status == "forming" and not team.live():
                event("a team left empty closed")
                team.status = "failed"
        return ended

    def owe_back(self, found: list[MPayment]) -> None:
        for p in found:
            if p.status in MONEY_KEPT:
                p.pending = "void" if p.status == "authorized" else "refund"

    def return_money(self, seats: list[MSeat]) -> None:
        self.owe_back(
            [p for s in seats for p in s.payments if p.status in MONEY_KEPT and p.pending is None]
        )

    def fail_team(self, team: MTeam) -> None:
        assert team.status == "forming"
        team.status = "failed"
        self.return_money(self.end_seats(team.seats))

    def money_arrived(self, payment: MPayment, kind: str) -> None:
        """A payment's money arrived: it takes its seat's place, or is owed straight back."""
        if payment.status not in ("requires_action", "failed"):
            return
        payment.status = "authorized" if kind == "authorized" else "charged"
        seat, team = payment.seat, payment.seat.team
        if team.status == "forming" and self.now >= team.expires:
            event("money arrived after the team's window")
            self.fail_team(team)
            self.owe_back([payment])
        elif seat.status != "held":
            event("money arrived for an ended seat")
            self.owe_back([payment])
        elif self.now >= seat.hold_expires:
            event("money arrived after the seat's hold")
            self.end_seats([seat])
            self.owe_back([payment])
        else:
            seat.status = "paid"
            if sum(s.status == "paid" for s in team.seats) == team.deal.team_size:
                event("a team succeeded")
                team.status = "succeeded"
                for s in team.live():
                    s.status = "confirmed"
                    for p in s.payments:
                        if p.status == "authorized" and p.pending is None:
                            p.pending = "capture"

    def must_be_asked(self) -> list[MPayment]:
        """The unfinished checkouts whose poll is due for certain: first two minutes after
        the checkout opened, then (with a backoff of at most an hour) whenever the worker comes
        back an hour or more after its last pass."""
        return [
            p
            for p in self.all_payments
            if p.status == "requires_action"
            and (
                self.now - self.last_pass >= LONGEST_BACKOFF_MINUTES
                if p.unanswered
                else self.now - p.opened >= FIRST_POLL_MINUTES
            )
        ]

    def no_news(self, payment: MPayment, at: datetime) -> None:
        """The sandbox was asked about a checkout at ``at`` and had nothing to say. Like every
        owed call, polls have a cap and a deadline (from the first unanswered one): past either,
        the payment ends as failed (``no_news``) and nobody asks again."""
        assert (payment.status, payment.intent) == ("requires_action", "requires_action")
        payment.unanswered.append(at)
        if (
            len(payment.unanswered) >= self.poll_cap
            or at >= payment.unanswered[0] + self.poll_deadline
        ):
            event("polls ran out")
            payment.status = "failed"

    def model_tick(
        self,
        done: Callable[[MPayment], bool],
        polled: list[tuple[str, str]],
        unanswered: list[tuple[str, datetime]],
    ) -> tuple[int, int, int, int, int]:
        """One worker pass: release expired holds, fail expired teams, make the owed provider
        calls (the sandbox accepts them all), end past deals.

        Every call owed before the pass is made; a call that the pass itself made owed may be
        left to the next pass (``done`` says whether it was made). ``polled`` is what the pass
        learnt by asking the sandbox about unfinished checkouts, as (ref, kind), and
        ``unanswered`` the askings that learnt nothing, as (payment id, when): how often to ask
        is the worker's business, but every due checkout is asked, and what the answers do is
        checked here like any notification.
        """
        by_id = {p.id: p for p in self.all_payments}
        asked = {ref for ref, _ in polled} | {by_id[pid].ref for pid, _ in unanswered}
        assert {p.ref for p in self.must_be_asked()} <= asked
        owed_before = [p for p in self.all_payments if p.pending is not None]
        expired = [s for s in self.all_seats if s.status == "held" and self.now >= s.hold_expires]
        self.return_money(self.end_seats(expired))
        closing = [t for t in self.teams if t.status == "forming" and self.now >= t.expires]
        for team in closing:
            self.fail_team(team)
        for ref, kind in polled:
            payment = next(p for p in self.all_payments if p.ref == ref)
            event(f"poll: {kind}")
            if kind != "failed":
                self.money_arrived(payment, kind)
            elif payment.status == "requires_action":
                payment.status = "failed"
        for payment_id, at in unanswered:
            self.no_news(by_id[payment_id], at)
        owed_now = [p for p in self.all_payments if p.pending is not None]
        made = [p for p in owed_now if p in owed_before or done(p)]
        for p in made:
            event(f"provider call: {p.pending}")
            p.status = p.intent = ACTION_RESULT[p.pending or ""]
            p.pending = None
        ending = [d for d in self.deals if not d.ended and self.now >= d.ends]
        for d in ending:
            d.ended = True
        self.last_pass = self.now
        return len(expired), len(closing), len(made), 0, len(ending)

    # ------------------------------------------------------------------ set-up

    @initialize(specs=st.lists(DEAL_SPECS, min_size=1, max_size=2))
    def create_deals(self, specs: list[dict[str, Any]]) -> None:
        self.clean = False
        for spec in specs:
            self.deals.append(self._create_deal(**spec))

    def _create_deal(
        self,
        *,
        team_size: int,
        stock: int,
        per_user_limit: int,
        window: int,
        new_shoppers_only: bool,
        leader_price: int | None,
    ) -> MDeal:
        body = deal_body(
            self.merchant.id,
            team_size=team_size,
            stock=stock,
            per_user_limit=per_user_limit,
            team_window_minutes=window,
            new_shoppers_only=new_shoppers_only,
            group_price={"amount": GROUP_PRICE, "currency": "USD"},
            list_price={"amount": 2000, "currency": "USD"},
            ends_at=(utc_now() + timedelta(minutes=DEAL_MINUTES)).isoformat(),
        )
        if leader_price is not None:
            body["leader_price"] = {"amount": leader_price, "currency": "USD"}
        code, deal = answer(self.client.post("/v1/deals", json=body, headers=self.staff.headers))
        assert code is None
        code, _ = answer(
            self.client.post(f"/v1/deals/{deal['id']}/publish", headers=self.staff.headers)
        )
        assert code is None
        return MDeal(
            deal["id"],
            team_size,
            stock,
            per_user_limit,
            window,
            new_shoppers_only,
            leader_price,
            ends=self.now + DEAL_MINUTES,
        )

    # ------------------------------------------------------------------ shoppers

    @precondition(lambda self: len(self.open_teams()) < 2)  # so that some teams fill
    @step(deal=st.integers(0, 1), user=st.integers(0, SHOPPERS - 1), pay=PAY_AT_ONCE)
    def start_team(self, deal: int, user: int, pay: PaymentStyle | None) -> None:
        d = self.deals[deal % len(self.deals)]
        expected = self.deal_refusal(d)
        if expected is None and self.held_by(d, user) >= d.per_user_limit:
            expected = "limit_reached"
        shopper = self.shoppers[user]
        code, started = answer(self.client.post(f"/v1/deals/{d.id}/teams", headers=shopper.headers))
        event(f"start: {code or 'ok'}")
        assert code == expected
        if started is None:
            return
        team = MTeam(started["team"]["id"], d, expires=min(self.now + d.window, d.ends))
        self.teams.append(team)
        price = GROUP_PRICE if d.leader_price is None else d.leader_price
        self._new_seat(team, started["seat"], user, price, pay)

    @precondition(lambda self: self.teams)
    @step(pick=PICK, user=st.integers(0, SHOPPERS - 1), pay=PAY_AT_ONCE)
    def join_team(self, pick: int, user: int, pay: PaymentStyle | None) -> None:
        """Join a team through the link its leader shared: mostly one still open, sometimes
        any (a late click)."""
        teams = self.open_teams() if pick < 12 and self.open_teams() else self.teams
        self._join(teams[-1 - pick % len(teams)], user, pay)

    @precondition(lambda self: self.open_teams())
    @step(pick=PICK, style=st.sampled_from(PaymentStyle))
    def fill_team(self, pick: int, style: PaymentStyle) -> None:
        """Friends answer the shared link: shoppers not in an open team join it one after
        another and pay at once, until it is full."""
        team = self.open_teams()[-1 - pick % len(self.open_teams())]
        for user in range(SHOPPERS):
            if len(team.live()) >= team.deal.team_size or team.has_member(user):
                continue
            if self._join(team, user, style) in ("sold_out", "team_closed"):
                return

    def _join(self, team: MTeam, user: int, pay: PaymentStyle | None) -> str | None:
        d = team.deal
        expected = self.deal_refusal(d)
        if expected is not None:
            pass
        elif team.status != "forming" or self.now >= team.expires:
            expected = "team_closed"
        elif len(team.live()) >= d.team_size:
            expected = "team_full"
        elif d.new_shoppers_only and any(
            s.user == user and s.status == "confirmed" for s in self.all_seats
        ):
            expected = "not_eligible"
        elif team.has_member(user):
            expected = "already_member"
        elif self.held_by(d, user) >= d.per_user_limit:
            expected = "limit_reached"
        shopper = self.shoppers[user]
        code, joined = answer(
            self.client.post(f"/v1/teams/{team.id}/seats", headers=shopper.headers)
        )
        event(f"join: {code or 'ok'}")
        assert code == expected
        if joined is not None:
            self._new_seat(team, joined["seat"], user, GROUP_PRICE, pay)
        return code

    def _new_seat(
        self, team: MTeam, out: dict[str, Any], user: int, price: int, pay: PaymentStyle | None
    ) -> None:
        assert (out["team_id"], out["status"], out["price"]["amount"]) == (team.id, "held", price)
        seat = MSeat(out["id"], team, user, price, hold_expires=self.now + HOLD_MINUTES)
        team.seats.append(seat)
        self.all_seats.append(seat)
        if pay is not None:
            self._pay_at_once(seat, pay)

    @precondition(lambda self: self.live_seats())
    @step(pick=PICK, by_owner=st.sampled_from([True, True, False]))
    def cancel_seat(self, pick: int, by_owner: bool) -> None:
        """The holder (or, refused, another shopper) cancels a seat, mostly a live one: it ends
        and its money is owed back."""
        seats = self.live_seats() if pick < 12 else self.all_seats
        seat = seats[-1 - pick % len(seats)]
        shopper = self.shoppers[seat.user if by_owner else (seat.user + 1) % SHOPPERS]
        expected: str | None = None
        if not by_owner:
            expected = "seat_not_found"
        elif seat.team.status != "forming":
            expected = "team_closed"
        elif seat.status not in ("held", "paid"):
            expected = "seat_not_cancellable"
        code, cancelled = answer(
            self.client.post(f"/v1/seats/{seat.id}/cancel", headers=shopper.headers)
        )
        event(f"cancel: {code or 'ok'}")
        assert code == expected
        if cancelled is not None:
            self.return_money(self.end_seats([seat]))
            assert cancelled["status"] == seat.status

    @precondition(lambda self: self.held_seats())
    @step(
        pick=PICK, style=st.sampled_from(PaymentStyle), approve=st.sampled_from([None, True, False])
    )
    def pay(self, pick: int, style: PaymentStyle, approve: bool | None) -> None:
        """Start paying for a held seat (its hold may have run out unnoticed), and perhaps
        approve or decline at once; either way the webhook is still on its way."""
        held = self.held_seats()
        payment = self._pay(held[pick % len(held)], style)
        if payment is not None and approve is not None:
            self._complete(payment, approve=approve)

    def _pay(self, seat: MSeat, style: PaymentStyle) -> MPayment | None:
        """A new payment and its sandbox checkout; None when refused or an unfinished payment
        was reused."""
        payable = seat.status == "held" and self.now < seat.hold_expires
        self.services.providers["sandbox"] = self.sandboxes[style]
        code, payment = answer(
            self.client.post(
                f"/v1/seats/{seat.id}/payments",
                json={"provider": "sandbox"},
                headers=self.shoppers[seat.user].headers,
            )
        )
        event(f"pay: {code or 'ok'}")
        assert code == (None if payable else "seat_not_payable")
        if payment is None:
            return None
        assert payment["status"] == "requires_action"
        unfinished = [p for p in seat.payments if p.status == "requires_action"]
        if unfinished:  # reused, whatever style was asked for this time
            assert payment["id"] == unfinished[0].id
            return None
        assert (payment["style"], payment["amount"]["amount"]) == (style.value, seat.price)
        ref = self.sandboxes[style].intent_of_payment(payment["id"]).ref
        found = MPayment(payment["id"], seat, ref, style.value, opened=self.now)
        seat.payments.append(found)
        self.all_payments.append(found)
        return found

    @precondition(lambda self: self.open_checkouts())
    @step(pick=PICK, approve=st.booleans())
    def complete_checkout(self, pick: int, approve: bool) -> None:
        """The shopper approves or declines on the sandbox's page; the webhook waits."""
        waiting = self.open_checkouts()
        self._complete(waiting[pick % len(waiting)], approve=approve)

    def _complete(self, payment: MPayment, *, approve: bool) -> MWebhook:
        sandbox = self.sandboxes[PaymentStyle(payment.style)]
        sent = sandbox.complete_checkout(payment.ref, approve=approve)
        if approve:
            payment.intent = kind = "authorized" if payment.style == "hold" else "charged"
        else:
            payment.intent, kind = "declined", "failed"
        body, headers = sent
        hook = MWebhook(body, headers, json.loads(body)["id"], payment, kind, self.now)
        self.all_webhooks.append(hook)
        return hook

    def _pay_at_once(self, seat: MSeat, style: PaymentStyle) -> None:
        """The happy path in one go, as the sandbox's page does it: pay, approve, and the
        webhook arrives at once."""
        payment = self._pay(seat, style)
        assert payment is not None
        self._deliver(self._complete(payment, approve=True), resign=False)

    # ------------------------------------------------------------------ the provider

    @precondition(lambda self: self.all_webhooks)
    @step(pick=PICK, again=st.booleans(), resign=st.booleans())
    def deliver_webhook(self, pick: int, again: bool, resign: bool) -> None:
        """Deliver a notification: one not yet accepted, or (``again``) any one, so they arrive
        late, out of order and twice. ``resign`` is a retry by the provider (a fresh
        signature); otherwise the first signature is sent and must be refused once older than
        the tolerance."""
        waiting = [h for h in self.all_webhooks if h.event_id not in self.accepted]
        hooks = self.all_webhooks if again or not waiting else waiting
        self._deliver(hooks[pick % len(hooks)], resign=resign)

    def _deliver(self, hook: MWebhook, *, resign: bool) -> None:
        headers, signed_at = hook.headers, hook.signed_at
        if resign:
            timestamp = int(utc_now().timestamp())
            headers = {SIGNATURE_HEADER: sign(self.secret, hook.body, timestamp)}
            signed_at = self.now
        stale = self.now - signed_at >= TOLERANCE_MINUTES
        code, ack = answer(
            self.client.post("/v1/webhooks/sandbox", content=hook.body, headers=headers)
        )
        event(f"webhook: {code or 'verified'}")
        assert code == ("stale_signature" if stale else None)
        if ack is None:
            return
        duplicate = hook.event_id in self.accepted
        event(f"webhook: {'duplicate' if duplicate else 'first'}")
        assert ack["duplicate"] == duplicate
        if duplicate:
            return
        self.accepted.add(hook.event_id)
        if hook.kind != "failed":
            self.money_arrived(hook.payment, hook.kind)
        elif hook.payment.status == "requires_action":
            hook.payment.status = "failed"

    # ------------------------------------------------------------------ time and the worker

    @precondition(lambda self: self.all_seats)
    @step(minutes=JUMPS, tick=st.booleans())
    def time_passes(self, minutes: int, tick: bool) -> None:
        """The clock jumps (minutes to days), then perhaps the worker makes one pass."""
        self._advance(minutes)
        if tick:
            self._tick()

    def _advance(self, minutes: int) -> None:
        clock.advance(timedelta(minutes=minutes))
        self.now += minutes

    def _asked(self) -> Asked:
        def read(session: Session) -> Asked:
            return Asked(
                {
                    event_id: (json.loads(body)["ref"], kind.split(".")[1])
                    for event_id, kind, body in session.execute(_POLLS)
                },
                {row.id: (row.payment_id, row.at) for row in session.execute(_UNANSWERED)},
            )

        return self.db.run_sync(read, write=False)

    def _tick(self) -> None:
        before = self._asked()
        report = self.worker.tick()
        polled, unanswered = self._asked().since(before)
        statuses = self.db.run_sync(
            lambda s: dict(s.execute(text("SELECT id, status FROM payments")).all()), write=False
        )
        expected = self.model_tick(
            lambda p: statuses[p.id] == ACTION_RESULT[p.pending or ""], polled, unanswered
        )
        assert report_of(report) == expected

    @precondition(lambda self: self.all_seats and not self.settled)
    @step()
    def settle(self) -> None:
        """Everything ends: the provider retries every notification not yet accepted, time runs
        past every hold and window, and the worker runs until idle. Once a run: it ends every
        team there is."""
        self.settled = True
        self._settle(SETTLE_MINUTES)

    def _settle(self, minutes: int) -> None:
        for hook in self.all_webhooks:
            if hook.event_id not in self.accepted:
                self._deliver(hook, resign=True)
        self._advance(minutes)
        before = self._asked()
        report = self.worker.run_until_idle()
        polled, unanswered = self._asked().since(before)
        assert report_of(report) == self.model_tick(lambda _: True, polled, unanswered)
        self.agrees_with_the_database()
        self.clean = False  # still inside the step
        self._no_money_in_limbo()

    def _no_money_in_limbo(self) -> None:
        """Invariant 5 with no grace, once every team has ended."""
        breaches = self.db.run_sync(lambda s: audit_database(s, timedelta(0)), write=False)
        assert breaches == []
        assert all(t.status in ("succeeded", "failed") for t in self.teams)
        assert all(s.status in ENDED_SEAT for s in self.all_seats)
        for p in self.all_payments:
            assert p.pending is None
            # Pintuan and the provider agree on every payment.
            assert (p.status, p.intent) in {
                ("requires_action", "requires_action"),  # the shopper never finished
                ("failed", "requires_action"),  # ... and the polls ran out
                ("failed", "declined"),
                ("captured", "captured"),
                ("charged", "charged"),
                ("voided", "voided"),
                ("refunded", "refunded"),
            }
        for seat in self.all_seats:
            # A confirmed seat (only in a succeeded team) keeps exactly one payment's money,
            # captured if it was a hold; every other seat keeps none.
            kept = [p for p in seat.payments if p.status in ("captured", "charged")]
            assert len(kept) == (seat.status == "confirmed")
            assert seat.status != "confirmed" or seat.team.status == "succeeded"

    def teardown(self) -> None:
        try:
            if self.clean and self.all_seats:
                self._settle(DEAL_MINUTES + SETTLE_MINUTES)
                assert all(d.ended for d in self.deals)
        finally:
            clock.offset = timedelta(0)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def agrees_with_the_database(self) -> None:
        got = self.db.run_sync(_snapshot, write=False)
        # With a grace of years the audit reads nothing the snapshot does not hold, and it has
        # nothing to look at before the first team.
        if got["teams"] and got != self.audited:
            breaches = self.db.run_sync(lambda s: audit_database(s, FOREVER), write=False)
            assert breaches == []
            self.audited = got
        live_per_team: Counter[str] = Counter()
        live_per_deal: Counter[str] = Counter()
        live_per_shopper: Counter[tuple[str, str]] = Counter()
        for seat_id, (status, team_id, deal_id, user_id) in got["seats"].items():
            if status in LIVE:
                live_per_team[team_id] += 1
                live_per_deal[deal_id] += 1
                live_per_shopper[deal_id, user_id] += 1
            if status in ENDED_SEAT:  # 4: a seat ends once
                assert self.seat_ends.setdefault(seat_id, status) == status
        for team_id, (status, taken, _, size) in got["teams"].items():
            assert live_per_team[team_id] <= size  # 1
            assert taken == live_per_team[team_id]
            if status != "forming":  # 4: a team ends once
                assert self.team_ends.setdefault(team_id, status) == status
        limits = {}
        for deal_id, (committed, stock, limit) in got["deals"].items():
            assert live_per_deal[deal_id] <= stock  # 2
            assert committed == live_per_deal[deal_id]
            limits[deal_id] = limit
        for (deal_id, _), n in live_per_shopper.items():
            assert n <= limits[deal_id]  # 3
        for key, n in got["counts"].items():
            assert n == live_per_shopper[key]

        # The model and the database tell the same story.
        assert {t.id for t in self.teams} == set(got["teams"])
        for t in self.teams:
            paid = {"succeeded": t.deal.team_size, "failed": 0}.get(
                t.status, sum(s.status == "paid" for s in t.seats)
            )
            assert got["teams"][t.id][:3] == (t.status, len(t.live()), paid)
        assert {s.id: s.status for s in self.all_seats} == {
            k: v[0] for k, v in got["seats"].items()
        }
        assert {p.id: (p.status, p.pending, p.seat.price) for p in self.all_payments} == got[
            "payments"
        ]
        assert {p.ref: p.intent for p in self.all_payments} == got["intents"]
        self.clean = True


_TEAMS = text("SELECT id, status, taken, paid, team_size FROM teams")
_SEATS = text("SELECT id, status, team_id, deal_id, user_id FROM seats")
_DEALS = text("SELECT id, committed, stock, per_user_limit FROM deals")
_COUNTS = text("SELECT deal_id, user_id, count FROM deal_shopper_counts")
# A poll owed is not a call the model owes: it follows the askings through what they found
# (_POLLS, _UNANSWERED) instead.
_PAYMENTS = text(
    "SELECT id, status, CASE WHEN pending_action = 'poll' THEN NULL ELSE pending_action END, "
    "amount FROM payments"
)
_INTENTS = text("SELECT ref, status FROM sandbox_intents")
_POLLS = text("SELECT event_id, type, body FROM webhook_events WHERE event_id LIKE 'poll:%'")
_UNANSWERED = (
    select(PaymentAttempt.id, PaymentAttempt.payment_id, PaymentAttempt.at)
    .where(PaymentAttempt.action == ProviderAction.POLL.value)
    .where(PaymentAttempt.outcome == "no_news")
    .order_by(PaymentAttempt.id)
)


def _snapshot(session: Session) -> dict[str, Any]:
    """Everything the invariants look at, read in one transaction."""

    def rows(query: Any) -> dict[Any, tuple[Any, ...]]:
        return {r[0]: tuple(r[1:]) for r in session.execute(query)}

    return {
        "teams": rows(_TEAMS),
        "seats": rows(_SEATS),
        "deals": rows(_DEALS),
        "counts": {(r[0], r[1]): r[2] for r in session.execute(_COUNTS)},
        "payments": rows(_PAYMENTS),
        "intents": {r[0]: r[1] for r in session.execute(_INTENTS)},
    }


def test_the_engine_keeps_its_invariants_under_random_operations(
    services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's model captures a hold however late the worker comes to it (its deals last a
    # month); holds that lapse at the provider are the money machine's subject.
    monkeypatch.setattr(sandbox_provider, "HOLD_LASTS", FOREVER)
    run_state_machine_as_test(
        lambda: EngineMachine(services, client),
        settings=settings(
            max_examples=walks(25 if services.db.is_sqlite else 6),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_a_free_leader_seat_is_taken_without_paying(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, leader_price=0)
    leader, friend = create_account(services), create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    free = client.post(
        f"/v1/seats/{started['seat']['id']}/payments",
        json={"provider": "sandbox"},
        headers=leader.headers,
    )
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
    payment = client.post(
        f"/v1/seats/{joined.json()['seat']['id']}/payments",
        json={"provider": "sandbox"},
        headers=friend.headers,
    ).json()
    client.post(f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=friend.headers)

    assert (free.status_code, free.json()["code"]) == (409, "seat_not_payable")
    assert started["seat"]["status"] == "paid"
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["status"] == "succeeded"
