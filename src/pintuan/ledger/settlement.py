"""Settlement statements: what each merchant earned on each of its business days, and payouts.

A business day is a calendar day in the merchant's own time zone. Every journal carries the
business instant it belongs to (``effective_at``) and the instant it was recorded
(``created_at``). A day is settled once its grace period after the merchant's midnight has
passed; the statement claims, line by line, every posted journal touching the merchant's payable
that is dated before the day's end and on no statement yet. A journal that arrives later (a
capture confirmed after the grace period for a team that succeeded before midnight, a write that
took its instant before midnight and committed after the statement) is claimed by the next
statement as an adjustment: never silently outside every statement, never on two.

The instant that decides whether the day is over is taken after the merchant's row is locked
(PostgreSQL) or the write lock is held (SQLite), so a payout or a second settlement cannot slip in
between; statements are never rewritten.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from pintuan.domain import ledger as rules
from pintuan.domain.ledger_shapes import SHAPES, Column
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now, zone
from pintuan.ledger.models import Entry, Journal, SettlementLine, SettlementStatement
from pintuan.merchants.models import Merchant

SETTLEMENT_GRACE = timedelta(hours=1)


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a calendar day in ``time_zone`` starts and ends."""
    tz = zone(time_zone)
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return start, end


@dataclass
class DayFigures:
    """A statement's figures, added up from the journals it claims."""

    currency: str
    orders: int = 0
    gross: int = 0
    fees: int = 0
    payouts: int = 0
    adjustments: int = 0
    journals: list[str] = field(default_factory=list)

    @property
    def net(self) -> int:
        return self.gross - self.fees


@dataclass(frozen=True, slots=True)
class ClaimedJournal:
    """One journal as a statement counts it: its payable movement (credit positive)."""

    id: str
    kind: str
    currency: str
    gross: int
    to_merchant: int
    effective_at: datetime


def figures_of(journals: list[ClaimedJournal], start: datetime) -> DayFigures | None:
    """Add up a statement from its journals: the day's own sales and payouts in their columns,
    everything else (and anything dated before the day) as adjustments."""
    if not journals:
        return None
    figures = DayFigures(journals[0].currency)
    for j in journals:
        figures.journals.append(j.id)
        shape = SHAPES.get(j.kind)
        column = shape.statement if shape is not None else Column.ADJUSTMENTS
        if j.effective_at < start:
            column = Column.ADJUSTMENTS  # recorded after its own day was settled
        if column is Column.SALES:
            figures.orders += 1
            figures.gross += j.gross
            figures.fees += j.gross - j.to_merchant
        elif column is Column.PAYOUTS:
            figures.payouts += -j.to_merchant
        else:
            figures.adjustments += j.to_merchant
    return figures


def payable_journals(
    session: Session, merchant_id: str, *, before: datetime | None, unclaimed: bool
) -> list[ClaimedJournal]:
    """Posted journals that move the merchant's payable (dated before ``before``), with what
    each moved there; ``unclaimed`` keeps only those on no statement yet."""
    payable = rules.MERCHANT_PAYABLE.format(merchant_id=merchant_id)
    debit = aliased(Entry)
    gross = (
        select(func.sum(debit.amount))
        .where(debit.journal_id == Journal.id, debit.amount > 0)
        .correlate(Journal)
        .scalar_subquery()
    )
    query = (
        select(
            Journal.id,
            Journal.kind,
            Journal.currency,
            gross,
            func.sum(Entry.amount),
            func.coalesce(Journal.effective_at, Journal.created_at),
        )
        .join(Entry, (Entry.journal_id == Journal.id) & (Entry.account == payable))
        .where(Journal.merchant_id == merchant_id, Journal.status == "posted")
        .group_by(
            Journal.id, Journal.kind, Journal.currency, Journal.effective_at, Journal.created_at
        )
        .order_by(Journal.id)
    )
    if before is not None:
        query = query.where(func.coalesce(Journal.effective_at, Journal.created_at) < before)
    if unclaimed:
        query = query.where(
            ~select(SettlementLine.journal_id)
            .where(SettlementLine.journal_id == Journal.id)
            .exists()
        )
    rows = session.execute(query).all()
    return [
        ClaimedJournal(jid, kind, currency, int(g or 0), -int(moved), _aware(effective))
        for jid, kind, currency, g, moved, effective in rows
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _lock_merchant(session: Session, merchant_id: str) -> Merchant:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT id FROM merchants WHERE id = :id FOR UPDATE"), {"id": merchant_id}
        )
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    return merchant


