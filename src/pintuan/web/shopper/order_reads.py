"""Reads of the orders page, the notifications badge and the pay-link page.

A shopper's orders are their own seats and the seats they paid for as a friend (代付), so that a
friend finds the payment they made. Nothing here changes a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.payments.models import Payment
from pintuan.teams.models import Seat, Team
from pintuan.web.shopper.money_words import TOOK_MONEY

# The orders page's tabs, in order, and the seat states each shows (``all``: every one).
TABS: dict[str, tuple[str, ...]] = {
    "all": (),
    "to_pay": ("held",),
    "forming": ("paid",),
    "succeeded": ("confirmed",),
    "refunded": ("refunded",),
}


@dataclass(frozen=True, slots=True)
class Order:
    seat: Seat
    team_status: str
    deal: Deal
    owner_name: str
    payments: list[Payment] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.seat.id


def _orders_of(user_id: str) -> ColumnElement[bool]:
    paid_for = select(Payment.seat_id).where(
        Payment.user_id == user_id,
        Payment.seat_id.is_not(None),
        Payment.status.in_(sorted(TOOK_MONEY)),
    )
    return or_(Seat.user_id == user_id, Seat.id.in_(paid_for))


def orders(
    session: Session, user_id: str, tab: str, cursor_id: str | None, limit: int
) -> list[Order]:
    """Up to ``limit + 1`` orders of the tab, newest first, each with its seat's payments."""
    query = (
        select(Seat, Team.status, Deal, User.display_name)
        .join(Team, Team.id == Seat.team_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(User, User.id == Seat.user_id)
        .where(_orders_of(user_id))
        .order_by(Seat.id.desc())
        .limit(limit + 1)
    )
    if TABS.get(tab):
        query = query.where(Seat.status.in_(TABS[tab]))
    if cursor_id is not None:
        query = query.where(Seat.id < cursor_id)
    rows = session.execute(query).all()
    found = [Order(r[0], r[1], r[2], r[3]) for r in rows]
    by_seat: dict[str, list[Payment]] = {o.seat.id: o.payments for o in found}
    if by_seat:
        for payment in session.scalars(
            select(Payment).where(Payment.seat_id.in_(list(by_seat))).order_by(Payment.id)
        ):
            if payment.seat_id is not None:
                by_seat[payment.seat_id].append(payment)
    return found


def order_counts(session: Session, user_id: str) -> dict[str, int]:
    """How many orders each tab holds."""
    rows = session.execute(
        select(Seat.status, func.count()).where(_orders_of(user_id)).group_by(Seat.status)
    ).all()
    by_status = {str(status): int(n) for status, n in rows}
    return {
        tab: sum(n for s, n in by_status.items() if not statuses or s in statuses)
        for tab, statuses in TABS.items()
    }


def display_names(session: Session, user_ids: Sequence[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(User.id, User.display_name).where(User.id.in_(set(user_ids)))
    ).all()
    return {str(user_id): str(name) for user_id, name in rows}


@dataclass(frozen=True, slots=True)
class PayLinkState:
    """What a friend holding a pay link may know about the seat's state."""

    seat_status: str
    team_status: str
    hold_expires_at: datetime | None
    paid_by_viewer: bool


def pay_link_state(session: Session, seat_id: str, viewer_id: str | None) -> PayLinkState | None:
    row = session.execute(
        select(Seat.status, Seat.hold_expires_at, Team.status)
        .join(Team, Team.id == Seat.team_id)
        .where(Seat.id == seat_id)
    ).first()
    if row is None:
        return None
    paid_by_viewer = (
        viewer_id is not None
        and (
            session.scalar(
                select(func.count())
                .select_from(Payment)
                .where(
                    Payment.seat_id == seat_id,
                    Payment.user_id == viewer_id,
                    Payment.status.in_(sorted(TOOK_MONEY)),
                )
            )
            or 0
        )
        > 0
    )
    return PayLinkState(str(row[0]), str(row[2]), row[1], paid_by_viewer)
