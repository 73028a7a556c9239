"""Worker job of shares: read new outbox events and credit the orders they describe.

Why the outbox and not the seats table: each event says what happened (``seat.held``,
``seat.paid``, ``team.succeeded``) and when, in commit order of the change itself, so one
cursor over the outbox's primary key finds all new work; the idle check is a single probe of
that key. Nothing is added to the join's transaction.

Reading by id needs care on PostgreSQL, where ids are drawn before commit: a transaction that
drew id 100 may commit after the one that drew 101. The reader therefore stops at a gap in the
ids until the event after the gap is ``SETTLE`` old; by then the gap is a rolled-back
transaction, not one still running. SQLite has one writer, so its ids have no such gaps.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pintuan.domain.teams import SeatStatus
from pintuan.events.models import OutboxEvent
from pintuan.kit.orm import table_of
from pintuan.kit.sql import upsert_insert
from pintuan.shares import attribution
from pintuan.shares.models import AttributionCursor
from pintuan.teams.models import Seat

CURSOR = "attribution"
_SEAT_EVENTS = ("seat.held", "seat.paid")
SETTLE = timedelta(minutes=2)

outbox = table_of(OutboxEvent)


def _cursor(session: Session) -> int | None:
    """The last event done, under a row lock so that workers attribute one at a time; None
    while the outbox has never had an event."""
    position = session.scalar(
        select(AttributionCursor.last_event_id)
        .where(AttributionCursor.name == CURSOR)
        .with_for_update()
    )
    if position is not None:
        return position
    first = session.scalar(select(func.min(outbox.c.id)))
    if first is None:
        return None
    session.execute(
        upsert_insert(session, AttributionCursor)
        .values(name=CURSOR, last_event_id=first - 1)
        .on_conflict_do_nothing()
    )
    return session.scalar(
        select(AttributionCursor.last_event_id)
        .where(AttributionCursor.name == CURSOR)
        .with_for_update()
    )


def attribute_new_events(session: Session, now: datetime, limit: int, window: timedelta) -> int:
    """Credit the orders, payments and team successes of up to ``limit`` new outbox events to
    the shares that brought them; returns how many events were read."""
    position = _cursor(session)
    if position is None:
        return 0
    rows = session.execute(
        select(outbox.c.id, outbox.c.type, outbox.c.subject_id, outbox.c.created_at)
        .where(outbox.c.id > position)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    events: list[tuple[str, str, datetime]] = []
    done = position
    for event_id, type_, subject_id, created_at in rows:
        if event_id != done + 1 and created_at > now - SETTLE:
            break  # an earlier id may still commit; read it first
        events.append((type_, subject_id, created_at))
        done = event_id
    if not events:
        return 0
    _attribute(session, events, window)
    session.execute(
        update(AttributionCursor).where(AttributionCursor.name == CURSOR).values(last_event_id=done)
    )
    return len(events)


def _attribute(
    session: Session, events: list[tuple[str, str, datetime]], window: timedelta
) -> None:
    """Load the seats of a batch of events at once; only shoppers with a visitor id can have
    been brought by a share, so everyone else is skipped without another query."""
    seat_ids = [subject for type_, subject, _ in events if type_ in _SEAT_EVENTS]
    team_ids = [subject for type_, subject, _ in events if type_ == "team.succeeded"]
    seats = list(session.scalars(select(Seat).where(Seat.id.in_(seat_ids)))) if seat_ids else []
    members: dict[str, list[Seat]] = defaultdict(list)
    if team_ids:
        for member in session.scalars(
            select(Seat).where(
                Seat.team_id.in_(team_ids), Seat.status == SeatStatus.CONFIRMED.value
            )
        ):
            members[member.team_id].append(member)
    by_id = {seat.id: seat for seat in seats}
    everyone = {s.user_id for s in seats} | {s.user_id for m in members.values() for s in m}
    reachable = attribution.shoppers_with_visits(session, everyone)
    if not reachable:
        return
    for type_, subject, at in events:
        if type_ in _SEAT_EVENTS:
            seat = by_id.get(subject)
            if seat is not None and seat.user_id in reachable:
                attribution.attribute_seat_event(session, seat, type_ == "seat.paid", at, window)
        elif type_ == "team.succeeded":
            brought = [s for s in members.get(subject, []) if s.user_id in reachable]
            attribution.attribute_team_success(session, brought, at, window)
