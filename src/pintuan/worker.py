"""The sweep loop: everything that happens because time passed.

The worker only schedules: one read asks which tasks have work, and each due task (a feature's
own, in its ``tasks.py``: ``teams.tasks``, ``deals.tasks``, ``shares.tasks``, …) finds its due
rows through an index on their due time, handles at most one batch per transaction, and reports
how many it handled; an idle tick is that one read finding nothing. The loop runs again at once
while any task filled its batch, else it sleeps.

Provider calls (capture, void, refund) happen outside any transaction: a claim transaction
leases the rows, the calls are made, and a second transaction records each result.

Many workers may run at once (``pintuan worker`` on several machines) and share the work without
doing any of it twice (``kit.claims``): sweeps lease their batch's rows before ending them, provider
calls and webhook deliveries are leased the same way, the outbox dispatch and deal and receipt
sweeps skip rows another worker has locked, and the jobs that must run one at a time (the outbox
cursors of attribution, webhook fan-out and the feed; the roll-up; housekeeping) are run by the
holder of their ``worker_leases`` row only. A killed worker's rows and jobs are taken over once
their lease (``PINTUAN_WORKER_LEASE_SECONDS``) runs out.

Each task runs on its own: one that raises is logged with its name and the error, waits an
exponential backoff (1 s doubling to 5 min; a success resets it) before it runs again, and the
other tasks run on in the same tick. So a row that breaks one sweep, or a database hiccup in one
transaction, delays that task only, never the money owed by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

import anyio.to_thread
from sqlalchemy.orm import Session

from pintuan.accounts.service import forget_old_attempts
from pintuan.bargains import tasks as bargain_tasks
from pintuan.config import Settings
from pintuan.deals import tasks as deal_tasks
from pintuan.domain.payments import (
    PaymentProvider,
    ProviderError,
    ProviderRefused,
)
from pintuan.feed import tasks as feed_tasks
from pintuan.fulfilment import tasks as fulfilment_tasks
from pintuan.growth.tasks import DailyRollup
from pintuan.idempotency.service import delete_expired_keys
from pintuan.kit import claims
from pintuan.kit.metrics import PROVIDER_CALL_FAILURES, SWEEP_LAG, WORKER_TASK_FAILURES
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.kit.time import utc_now
from pintuan.ledger import commissions, findings
from pintuan.ledger.settlement import settle_recent_days
from pintuan.notifications.service import dispatch_outbox
from pintuan.ops.lag import OLDEST_DUE_COLUMNS, OldestDue
from pintuan.payments import endings, ladder, lottery, rewards
from pintuan.payments import refunds as refund_calls
from pintuan.payments import service as payments
from pintuan.pickups import tasks as pickup_tasks
from pintuan.services import Services
from pintuan.shares.tasks import CURSOR, attribute_new_events
from pintuan.teams import admission
from pintuan.teams import tasks as team_tasks
from pintuan.vouchers import service as voucher_service
from pintuan.webhooks import tasks as webhook_tasks

log = logging.getLogger("pintuan.worker")
T = TypeVar("T")

PAYMENT_LEASE = timedelta(minutes=2)
HOUSEKEEPING_EVERY = timedelta(minutes=5)
FIRST_TASK_BACKOFF_SECONDS = 1.0
MAX_TASK_BACKOFF_SECONDS = 300.0


@dataclass
class TickReport:
    holds_released: int = 0
    teams_failed: int = 0
    provider_calls: int = 0
    provider_failures: int = 0
    checkouts_polled: int = 0
    events_dispatched: int = 0
    deals_ended: int = 0
    events_attributed: int = 0
    days_rolled_up: int = 0
    events_fanned_out: int = 0
    webhooks_sent: int = 0
    receipts_confirmed: int = 0
    feed_events_credited: int = 0
    feed_lessons: int = 0
    feed_slates_forgotten: int = 0
    refunds_made: int = 0
    vouchers_expired: int = 0
    leaders_rewarded: int = 0
    lottery_refunds: int = 0
    ladder_refunds: int = 0
    pickups_unclaimed: int = 0
    commissions_frozen: int = 0

    def busy(self, batch: int) -> bool:
        # Webhooks are sent in smaller claims than the sweeps' batches (each waits on HTTP).
        if self.webhooks_sent >= webhook_tasks.SEND_BATCH:
            return True
        return any(getattr(self, f.name) >= batch for f in fields(self))

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


# The status words stay written in the SQL: each probe must repeat its partial index's predicate
# word for word for the planner to use that index (SQLite never matches a bound IN list, nor
# PostgreSQL's generic plan of a prepared statement a bound value). Holds, teams and calls are
# asked as their oldest due time (``ops.lag``), which also tells how far behind the sweep is.
DUE = Sql(
    f"""
    SELECT {OLDEST_DUE_COLUMNS},
      EXISTS (SELECT 1 FROM outbox_events WHERE dispatched_at IS NULL) AS events,
      EXISTS (SELECT 1 FROM deals WHERE status IN ('live', 'paused') AND ends_at <= :now)
        AS deals,
      EXISTS (SELECT 1 FROM outbox_events WHERE id > COALESCE(
              (SELECT last_event_id FROM attribution_cursors WHERE name = :cursor), 0))
        AS attributable,
      EXISTS (SELECT 1 FROM outbox_events WHERE id > COALESCE(
              (SELECT last_event_id FROM webhook_cursors WHERE name = :webhook_cursor), 0))
        AS fan_out,
      EXISTS (SELECT 1 FROM webhook_deliveries
              WHERE status = 'pending' AND next_attempt_at <= :now) AS webhooks,
      EXISTS (SELECT 1 FROM shipments WHERE status = 'shipped' AND receive_due_at <= :now)
        AS receipts,
      EXISTS (SELECT 1 FROM refunds WHERE status = 'pending' AND next_attempt_at <= :now)
        AS refunds,
      EXISTS (SELECT 1 FROM vouchers WHERE status = 'issued' AND expires_at <= :now)
        AS vouchers,
      EXISTS (SELECT 1 FROM teams WHERE leader_reward_due) AS rewards,
      EXISTS (SELECT 1 FROM teams WHERE lottery_refunds_due) AS lottery,
      EXISTS (SELECT 1 FROM teams WHERE ladder_refunds_due) AS ladder,
      EXISTS (SELECT 1 FROM pickups WHERE status IN ('waiting', 'arrived')
              AND claim_due_at <= :now) AS pickups
