"""Settlement statements: what each merchant earned on each of its business days, and payouts.

A business day is a calendar day in the merchant's own time zone. A statement is written once
the day is over there and never changes: journals are immutable and dated when decided, so
nothing can land in a day that has passed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import zone
from pintuan.ledger.models import Entry, Journal, SettlementStatement
from pintuan.merchants.models import Merchant


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a calendar day in ``time_zone`` starts and ends."""
    tz = zone(time_zone)
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return start, end


@dataclass(frozen=True, slots=True)
class DayFigures:
    currency: str
    orders: int = 0
    gross: int = 0
    fees: int = 0
    payouts: int = 0


def _figures(
    session: Session, merchant_id: str, start: datetime, end: datetime
) -> list[DayFigures]:
    payable = rules.MERCHANT_PAYABLE.format(merchant_id=merchant_id)
    rows = session.execute(
        select(
            Journal.kind,
            Journal.currency,
            func.count(),
            func.sum(Journal.amount),
            func.sum(Entry.amount),
        )
        .join(Entry, (Entry.journal_id == Journal.id) & (Entry.account == payable))
        .where(
            Journal.merchant_id == merchant_id,
            Journal.status == "posted",
            Journal.kind.in_((JournalKind.EARN.value, JournalKind.PAYOUT.value)),
            Journal.decided_at >= start,
            Journal.decided_at < end,
        )
        .group_by(Journal.kind, Journal.currency)
    ).all()
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, currency, count, gross, to_merchant in rows:
        if kind == JournalKind.EARN.value:
            figures[currency]["orders"] += count
            figures[currency]["gross"] += int(gross)
            figures[currency]["fees"] += int(gross) + int(to_merchant)  # credits are negative
        else:
            figures[currency]["payouts"] += int(gross)
    return [DayFigures(currency, **f) for currency, f in sorted(figures.items())]


def _closing_balance(session: Session, merchant_id: str, currency: str, end: datetime) -> int:
    payable = rules.MERCHANT_PAYABLE.format(merchant_id=merchant_id)
    total = session.scalar(
        select(func.coalesce(func.sum(Entry.amount), 0))
        .join(Journal, Journal.id == Entry.journal_id)
        .where(
            Entry.account == payable,
            Entry.currency == currency,
            Journal.status == "posted",
            Journal.decided_at < end,
        )
    )
    return -int(total or 0)


def settle_day(session: Session, merchant_id: str, day: date, now: datetime) -> int:
    """Write the merchant's statements for ``day`` (one per currency that moved), once the day
    is over in its time zone. Returns how many were written; a day already settled writes none."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    start, end = day_bounds(day, merchant.time_zone)
    if end > now:
        return 0
    written = 0
    for figures in _figures(session, merchant_id, start, end):
        inserted = session.execute(
            upsert_insert(session, SettlementStatement)
            .values(
                id=new_id("stm"),
                merchant_id=merchant_id,
                day=day,
                currency=figures.currency,
                orders=figures.orders,
                gross=figures.gross,
                fees=figures.fees,
                net=figures.gross - figures.fees,
                payouts=figures.payouts,
                closing_balance=_closing_balance(session, merchant_id, figures.currency, end),
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["merchant_id", "day", "currency"])
            .returning(SettlementStatement.id)
        ).first()
        written += inserted is not None
    return written


def settle_recent_days(session: Session, now: datetime, days_back: int = 2) -> int:
    """Settle the last ``days_back`` finished business days of every merchant with money
    movements since then (the worker runs this; repeats write nothing)."""
    since = now - timedelta(days=days_back + 1)
    merchants = session.execute(
        select(Merchant.id, Merchant.time_zone).where(
            Merchant.id.in_(
                select(Journal.merchant_id).where(
                    Journal.merchant_id.is_not(None), Journal.decided_at >= since
                )
            )
        )
    ).all()
    written = 0
    for merchant_id, time_zone in merchants:
        today = now.astimezone(zone(time_zone)).date()
        for back in range(1, days_back + 1):
            written += settle_day(session, merchant_id, today - timedelta(days=back), now)
    return written


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