def settle_day(
    session: Session, merchant_id: str, day: date, grace: timedelta = SETTLEMENT_GRACE
) -> int:
    """Write the merchant's statements for ``day`` (one per currency with journals to claim),
    once the day and its grace period are over in the merchant's time zone. Returns how many
    were written; a day already settled writes none (late journals wait for the next one)."""
    merchant = _lock_merchant(session, merchant_id)
    now = utc_now()  # after the lock: nothing committed before it can be missed
    start, end = day_bounds(day, merchant.time_zone)
    if end + grace > now:
        return 0
    settled = set(
        session.scalars(
            select(SettlementStatement.currency).where(
                SettlementStatement.merchant_id == merchant_id, SettlementStatement.day == day
            )
        )
    )
    by_currency: dict[str, list[ClaimedJournal]] = defaultdict(list)
    for journal in payable_journals(session, merchant_id, before=end, unclaimed=True):
        by_currency[journal.currency].append(journal)
    written = 0
    for currency, journals in sorted(by_currency.items()):
        if currency in settled:
            continue  # a statement is never rewritten: these go on the next one
        figures = figures_of(journals, start)
        assert figures is not None
        previous = session.scalar(
            select(SettlementStatement.closing_balance)
            .where(
                SettlementStatement.merchant_id == merchant_id,
                SettlementStatement.currency == currency,
                SettlementStatement.day < day,
            )
            .order_by(SettlementStatement.day.desc())
            .limit(1)
        )
        statement = SettlementStatement(
            id=new_id("stm"),
            merchant_id=merchant_id,
            day=day,
            currency=currency,
            orders=figures.orders,
            gross=figures.gross,
            fees=figures.fees,
            net=figures.net,
            payouts=figures.payouts,
            adjustments=figures.adjustments,
            closing_balance=(previous or 0) + figures.net - figures.payouts + figures.adjustments,
            created_at=now,
            cutoff_at=end,
        )
        session.add(statement)
        session.flush()
        session.add_all(
            SettlementLine(journal_id=jid, statement_id=statement.id) for jid in figures.journals
        )
        session.flush()
        written += 1
    return written


RECENT_DAYS = 2  # business days the worker settles (again) each time


def recently_active(
    session: Session, now: datetime, days_back: int = RECENT_DAYS
) -> list[tuple[str, str]]:
    """Every merchant (id and time zone) with money movements recorded in the last
    ``days_back`` business days. It reads every journal (their dates of record have no index,
    so that recording one stays cheap): run it in a read-only transaction, which on SQLite
    holds nobody's write lock."""
    since = now - timedelta(days=days_back + 1)
    found = session.execute(
        select(Merchant.id, Merchant.time_zone).where(
            Merchant.id.in_(
                select(Journal.merchant_id).where(
                    Journal.merchant_id.is_not(None), Journal.created_at >= since
                )
            )
        )
    ).all()
    return [(str(merchant_id), str(time_zone)) for merchant_id, time_zone in found]


def settle_merchant_recent_days(
    session: Session,
    merchant_id: str,
    time_zone: str,
    now: datetime,
    days_back: int = RECENT_DAYS,
    grace: timedelta = SETTLEMENT_GRACE,
) -> int:
    """Settle the merchant's last ``days_back`` business days, oldest first (repeats write
    nothing)."""
    today = now.astimezone(zone(time_zone)).date()
    return sum(
        settle_day(session, merchant_id, today - timedelta(days=back), grace)
        for back in range(days_back, 0, -1)
    )


def settle_recent_days(
    db: Database, now: datetime, grace: timedelta = SETTLEMENT_GRACE, days_back: int = RECENT_DAYS
) -> int:
    """Settle the last ``days_back`` business days of every merchant with money movements
    recorded since then (the worker runs this; repeats write nothing). The merchants are read
    first without the write lock (that reads every journal); each is then settled in a
    transaction of its own."""
    return sum(
        db.run_sync(settle_merchant_recent_days, merchant_id, time_zone, now, days_back, grace)
        for merchant_id, time_zone in db.run_sync(recently_active, now, days_back, write=False)
    )


def list_statements(
    session: Session,
    principal: Principal,
    merchant_id: str,
    cursor_id: str | None,
    limit: int,
) -> list[SettlementStatement]:
    """A merchant's statements, newest day first (its staff and operators only)."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    query = select(SettlementStatement).where(SettlementStatement.merchant_id == merchant_id)
    if cursor_id is not None:
        last = session.get(SettlementStatement, cursor_id)
        if last is not None:
            query = query.where(
                (SettlementStatement.day < last.day)
                | ((SettlementStatement.day == last.day) & (SettlementStatement.id < last.id))
            )
    return list(
        session.scalars(
            query.order_by(SettlementStatement.day.desc(), SettlementStatement.id.desc()).limit(
                limit + 1
            )
        )
    )
