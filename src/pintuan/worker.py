"""The sweep loop: everything that happens because time passed.

The worker only schedules: one read asks which tasks have work, and each due task (a feature's
own, in its ``tasks.py``: ``teams.tasks``, ``deals.tasks``, ``shares.tasks``, …) finds its due
rows through an index on their due time, handles at most one batch per transaction, and reports
how many it handled; an idle tick is that one read finding nothing. The loop runs again at once
while any task filled its batch, else it sleeps.

Provider calls (capture, void, refund) happen outside any transaction: a claim transaction
leases the rows, the calls are made, and a second transaction records each result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, fields
from datetime import timedelta

import anyio.to_thread

from pintuan.accounts.service import forget_old_attempts
from pintuan.deals import tasks as deal_tasks
from pintuan.domain.payments import PaymentProvider, ProviderError
from pintuan.growth.tasks import DailyRollup
from pintuan.idempotency.service import delete_expired_keys
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now
from pintuan.ledger.settlement import settle_recent_days
from pintuan.notifications.service import dispatch_outbox
from pintuan.payments import service as payments
from pintuan.services import Services
from pintuan.shares.tasks import CURSOR, attribute_new_events
from pintuan.teams import tasks as team_tasks

log = logging.getLogger("pintuan.worker")

PAYMENT_LEASE = timedelta(minutes=2)
HOUSEKEEPING_EVERY = timedelta(minutes=5)


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

    def busy(self, batch: int) -> bool:
        return any(getattr(self, f.name) >= batch for f in fields(self))

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


# The status words stay written in the SQL: each probe must repeat its partial index's predicate
# word for word for the planner to use that index (SQLite never matches a bound IN list, nor
# PostgreSQL's generic plan of a prepared statement a bound value).
DUE = Sql(
    """
    SELECT
      EXISTS (SELECT 1 FROM seats WHERE status = 'held' AND hold_expires_at <= :now) AS holds,
      EXISTS (SELECT 1 FROM teams WHERE status = 'forming' AND expires_at <= :now) AS teams,
      EXISTS (SELECT 1 FROM payments
              WHERE pending_action IS NOT NULL AND next_attempt_at <= :now) AS calls,
      EXISTS (SELECT 1 FROM outbox_events WHERE dispatched_at IS NULL) AS events,
      EXISTS (SELECT 1 FROM deals WHERE status IN ('live', 'paused') AND ends_at <= :now)
        AS deals,
      EXISTS (SELECT 1 FROM outbox_events WHERE id > COALESCE(
              (SELECT last_event_id FROM attribution_cursors WHERE name = :cursor), 0))
        AS attributable
""",
    cursor=CURSOR,
)


@dataclass(frozen=True, slots=True)
class Due:
    """Which tasks have work now (SQLite answers 0/1, PostgreSQL booleans)."""

    holds: bool | int
    teams: bool | int
    calls: bool | int
    events: bool | int
    deals: bool | int
    attributable: bool | int


def what_is_due(tx: RawTx) -> Due:
    """One read of five partial indexes and the outbox's key: which tasks have work now."""
    due = tx.one_as(Due, DUE, {"now": tx.instant(utc_now())})
    assert due is not None  # a SELECT without FROM always gives its one row
    return due


class Worker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.batch = services.settings.worker_batch_size
        self._last_housekeeping = utc_now() - HOUSEKEEPING_EVERY
        self._attribution_window = timedelta(days=services.settings.attribution_window_days)
        self._rollup = DailyRollup()

    def tick(self) -> TickReport:
        """One pass over every task; each batch in its own short transaction."""
        db, batch = self.services.db, self.batch
        report = TickReport()
        due = db.run_raw_sync(what_is_due, write=False)
        if due.holds:
            report.holds_released = db.run_raw_sync(team_tasks.release_expired_holds, batch)
        if due.teams:
            report.teams_failed = db.run_raw_sync(team_tasks.close_expired_teams, batch)
        if due.calls:
            self._call_providers(report)
        # Ending seats and teams writes events, so look again rather than trust the probe.
        if due.events or due.holds or due.teams or due.calls:
            report.events_dispatched = db.run_sync(dispatch_outbox, batch)
        if due.deals:
            report.deals_ended = db.run_raw_sync(deal_tasks.end_past_deals, batch)
        if due.attributable:
            report.events_attributed = db.run_sync(
                attribute_new_events, utc_now(), batch, self._attribution_window
            )
        # Kept in memory: after today's check, this costs nothing until the next midnight.
        report.days_rolled_up = self._rollup.run_if_due(db, utc_now())
        if utc_now() - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            self._housekeeping()
        return report

    def _call_providers(self, report: TickReport) -> None:
        db = self.services.db
        due = db.run_sync(payments.claim_due_actions, utc_now(), self.batch, PAYMENT_LEASE)
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
            except ProviderError as exc:
                report.provider_failures += 1
                log.warning(
                    "provider call failed",
                    extra={
                        "payment_id": action.payment_id,
                        "action": action.action,
                        "error": str(exc),
                    },
                )
                db.run_sync(payments.retry_action_later, action, str(exc), utc_now())
                continue
            db.run_sync(payments.finish_action, action, utc_now())
            report.provider_calls += 1

    def _poll(
        self, provider: PaymentProvider, action: payments.DueAction, report: TickReport
    ) -> None:
        """Ask the provider about a checkout whose notification has not come; its answer goes
        through the same inbox as a webhook, so a notification arriving too changes nothing."""
        db = self.services.db
        event = provider.fetch_status(action.provider_ref)
        report.checkouts_polled += 1
        if event is None:
            db.run_sync(payments.poll_again_later, action, utc_now())
            return
        body = json.dumps({"polled": event.raw_type, "ref": event.provider_ref})
        db.run_raw_sync(payments.handle_provider_event, provider.name, event, body, utc_now())

    def _housekeeping(self) -> None:
        now = utc_now()
        self.services.db.run_sync(settle_recent_days, now)
        self.services.db.run_sync(delete_expired_keys)
        window = timedelta(seconds=self.services.settings.rate_limit_window_seconds)
        self.services.db.run_sync(lambda s: forget_old_attempts(s, older_than=now - window))
        self._last_housekeeping = now

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
        offload = not self.services.db.is_sqlite or any(
            p.blocking_io for p in self.services.providers.values()
        )
        while not stop.is_set():
            try:
                report = await anyio.to_thread.run_sync(self.tick) if offload else self.tick()
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