""",  # noqa: S608 - ops.lag's own text, no outside input
    cursor=CURSOR,
    webhook_cursor=webhook_tasks.CURSOR,
)


@dataclass(frozen=True, slots=True)
class Due(OldestDue):
    """Which tasks have work now: the oldest due time of holds, teams and calls (None: none is
    due), and whether there are events, deals, attributions and receipts to confirm (SQLite
    answers 0/1, PostgreSQL booleans)."""

    events: bool | int
    deals: bool | int
    attributable: bool | int
    fan_out: bool | int
    webhooks: bool | int
    receipts: bool | int
    refunds: bool | int
    vouchers: bool | int
    rewards: bool | int
    lottery: bool | int
    ladder: bool | int
    pickups: bool | int


def what_is_due(tx: RawTx) -> Due:
    """One read of the partial indexes and the outbox's key: which tasks have work now."""
    due = tx.one_as(Due, DUE, {"now": tx.instant(utc_now())})
    assert due is not None  # a SELECT without FROM always gives its one row
    return due


class TaskBackoff:
    """When each worker task may run again after it raised: 1 s after its first failure,
    doubling to 5 min; a success forgets its failures. Time is ``clock``'s, in seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def may_run(self, task: str) -> bool:
        return self.clock() >= self._not_before.get(task, 0.0)

    def failed(self, task: str) -> float:
        """Record a failure; returns the seconds the task now waits."""
        failures = self._failures.get(task, 0)
        delay = min(FIRST_TASK_BACKOFF_SECONDS * 2.0 ** min(failures, 20), MAX_TASK_BACKOFF_SECONDS)
        self._failures[task] = failures + 1
        self._not_before[task] = self.clock() + delay
        return delay

    def succeeded(self, task: str) -> None:
        if task in self._failures:
            del self._failures[task]
            del self._not_before[task]

    def failures(self, task: str) -> int:
        return self._failures.get(task, 0)


class Worker:
    def __init__(self, services: Services, backoff: TaskBackoff | None = None) -> None:
        self.services = services
        self.batch = services.settings.worker_batch_size
        self._limits = endings.CallLimits.of(services.settings)
        self.backoff = backoff or TaskBackoff()
        self._last_housekeeping = utc_now() - HOUSEKEEPING_EVERY
        self._attribution_window = timedelta(days=services.settings.attribution_window_days)
        self.holder = claims.worker_name()
        self.lease = timedelta(seconds=services.settings.worker_lease_seconds)
        # The one-at-a-time jobs this worker holds, and until when.
        self._held: dict[str, datetime] = {}
        self._rollup = DailyRollup()
        self._webhooks = webhook_tasks.WebhookSender(services.settings)
        self._last_reconcile = 0.0
        self._lag_gauges = {
            work: SWEEP_LAG.labels(work=work) for work in ("holds", "teams", "calls")
        }

    def tick(self) -> TickReport:
        """One pass over every task; each batch in its own short transaction, and each task on
        its own: one that raises backs off while the others run."""
        db, batch = self.services.db, self.batch
        report = TickReport()
        due = self._attempt("probe", lambda: db.run_raw_sync(self._probe, write=False))
        if due is None:
            return report
        if due.holds:
            report.holds_released = (
                self._attempt("holds", team_tasks.release_expired_holds, db, batch, self.lease) or 0
            )
        if due.teams:
            report.teams_failed = (
                self._attempt("teams", team_tasks.close_expired_teams, db, batch, self.lease) or 0
            )
        if due.calls:
            self._attempt("calls", self._call_providers, report)
        if due.refunds:
            self._attempt("refunds", self._make_refunds, report)
        if due.receipts:
            report.receipts_confirmed = (
                self._attempt(
                    "receipts", db.run_raw_sync, fulfilment_tasks.confirm_overdue_receipts, batch
                )
                or 0
            )
        if due.vouchers:
            report.vouchers_expired = (
                self._attempt(
                    "vouchers", db.run_raw_sync, voucher_service.expire_due, utc_now(), batch
                )
                or 0
            )
        if due.rewards:
            report.leaders_rewarded = (
                self._attempt("rewards", db.run_raw_sync, rewards.reward_leaders, utc_now(), batch)
                or 0
            )
        if due.lottery:
            report.lottery_refunds = (
                self._attempt("lottery", db.run_raw_sync, lottery.refund_losers, utc_now(), batch)
                or 0
            )
        if due.ladder:
            report.ladder_refunds = (
                self._attempt(
                    "ladder", db.run_raw_sync, ladder.refund_differences, utc_now(), batch
                )
                or 0
            )
        if due.pickups:
            report.pickups_unclaimed = (
                self._attempt(
                    "pickups", db.run_raw_sync, pickup_tasks.refund_unclaimed, utc_now(), batch
                )
                or 0
            )
        # Ending seats and teams writes events, so look again rather than trust the probe.
        if (
            due.events
            or due.holds
            or due.teams
            or due.calls
            or due.receipts
            or due.refunds
            or report.vouchers_expired
            or report.leaders_rewarded
            or report.lottery_refunds
            or report.ladder_refunds
            or report.pickups_unclaimed
        ):
            report.events_dispatched = (
                self._attempt("outbox", db.run_sync, dispatch_outbox, batch) or 0
            )
        if due.deals:
            report.deals_ended = (
                self._attempt("deals", db.run_raw_sync, deal_tasks.end_past_deals, batch) or 0
            )
        if due.attributable:
            report.events_attributed = (
                self._attempt(
                    "attribution",
                    lambda: self._alone(
                        "attribution",
                        lambda: db.run_sync(
                            attribute_new_events, utc_now(), batch, self._attribution_window
                        ),
                    ),
                )
                or 0
            )
        # Orders just credited to shares may owe their sharers commissions (captures confirmed
        # later are found by the housekeeping's sweep).
        if report.events_attributed:
            report.commissions_frozen = (
                self._attempt(
                    "commissions", db.run_raw_sync, commissions.freeze_due, utc_now(), batch
                )
                or 0
            )
        # Webhooks after everything that writes events, so a tick's events go out in it.
        if due.fan_out or due.events or due.holds or due.teams or due.calls:
            report.events_fanned_out = (
                self._attempt(
                    "webhook fan-out",
                    lambda: self._alone(
                        "webhook fan-out",
                        lambda: db.run_sync(
                            webhook_tasks.fan_out_events,
                            utc_now(),
                            batch,
                            self.services.settings.env,
                        ),
                    ),
                )
                or 0
            )
        if due.webhooks or report.events_fanned_out:
            report.webhooks_sent = (
                self._attempt("webhooks", self._webhooks.send_due, db, utc_now()) or 0
            )
        self._feed(report)
        # Kept in memory: after today's check, this costs nothing until the next midnight.
        report.days_rolled_up = (
            self._attempt(
                "rollup",
                lambda: self._rollup.run_if_due(db, utc_now(), lambda: self._holds("rollup")),
            )
            or 0
        )
        if utc_now() - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            done = self._attempt(
                "housekeeping", self._alone, "housekeeping", self._housekeeping, HOUSEKEEPING_EVERY
            )
            if done is not None:
                # Whoever ran it, this worker asks again only after another period (a failure
                # backs off instead).
                self._last_housekeeping = utc_now()
        self._reconcile_admission()
        return report

    def _holds(self, job: str, lease: timedelta | None = None) -> bool:
        """Take or renew this worker's lease on a one-at-a-time job; False while another
        worker's runs (``kit.claims``)."""
        now, lease = utc_now(), lease or self.lease
        until = self._held.get(job)
        if until is not None and now < until - lease / 2:
            return True  # held for a while yet: no one else can take it before then
        held = self.services.db.run_raw_sync(claims.hold, job, self.holder, now, lease)
        if held:
            self._held[job] = now + lease
        else:
            self._held.pop(job, None)
        return held

    def _alone(self, job: str, fn: Callable[[], int], lease: timedelta | None = None) -> int:
        """Run ``fn`` if this worker holds the job's lease; 0 when another worker does."""
        return fn() if self._holds(job, lease) else 0

    def let_go(self) -> None:
        """Give up this worker's one-at-a-time jobs at once (a clean stop), so another worker
        takes them over now rather than after their leases."""
        now = utc_now()
        for job in sorted(self._held):
            self.services.db.run_raw_sync(claims.let_go, job, self.holder, now)
        self._held.clear()

    def _reconcile_admission(self) -> None:
        """Rebuild Redis's admission counters from the database now and then (with Redis), by
        one worker at a time."""
        link = self.services.redis
        every = self.services.settings.redis_reconcile_seconds
        if link is None or time.monotonic() - self._last_reconcile < every:
            return
        self._last_reconcile = time.monotonic()
        self._attempt(
            "admission",
            self._alone,
            "admission",
            lambda: admission.reconcile(link, self.services.db, utc_now()).deals,
        )

    def _feed(self, report: TickReport) -> None:
        """The feed's crediting, learning and forgetting, behind their own one-read probe."""
        db, settings, batch = self.services.db, self.services.settings, self.batch
        due = self._attempt(
            "feed probe",
            lambda: db.run_sync(feed_tasks.feed_work_due, utc_now(), settings, write=False),
        )
        if due is None:
            return

        def job(name: str, task: Callable[[Session, Settings, datetime, int], int]) -> int:
            # One worker at a time runs each (they read the outbox by one cursor, or delete).
            return (
                self._attempt(
                    name,
                    lambda: self._alone(
                        name, lambda: db.run_sync(task, settings, utc_now(), batch)
                    ),
                )
                or 0
            )

        if due.credit:
            report.feed_events_credited = job("feed credit", feed_tasks.credit_feed_rewards)
        if due.learn:
            report.feed_lessons = job("feed learning", feed_tasks.learn_from_feed)
        if due.forget:
            report.feed_slates_forgotten = job("feed forgetting", feed_tasks.forget_old_slates)

    def _attempt(self, task: str, fn: Callable[..., T], *args: object) -> T | None:
        """Run one task unless it is backing off; an exception is logged and counted, and backs
        the task off instead of ending the tick. None when it did not run or failed."""
        if not self.backoff.may_run(task):
            return None
        try:
            result = fn(*args)
        except Exception as exc:
            delay = self.backoff.failed(task)
            WORKER_TASK_FAILURES.labels(task=task).inc()
            log.exception(
                "worker task failed",
                extra={
                    "task": task,
                    "error": f"{type(exc).__name__}: {exc}",
                    "failures": self.backoff.failures(task),
                    "retry_in_seconds": delay,
                },
            )
            return None
        self.backoff.succeeded(task)
        return result

    def _probe(self, tx: RawTx) -> Due:
        """What is due, and how late the oldest of it is (the sweep-lag gauge)."""
        due = what_is_due(tx)
        for work, seconds in due.lag(tx, utc_now()).items():
            self._lag_gauges[work].set(seconds)
        return due

    def _call_providers(self, report: TickReport) -> None:
        db = self.services.db
        due = db.run_sync(
            payments.claim_due_actions, utc_now(), self.batch, PAYMENT_LEASE, self._limits
        )
        for action in due:
            provider = self.services.providers.get(action.provider)
            try:
                if provider is None:
                    raise ProviderError(f"provider {action.provider} is not configured")
                if action.action == "poll":
                    self._poll(provider, action, report)
                    continue
                if action.action == "capture":
                    provider.capture(action.provider_ref, action.amount, action.idempotency_key)
                elif action.action == "void":
                    provider.void(action.provider_ref, action.idempotency_key)
                else:
                    provider.refund(action.provider_ref, action.amount, action.idempotency_key)
            except Exception as exc:
                # Not only a provider's refusal: an adapter's bug or an unexpected answer on one
                # payment must not keep the rest of the batch leased and waiting. Every call is
                # idempotent by its key, so the retry is safe whatever the failure did.
                error = (
                    str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
                )
                report.provider_failures += 1
                PROVIDER_CALL_FAILURES.labels(provider=action.provider, action=action.action).inc()
                log.warning(
                    "provider call failed",
                    exc_info=not isinstance(exc, ProviderError),
                    extra={
                        "payment_id": action.payment_id,
                        "provider": action.provider,
                        "action": action.action,
                        "error": error,
                    },
                )
                refused = isinstance(exc, ProviderRefused)
                hold_end = None if refused else self._hold_end(provider, action)
                db.run_sync(self._call_failed, action, error, refused, hold_end)
                continue
            db.run_sync(payments.finish_action, action, utc_now())
            report.provider_calls += 1

    def _hold_end(
        self, provider: PaymentProvider | None, action: payments.DueAction
    ) -> datetime | None:
        """A failed capture's deadline is the hold's end at the provider: ask a provider whose
        holds run out for it at the failure that sets the deadline, the first (one that cannot
        say leaves the deadline to the setting)."""
        if provider is None or action.action != "capture" or action.dated:
            return None
        if provider.capabilities.longest_hold is None:
            return None
        try:
            event = provider.fetch_status(action.provider_ref)
        except Exception:  # the capture's own failure is what gets recorded
            return None
        return event.capture_before if event is not None else None

    def _call_failed(
        self,
        session: Session,
        action: payments.DueAction,
        error: str,
        refused: bool,
        hold_end: datetime | None = None,
    ) -> None:
        """Try the call again after its backoff, unless its attempts or time ran out (then
        payments/endings.py ends the payment), in one transaction."""
        now = utc_now()
        tx = raw_tx(session)
        endings.note_capture_before(tx, action.payment_id, hold_end)
        if not endings.give_up_if_spent(
            tx, action.payment_id, action.action, error, now, self._limits, refused=refused
        ):
            payments.retry_action_later(session, action, error, now)

    def _no_news(
        self, session: Session, action: payments.DueAction, detail: str = "no news yet"
    ) -> None:
        now = utc_now()
        tx = raw_tx(session)
        if not endings.give_up_if_spent(
            tx, action.payment_id, action.action, detail, now, self._limits
        ):
            payments.poll_again_later(session, action, now, detail)

    def _make_refunds(self, report: TickReport) -> None:
        """Refunds after success owed at their providers, each call idempotent by the refund's
        id; a failure is retried with backoff, like every other owed call, until the provider
        refuses it or its attempts or time run out: then it waits for an operator."""
        db = self.services.db
        due = db.run_raw_sync(
            refund_calls.claim_due_refunds, utc_now(), self.batch, PAYMENT_LEASE, self._limits
        )
        for refund in due:
            provider = self.services.providers.get(refund.provider)
            try:
                if provider is None:
                    raise ProviderError(f"provider {refund.provider} is not configured")
                provider.refund(refund.provider_ref, refund.amount, refund.idempotency_key)
            except Exception as exc:
                error = (
                    str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
                )
                report.provider_failures += 1
                PROVIDER_CALL_FAILURES.labels(provider=refund.provider, action="refund").inc()
                log.warning(
                    "provider call failed",
                    exc_info=not isinstance(exc, ProviderError),
                    extra={"refund_id": refund.id, "provider": refund.provider, "error": error},
                )
                refused = isinstance(exc, ProviderRefused)
                db.run_raw_sync(
                    partial(refund_calls.retry_refund_later, refused=refused),
                    refund,
                    error,
                    utc_now(),
                    self._limits,
                )
                continue
            db.run_raw_sync(
                partial(refund_calls.finish_refund, called=True), refund.id, None, utc_now()
            )
            report.refunds_made += 1

    def _poll(
        self, provider: PaymentProvider, action: payments.DueAction, report: TickReport
    ) -> None:
        """Ask the provider about a checkout whose notification has not come; its answer goes
        through the same inbox as a webhook, so a notification arriving too changes nothing."""
        db = self.services.db
        event = provider.fetch_status(action.provider_ref)
        report.checkouts_polled += 1
        if event is None:
            db.run_sync(self._no_news, action)
            return
        body = json.dumps({"polled": event.raw_type, "ref": event.provider_ref})
        db.run_raw_sync(payments.handle_provider_event, provider.name, event, body, utc_now())
        # News that did not end the checkout (its payer has not paid yet, or money in another
        # currency, which only an operator can settle) counts as none: it is polled again after
        # its backoff, until its polls run out, its error saying what the provider said. Once
        # the news ended it, nothing is owed and this changes nothing.
        told = event.raw_type
        if event.amount is not None:
            told = f"{told}, {event.amount} {event.currency or '?'}"
        db.run_sync(self._no_news, action, f"its news ({told}) did not end it")

    def _housekeeping(self) -> int:
        now = utc_now()
        grace = timedelta(minutes=self.services.settings.settlement_grace_minutes)
        settle_recent_days(self.services.db, now, grace)
        self._reconcile_due_days(now)
        # Shoppers asked to pay again who did not in time: back to the operators (hours late
        # at most by the housekeeping's period, against a window of days).
        self.services.db.run_raw_sync(endings.requeue_unpaid_seats, now, self.batch)
        # Lotteries whose deal ended with no team forming: their seeds may be checked now.
        self.services.db.run_raw_sync(lottery.reveal_seeds, now)
        # Bargains past their deadline, written down as bought or expired (reads derive both).
        self.services.db.run_raw_sync(bargain_tasks.close_past_deadline, now, self.batch)
        self.sweep_commissions(now)
        self.services.db.run_sync(delete_expired_keys)
        window = timedelta(seconds=self.services.settings.rate_limit_window_seconds)
        self.services.db.run_sync(lambda s: forget_old_attempts(s, older_than=now - window))
        return 0  # upkeep, not work a tick reports

    def sweep_commissions(self, now: datetime) -> tuple[int, int]:
        """Freeze the referral commissions owed and release the commissions (a sharer's, a
        pickup leader's) whose orders' refund windows closed, batch after batch; returns how
        many of each."""
        db, batch = self.services.db, self.batch
        window = timedelta(days=self.services.settings.refund_window_days)
        frozen = released = 0
        while (done := db.run_raw_sync(commissions.freeze_due, now, batch)) > 0:
            frozen += done
            if done < batch:
                break
        while (done := db.run_raw_sync(commissions.release_due, now, window, batch)) > 0:
            released += done
            if done < batch:
                break
        return frozen, released

    def _reconcile_due_days(self, now: datetime) -> None:
        """Each provider's last finished statement day, once: its findings are kept for the
        operators. A provider that does not answer is asked again at the next housekeeping."""
        for provider in self.services.providers.values():
            day = findings.due_day(provider, now)
            if self.services.db.run_sync(
                lambda s, p=provider.name, d=day: findings.reconciled(s, p, d), write=False
            ):
                continue
            try:
                records = provider.records_for_day(day)
                listed = getattr(provider, "open_holds", None)
                holds = [findings.HoldRecord(*h) for h in listed()] if callable(listed) else None
            except Exception as exc:  # a provider's outage must not stop housekeeping
                log.warning(
                    "reconciliation postponed", extra={"provider": provider.name, "error": str(exc)}
                )
                continue
            held = None
            if holds is not None:
                ours = self.services.db.run_sync(
                    lambda s, p=provider.name: findings.held_by_us(s, p), write=False
                )
                held = (holds, ours)
            self.services.db.run_sync(
                lambda s, p=provider, d=day, r=records, h=held: findings.reconcile_and_keep(
                    s, p, d, r, h, now
                )
            )

    def run_until_idle(self, max_ticks: int = 1000) -> TickReport:
        """Tick until nothing is due (tests, the CLI's --once); returns the summed report."""
        total = TickReport()
        for _ in range(max_ticks):
            report = self.tick()
            for f in fields(total):
                setattr(total, f.name, getattr(total, f.name) + getattr(report, f.name))
            if report.total() == 0:
                break
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; busy ticks follow each other, idle ones sleep."""
        idle = self.services.settings.worker_idle_seconds
        # A tick runs in a thread, never on the event loop: on SQLite it may wait the long busy
        # timeout while another process holds the write lock, and the server must keep
        # answering meanwhile (requests wait for the lock in short steps of their own).
        while not stop.is_set():
            try:
                report = await anyio.to_thread.run_sync(self.tick)
            except Exception:
                log.exception("worker tick failed")
                report = TickReport()
            if report.total():
                log.info("worker tick", extra={"report": report.__dict__})
            if report.busy(self.batch):
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle)
        try:
            await anyio.to_thread.run_sync(self.let_go)
        except Exception:
            log.exception("worker could not give up its leases; they run out by themselves")
