"""Worker jobs of webhooks: fan outbox events out into deliveries, and send the due deliveries.

Fan-out reads the outbox behind its own cursor, after the commit of the change (a join never
waits for it and writes nothing for it): each event is heard by the enabled endpoints of approved
apps installed (and not revoked) on the event's merchant that subscribed to its type. The body
is built then and kept, so every attempt and every replay sends the same bytes.

Sending is at least once, in order per endpoint: an endpoint's next delivery goes only once each
earlier one is delivered or given up, so a receiver that was down gets its backlog in the order
the events happened. A delivery is claimed with a lease (a conditional write: two workers never
send the same attempt at once; a crashed worker's lease runs out and another takes it over), sent
outside any transaction, and its result recorded in a second one. A failure is retried with
exponential backoff and jitter until the retry window (3 days by default) has passed since the
delivery was queued; then it is given up and its endpoint disabled, and the app's owner is told.

Reading the outbox by id follows the rule of ``shares.tasks``: on PostgreSQL ids are drawn before
commit, so the reader stops at a gap until the event after it is ``SETTLE`` old.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from pintuan.apps.models import App, AppInstallation
from pintuan.config import Environment, Settings
from pintuan.deals.models import Deal
from pintuan.domain.apps import APP_APPROVED, AppStatus
from pintuan.domain.webhooks import DeliveryStatus, retry_delay, webhook_types_of
from pintuan.errors import AppError
from pintuan.events.models import OutboxEvent
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import isoformat_z
from pintuan.notifications.models import Notification
from pintuan.teams.models import Seat, Team
from pintuan.webhooks.addresses import AddressRefused, resolve_target
from pintuan.webhooks.models import WebhookAttempt, WebhookCursor, WebhookDelivery, WebhookEndpoint
from pintuan.webhooks.service import ensure_manifest_endpoint, signing_secrets

log = logging.getLogger("pintuan.webhooks")

CURSOR = "webhooks"
SETTLE = timedelta(minutes=2)
LEASE = timedelta(minutes=2)
# Deliveries sent per claim and requests in flight at once: a claim's worst case (every request
# running into its timeouts) stays well inside its lease.
SEND_BATCH = 50
SENDERS = 8
# A response body is read up to this much (and its start kept in the log), never more.
RESPONSE_CAP = 64 * 1024
LOGGED_RESPONSE = 200
DISABLED_NOTICE = "webhook_endpoint_disabled"

outbox = table_of(OutboxEvent)
deliveries = table_of(WebhookDelivery)
endpoints = table_of(WebhookEndpoint)


# ---------------------------------------------------------------------------- fan-out


def _cursor(session: Session) -> int | None:
    """The last outbox event fanned out, under a row lock so that workers fan out one at a
    time; None while the outbox has never had an event."""
    position = session.scalar(
        select(WebhookCursor.last_event_id).where(WebhookCursor.name == CURSOR).with_for_update()
    )
    if position is not None:
        return position
    first = session.scalar(select(func.min(outbox.c.id)))
    if first is None:
        return None
    session.execute(
        upsert_insert(session, WebhookCursor)
        .values(name=CURSOR, last_event_id=first - 1)
        .on_conflict_do_nothing()
    )
    return session.scalar(
        select(WebhookCursor.last_event_id).where(WebhookCursor.name == CURSOR).with_for_update()
    )


@dataclass(frozen=True, slots=True)
class _Event:
    id: int
    type: str
    subject_id: str
    payload: dict[str, Any]
    created_at: datetime


def fan_out_events(
    session: Session, now: datetime, limit: int, env: Environment = Environment.DEV
) -> int:
    """Turn up to ``limit`` new outbox events into deliveries for the endpoints that hear them;
    returns how many events were read. An app's approval sets up the endpoint its manifest
    declares (its address checked by ``env``'s rules), heard from the events after it."""
    position = _cursor(session)
    if position is None:
        return 0
    rows = session.execute(
        select(
            outbox.c.id, outbox.c.type, outbox.c.subject_id, outbox.c.payload, outbox.c.created_at
        )
        .where(outbox.c.id > position)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    events: list[_Event] = []
    done = position
    for row in rows:
        if row.id != done + 1 and row.created_at > now - SETTLE:
            break  # an earlier id may still commit; read it first
        events.append(_Event(row.id, row.type, row.subject_id, row.payload, row.created_at))
        done = row.id
        if row.type == APP_APPROVED:
            break  # its endpoint hears what comes after the approval: queue up to here first
    if not events:
        return 0
    _queue_deliveries(session, events, now)
    if events[-1].type == APP_APPROVED:
        _set_up_manifest_endpoint(session, events[-1].subject_id, env)
    session.execute(
        update(WebhookCursor).where(WebhookCursor.name == CURSOR).values(last_event_id=done)
    )
    return len(events)


def _set_up_manifest_endpoint(session: Session, app_id: str, env: Environment) -> None:
    app = session.get(App, app_id)
    if app is None or app.status != AppStatus.APPROVED.value:
        return  # suspended again before the worker came to it
    try:
        with session.begin_nested():
            ensure_manifest_endpoint(session, app, env=env)
    except AppError as refused:
        # Its address passed the registration's rules but not this environment's (a private
        # address in production): the app registers an endpoint through the API instead.
        log.warning("manifest webhook endpoint of %s not set up: %s", app_id, refused.detail)


def _queue_deliveries(session: Session, events: list[_Event], now: datetime) -> None:
    heard = [e for e in events if webhook_types_of(e.type, created_paid=True)]
    if not heard:
        return
    listeners = _listeners(session)
    if not listeners:
        return  # nobody subscribes to anything: nothing to look up
    facts = _Facts.load(session, heard)
    rows: list[dict[str, Any]] = []
    for event in heard:
        merchant_id, data = facts.describe(event)
        if merchant_id is None:
            continue
        created_paid = event.type == "seat.paid" and facts.created_paid(event.subject_id)
        for type_ in webhook_types_of(event.type, created_paid=created_paid):
            body = json.dumps(
                {"type": type_, "timestamp": isoformat_z(event.created_at), "data": data},
                separators=(",", ":"),
                sort_keys=True,
            )
            for endpoint_id in listeners.get((merchant_id, type_), []):
                rows.append(
                    {
                        "id": new_id("whd"),
                        "endpoint_id": endpoint_id,
                        "message_id": new_id("msg"),
                        "event_type": type_,
                        "outbox_event_id": event.id,
                        "body": body,
                        "replay_of": None,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "lease_until": None,
                        "last_status_code": None,
                        "last_error": None,
                        "created_at": now,
                        "updated_at": now,
                        "delivered_at": None,
                    }
                )
    if not rows:
        return
    # Behind an endpoint's waiting delivery, a new one waits as long: in order, it cannot go
    # first, and the worker's probe need not see it due before then.
    waiting = dict(
        session.execute(
            select(WebhookEndpoint.id, WebhookDelivery.next_attempt_at)
            .join(WebhookDelivery, WebhookDelivery.seq == _head_seq())
            .where(WebhookEndpoint.id.in_({row["endpoint_id"] for row in rows}))
        ).all()
    )
    for row in rows:
        behind = waiting.get(row["endpoint_id"])
        if behind is not None and behind > now:
            row["next_attempt_at"] = behind
    # Inserted in event order, so ``seq`` follows the events (both drivers insert a batch's
    # rows in the order given).
    session.execute(insert(WebhookDelivery), rows)


def _listeners(session: Session) -> dict[tuple[str, str], list[str]]:
    """(merchant, event type) → the endpoints that hear it: enabled, of an approved app that is
    installed on that merchant and not revoked."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for endpoint_id, events, merchant_id in session.execute(
        select(endpoints.c.id, endpoints.c.events, AppInstallation.merchant_id)
        .join(App, App.id == endpoints.c.app_id)
        .join(AppInstallation, AppInstallation.app_id == endpoints.c.app_id)
        .where(
            endpoints.c.enabled.is_(True),
            App.status == AppStatus.APPROVED.value,
            AppInstallation.revoked_at.is_(None),
        )
        .order_by(endpoints.c.id)
    ):
        for type_ in events:
            found[(merchant_id, type_)].append(endpoint_id)
    return found


@dataclass
class _Facts:
    """What a batch of events is about, loaded at once: seats, teams and their deals."""

    seats: dict[str, Any]
    teams: dict[str, Any]
    deals: dict[str, Any]

    @classmethod
    def load(cls, session: Session, events: Iterable[_Event]) -> _Facts:
        seat_ids = {e.subject_id for e in events if e.type.startswith("seat.")}
        team_ids = {e.subject_id for e in events if e.type.startswith("team.")}
        seats = {
            row.id: row
            for row in session.execute(
                select(
                    Seat.id,
                    Seat.team_id,
                    Seat.deal_id,
                    Seat.price_amount,
                    Seat.currency,
                    Seat.is_leader,
                    Seat.created_at,
                    Seat.paid_at,
                ).where(Seat.id.in_(seat_ids))
            )
        }
        team_ids |= {s.team_id for s in seats.values()}
        teams = {
            row.id: row
            for row in session.execute(
                select(Team.id, Team.deal_id, Team.team_size, Team.status).where(
                    Team.id.in_(team_ids)
                )
            )
        }
        deal_ids = {t.deal_id for t in teams.values()} | {
            e.payload.get("deal_id") or e.subject_id
            for e in events
            if e.type.startswith(("offer.", "voucher."))
        }
        deals = {
            row.id: row
            for row in session.execute(
                select(Deal.id, Deal.merchant_id, Deal.title).where(Deal.id.in_(deal_ids))
            )
        }
        return cls(seats, teams, deals)

    def created_paid(self, seat_id: str) -> bool:
        """A seat that cost nothing is paid as it is created, at the same instant."""
        seat = self.seats.get(seat_id)
        return seat is not None and seat.paid_at is not None and seat.paid_at == seat.created_at

    def describe(self, event: _Event) -> tuple[str | None, dict[str, Any]]:
        """The merchant whose event it is (None: unknown, nobody hears it) and its ``data``.
        Shoppers are never named: apps see seats, teams and deals, not people."""
        if event.type.startswith("seat."):
            seat = self.seats.get(event.subject_id)
            if seat is None:
                return None, {}
            deal = self.deals.get(seat.deal_id)
            return (deal.merchant_id if deal else None), {
                "seat_id": seat.id,
                "order_id": seat.id,
                "team_id": seat.team_id,
                "deal_id": seat.deal_id,
                "merchant_id": deal.merchant_id if deal else None,
                "is_leader": bool(seat.is_leader),
                "price": {"amount": seat.price_amount, "currency": seat.currency},
            }
        if event.type.startswith("team."):
            team = self.teams.get(event.subject_id)
            if team is None:
                return None, {}
            deal = self.deals.get(team.deal_id)
            paid = event.payload.get("member_ids") or []
            refunded = event.payload.get("refunded_ids") or []
            data: dict[str, Any] = {
                "team_id": team.id,
                "deal_id": team.deal_id,
                "merchant_id": deal.merchant_id if deal else None,
                "team_size": team.team_size,
                "members": len(paid),
            }
            if event.type == "team.failed":
                data["refunded_seats"] = len(refunded)
            return (deal.merchant_id if deal else None), data
        # Offers and vouchers: their payload is already the public record; a merchant named in
        # it, else the merchant of the deal it names, says whose it is.
        data = {k: v for k, v in event.payload.items() if not _names_people(k)}
        data.setdefault("id", event.subject_id)
        merchant_id = event.payload.get("merchant_id")
        if merchant_id is None:
            deal = self.deals.get(event.payload.get("deal_id") or event.subject_id)
            merchant_id = deal.merchant_id if deal else None
            data["merchant_id"] = merchant_id
        return merchant_id, data


def _names_people(key: str) -> bool:
    return key in ("user_id", "member_ids", "refunded_ids", "email") or key.endswith("user_id")


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: str
    endpoint_id: str
    message_id: str
    body: str
    url: str
    secrets: tuple[str, ...]
    attempts: int
    created_at: datetime
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _head_seq() -> Any:
    """The oldest pending delivery of the endpoint in the enclosing query: the one that goes
    next, in order."""
    head = deliveries.alias("head")
    # The status word is written out: SQLite matches a partial index only on the literal.
    return (
        select(func.min(head.c.seq))
        .where(head.c.endpoint_id == WebhookEndpoint.id, text("head.status = 'pending'"))
        .correlate(WebhookEndpoint)
        .scalar_subquery()
    )


def claim_due_deliveries(
    session: Session, now: datetime, limit: int, lease: timedelta = LEASE
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries, each the oldest waiting one of its endpoint, for
    one worker to send. The lease is a conditional write: a delivery another worker holds is
    never claimed twice."""
    # Driven by the endpoints (few) rather than the deliveries (a down receiver's backlog may
    # be long): each enabled endpoint's head, read from the pending-order index.
    query = (
        select(WebhookDelivery, WebhookEndpoint)
        .select_from(WebhookEndpoint)
        .join(App, App.id == WebhookEndpoint.app_id)
        .join(WebhookDelivery, WebhookDelivery.seq == _head_seq())
        .where(
            WebhookEndpoint.enabled.is_(True),
            App.status == AppStatus.APPROVED.value,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
    claimed: list[ClaimedDelivery] = []
    until = now + lease
    for delivery, endpoint in session.execute(query).all():
        taken = session.execute(
            update(deliveries)
            .where(
                deliveries.c.id == delivery.id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
                or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
            )
            .values(lease_until=until)
            .returning(deliveries.c.id)
        ).first()
        if taken is None:
            continue
        claimed.append(
            ClaimedDelivery(
                id=delivery.id,
                endpoint_id=endpoint.id,
                message_id=delivery.message_id,
                body=delivery.body,
                url=endpoint.url,
                secrets=tuple(signing_secrets(endpoint, now)),
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                lease_until=until,
            )
        )
    return claimed


def signature_headers(delivery: ClaimedDelivery, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: the message id, the time of sending, and a ``v1``
    signature per live secret, space-separated."""
    signatures = " ".join(
        Webhook(secret).sign(delivery.message_id, at, delivery.body) for secret in delivery.secrets
    )
    return {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def send_delivery(
    client: httpx.Client, delivery: ClaimedDelivery, *, allow_private: bool, deadline: float
) -> SendResult:
    """One signed POST of the delivery's body, outside any transaction. Never raises: a refused
    address, a timeout or a connection error is a failed attempt with its reason."""
    # The wire timestamp is real time whatever the application clock says: receivers check it
    # against their own clocks (Standard Webhooks allows five minutes either way).
    started = datetime.now(UTC)
    began = time.perf_counter()

    def result(status: int | None, error: str | None) -> SendResult:
        elapsed = round((time.perf_counter() - began) * 1000)
        return SendResult(started, elapsed, status, error[:300] if error else None)

    try:
        target = resolve_target(delivery.url, allow_private=allow_private)
    except AddressRefused as exc:
        return result(None, f"address refused: {exc}")
    headers = {
        **signature_headers(delivery, started),
        "content-type": "application/json",
        "user-agent": "Pintuan-Webhooks/1",
        "host": target.host_header,
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        with client.stream(
            "POST", target.url, content=delivery.body, headers=headers, extensions=extensions
        ) as response:
            kept, read = bytearray(), 0
            for chunk in response.iter_raw():
                if len(kept) < LOGGED_RESPONSE:
                    kept.extend(chunk[: LOGGED_RESPONSE - len(kept)])
                read += len(chunk)
                if read > RESPONSE_CAP or time.perf_counter() - began > deadline:
                    break  # enough: the status is what counts
            status = response.status_code
    except httpx.TimeoutException as exc:
        return result(None, f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return result(None, f"{type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return result(status, None)
    excerpt = bytes(kept).decode("utf-8", "replace").strip()
    return result(status, f"HTTP {status}" + (f": {excerpt}" if excerpt else ""))


def record_result(
    session: Session,
    delivery: ClaimedDelivery,
    outcome: SendResult,
    now: datetime,
    retry_window: timedelta,
) -> bool:
    """Log the attempt and move the delivery on: delivered, retried later, or given up (then
    its endpoint is disabled and the app's owner told). False when the lease had run out and
    another worker took the delivery over: the attempt is logged, the state left to that one."""
    number = delivery.attempts + 1
    session.execute(
        insert(WebhookAttempt).values(
            id=new_id("wha"),
            delivery_id=delivery.id,
            number=number,
            started_at=outcome.started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
        )
    )
    values: dict[str, Any] = {
        "attempts": number,
        "lease_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": now,
    }
    given_up = False
    if outcome.delivered:
        values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now, next_attempt_at=None)
    elif now - delivery.created_at >= retry_window:
        values.update(status=DeliveryStatus.FAILED.value, next_attempt_at=None)
        given_up = True
    else:
        values.update(next_attempt_at=now + retry_delay(number))
    moved = session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery.id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.lease_until == delivery.lease_until,
        )
        .values(**values)
        .returning(deliveries.c.id)
    ).first()
    if moved is None:
        return False
    if not outcome.delivered and not given_up:
        # The endpoint's later deliveries wait behind this one (in order), so not before it.
        session.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == delivery.endpoint_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.id != delivery.id,
                deliveries.c.next_attempt_at < values["next_attempt_at"],
            )
            .values(next_attempt_at=values["next_attempt_at"])
        )
    if given_up:
        disable_failing_endpoint(session, delivery.endpoint_id, now)
    return True


def disable_failing_endpoint(session: Session, endpoint_id: str, now: datetime) -> bool:
    """Turn off an endpoint whose delivery failed for the whole retry window (in order
    delivery: nothing reached it all that time) and tell its app's owner, once."""
    turned_off = session.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, endpoints.c.enabled.is_(True))
        .values(enabled=False, disabled_reason="failing", updated_at=now)
        .returning(endpoints.c.id)
    ).first()
    if turned_off is None:
        return False
    _park_deliveries(session, endpoint_id)
    found = session.execute(
        select(App.id, App.name, App.owner_user_id, endpoints.c.url)
        .join(endpoints, endpoints.c.app_id == App.id)
        .where(endpoints.c.id == endpoint_id)
    ).one()
    session.execute(
        insert(Notification).values(
            id=new_id("ntf"),
            user_id=found.owner_user_id,
            kind=DISABLED_NOTICE,
            data={
                "subject_id": endpoint_id,
                "app_id": found.id,
                "app_name": found.name,
                "url": found.url,
            },
            created_at=now,
        )
    )
    log.warning("webhook endpoint disabled after failing", extra={"endpoint_id": endpoint_id})
    return True


def _park_deliveries(session: Session, endpoint_id: str) -> None:
    """A disabled endpoint's waiting deliveries are not due until it is enabled again."""
    session.execute(
        update(deliveries)
        .where(
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        .values(next_attempt_at=None)
    )


def webhook_client(settings: Settings) -> httpx.Client:
    """The outbound client: short timeouts, no redirects followed, no proxies from the
    environment (a proxy would hide the address the guard checked)."""
    return httpx.Client(
        timeout=httpx.Timeout(
            settings.webhook_timeout_seconds, connect=settings.webhook_connect_timeout_seconds
        ),
        follow_redirects=False,
        trust_env=False,
    )


class WebhookSender:
    """The worker's outbound side, kept across ticks: one HTTP client (its TLS set-up costs
    tens of milliseconds) and a few threads to send with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def send_due(self, db: Database, now: datetime) -> int:
        """Claim the due deliveries, send them (several at once, none inside a transaction)
        and record the results in one transaction; returns how many were sent. A worker that
        dies before recording leaves the leases to run out: those are sent again (at least
        once)."""
        due = db.run_sync(claim_due_deliveries, now, SEND_BATCH)
        if not due:
            return 0
        if self._client is None or self._pool is None:
            self._client = webhook_client(self.settings)
            self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhooks")
        http, settings = self._client, self.settings
        allow_private = settings.env is not Environment.PROD
        deadline = settings.webhook_connect_timeout_seconds + settings.webhook_timeout_seconds
        window = timedelta(hours=settings.webhook_retry_hours)
        outcomes = list(
            self._pool.map(
                lambda d: send_delivery(http, d, allow_private=allow_private, deadline=deadline),
                due,
            )
        )

        def record(session: Session) -> None:
            for delivery, outcome in zip(due, outcomes, strict=True):
                record_result(session, delivery, outcome, _now_after(now, outcome), window)

        db.run_sync(record)
        return len(due)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        self._client = self._pool = None


def _now_after(claimed_at: datetime, outcome: SendResult) -> datetime:
    """The application's time when an attempt ended: its clock at the claim, plus the time the
    request took (the application clock may run ahead of real time in tests and demos)."""
    return claimed_at + timedelta(milliseconds=outcome.duration_ms)
