"""Worker job of growth: roll up each past UTC day once.

The worker asks every tick, but the answer is kept in memory: after a day is done, ticks until
the next midnight cost nothing. A day waits ``GRACE`` after its midnight, and until attribution
has read every outbox event of the day, so late credits are not missed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.domain.traffic import day_start
from pintuan.events.models import OutboxEvent
from pintuan.growth import service
from pintuan.kit.db import Database
from pintuan.kit.orm import table_of
from pintuan.shares.models import AttributionCursor
from pintuan.shares.tasks import CURSOR

GRACE = timedelta(minutes=15)
MAX_DAYS_PER_TICK = 31

outbox = table_of(OutboxEvent)


def last_closed_day(now: datetime) -> date:
    """The latest day that may be rolled up at ``now``."""
    return (now - GRACE).date() - timedelta(days=1)


def days_to_roll(session: Session, through: date) -> list[date] | None:
    """Days not rolled up yet, oldest first, up to ``through``; None while attribution still
    has events of those days to read."""
    position = session.scalar(
        select(AttributionCursor.last_event_id).where(AttributionCursor.name == CURSOR)
    )
    unread = select(func.min(outbox.c.created_at)).where(outbox.c.id > (position or 0))
    oldest_unread = session.scalar(unread)
    if oldest_unread is not None and oldest_unread < day_start(through + timedelta(days=1)):
        return None
    last = service.last_rolled_day(session)
    first = last + timedelta(days=1) if last is not None else service.first_activity_day(session)
    if first is None:
        return []
    count = (through - first).days + 1
    return [first + timedelta(days=n) for n in range(min(count, MAX_DAYS_PER_TICK))]


def write_claimed_day(
    session: Session, day: date, figures: service.DayFigures, now: datetime
) -> bool:
    """Write ``day``'s roll-up unless another worker has claimed it."""
    if not service.claim_day(session, day, now):
        return False
    service.write_day(session, day, figures, now)
    return True


def roll_up_day(db: Database, day: date, now: datetime) -> bool:
    """Roll up ``day``: its figures read without SQLite's write lock (counting a day passes
    over every seat and team, and joins would wait meanwhile), then written in a short write
    transaction unless another worker has claimed the day since."""
    figures = db.run_sync(service.day_figures, day, write=False)
    return db.run_sync(write_claimed_day, day, figures, now)


class DailyRollup:
    """Rolls up past days from the worker's tick, at most once per day per process."""

    def __init__(self) -> None:
        self._done_through: date | None = None

    def run_if_due(
        self, db: Database, now: datetime, may_run: Callable[[], bool] | None = None
    ) -> int:
        """Roll up the days that have closed since the last run; returns how many. With many
        workers, ``may_run`` says whether this one holds the roll-up's lease (another that
        does rolls the days up, and this one finds them done at its next look)."""
        through = last_closed_day(now)
        if self._done_through == through:
            return 0
        days = db.run_sync(days_to_roll, through, write=False)
        if days is None:
            return 0
        if days and may_run is not None and not may_run():
            return 0
        rolled = sum(roll_up_day(db, day, now) for day in days)
        if not days or days[-1] == through:
            self._done_through = through
        return rolled
