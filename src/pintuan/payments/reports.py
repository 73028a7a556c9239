"""What the consoles read about money: a merchant's orders (seats with their payments) and the
refunds owed or made, for one merchant or, for operators, across all of them.

Everything here only reads. A "refund" is any payment whose money goes back to the shopper:
a hold that is voided or a charge that is refunded, whether the provider call is still owed or
already done.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.kit.pagination import decode_cursor
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import require_operator
from pintuan.payments.models import Payment
from pintuan.teams.models import Seat, Team
from pintuan.teams.reports import managed_merchant, search_condition

_MONEY_BACK_ACTIONS = ("void", "refund")
_MONEY_BACK_STATUSES = ("voided", "refunded")


# ---------------------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class PaymentLine:
    id: str
    provider: str
    status: str
    pending_action: str | None
    amount: int
    currency: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderFilters:
    status: SeatStatus | None = None
    deal_id: str | None = None
    team_id: str | None = None
    text: str | None = None  # a seat or team id, or part of the shopper's name or email


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One seat, the order line of one shopper, with every payment made for it."""

    id: str
    team_id: str
    team_status: str
    deal_id: str
    deal_title: str
    shopper_id: str
    shopper_name: str
    shopper_email: str
    status: str
    is_leader: bool
    price_amount: int
    currency: str
    created_at: datetime
    paid_at: datetime | None
    ended_at: datetime | None
    payments: list[PaymentLine] = field(default_factory=list)


def list_merchant_orders(
    session: Session,
    principal: Principal,
    merchant_id: str,
    filters: OrderFilters,
    *,
    cursor: str | None,
    limit: int,
) -> list[OrderRow]:
    """The merchant's seats newest first with their payments, ``limit + 1`` rows so the caller
    knows whether more follow. Staff see the shopper's email: they serve the order."""
    managed_merchant(session, principal, merchant_id)
    query = (
        select(
            Seat.id,
            Seat.team_id,
            Team.status,
            Seat.deal_id,
            Deal.title,
            Seat.user_id,
            User.display_name,
            User.email,
            Seat.status,
            Seat.is_leader,
            Seat.price_amount,
            Seat.currency,
            Seat.created_at,
            Seat.paid_at,
            Seat.ended_at,
        )
        .join(Team, Team.id == Seat.team_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(User, User.id == Seat.user_id)
        .where(Deal.merchant_id == merchant_id)
        .order_by(Seat.id.desc())
        .limit(limit + 1)
    )
    if filters.status is not None:
        query = query.where(Seat.status == filters.status.value)
    if filters.deal_id:
        # Found through the deal's teams (seats have no index by deal: each would cost every
        # join a write), or SQLite reads every seat by id to spare the sort.
        query = query.where(
            Seat.deal_id == filters.deal_id,
            Seat.team_id.in_(select(Team.id).where(Team.deal_id == filters.deal_id)),
        )
    if filters.team_id:
        query = query.where(Seat.team_id == filters.team_id)
    if filters.text and filters.text.strip():
        query = query.where(search_condition(filters.text, Seat.user_id, Seat.id, Seat.team_id))
    if cursor is not None:
        query = query.where(Seat.id < decode_cursor(cursor))
    found: Sequence[Any] = session.execute(query).all()
    rows = [OrderRow(*row) for row in found]
    for payments, row in zip(_payments_of(session, [r.id for r in rows]), rows, strict=True):
        row.payments.extend(payments)
    return rows


def _payments_of(session: Session, seat_ids: list[str]) -> list[list[PaymentLine]]:
    """Each seat's payments, oldest first, in one query for the whole page."""
    found: dict[str | None, list[PaymentLine]] = defaultdict(list)
    if seat_ids:
        for payment in session.scalars(
            select(Payment).where(Payment.seat_id.in_(seat_ids)).order_by(Payment.id)
        ):
            found[payment.seat_id].append(
                PaymentLine(
                    payment.id,
                    payment.provider,
                    payment.status,
                    payment.pending_action,
                    payment.amount,
                    payment.currency,
                    payment.created_at,
                    payment.updated_at,
                )
            )
    return [found.get(seat_id, []) for seat_id in seat_ids]


# ---------------------------------------------------------------------------- refunds


class RefundState(StrEnum):
    OWED = "owed"  # decided; the provider call has not succeeded yet
    DONE = "done"  # the provider voided or refunded it
    FAILING = "failing"  # owed, and the provider call has already failed at least once


class RefundReason(StrEnum):
    TEAM_FAILED = "team_failed"
    SHOPPER_CANCELLED = "shopper_cancelled"
    PAID_TOO_LATE = "paid_too_late"
    DUPLICATE_PAYMENT = "duplicate_payment"


@dataclass(frozen=True, slots=True)
class RefundRow:
    id: str  # the payment's id
    seat_id: str
    team_id: str
    deal_id: str
    deal_title: str
    merchant_id: str
    merchant_name: str
    shopper_name: str
    shopper_email: str
    provider: str
    action: str  # void (a hold let go) or refund (a charge paid back)
    state: RefundState
    reason: RefundReason
    amount: int
    currency: str
    attempts: int
    last_error: str | None
    updated_at: datetime


def _reason(
    team_status: str,
    team_ended_at: datetime | None,
    seat_status: str,
    seat_ended_at: datetime | None,
) -> RefundReason:
    """Why the money goes back, from where its seat and team ended up, and which ended first."""
    seat_ended_first = seat_ended_at is not None and (
        team_ended_at is None or seat_ended_at < team_ended_at
    )
    if seat_ended_first and seat_status == SeatStatus.RELEASED.value:
        return RefundReason.PAID_TOO_LATE  # the money arrived after the hold had lapsed
    if seat_ended_first and seat_status == SeatStatus.REFUNDED.value:
        return RefundReason.SHOPPER_CANCELLED
    if team_status == TeamStatus.FAILED.value:
        return RefundReason.TEAM_FAILED
    return RefundReason.DUPLICATE_PAYMENT  # the seat kept another payment's money


def _refunds(
    session: Session,
    merchant_id: str | None,
    state: RefundState | None,
    cursor: str | None,
    limit: int,
) -> list[RefundRow]:
    query = (
        select(
            Payment.id,
            Seat.id.label("seat_id"),
            Team.id.label("team_id"),
            Seat.deal_id,
            Deal.title.label("deal_title"),
            Deal.merchant_id,
            Merchant.name.label("merchant_name"),
            User.display_name.label("shopper_name"),
            User.email.label("shopper_email"),
            Payment.provider,
            Payment.status,
            Payment.pending_action,
            Team.status.label("team_status"),
            Team.ended_at.label("team_ended_at"),
            Seat.status.label("seat_status"),
            Seat.ended_at.label("seat_ended_at"),
            Payment.amount,
            Payment.currency,
            Payment.attempts,
            Payment.last_error,
            Payment.updated_at,
        )
        .join(Seat, Seat.id == Payment.seat_id)
        .join(Team, Team.id == Payment.team_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .join(User, User.id == Payment.user_id)
        .order_by(Payment.id.desc())
        .limit(limit + 1)
    )
    owed = Payment.pending_action.in_(_MONEY_BACK_ACTIONS)
    if state is RefundState.DONE:
        query = query.where(Payment.status.in_(_MONEY_BACK_STATUSES))
    elif state is RefundState.OWED:
        query = query.where(owed)
    elif state is RefundState.FAILING:
        query = query.where(owed, Payment.last_error.is_not(None))
    else:
        query = query.where(or_(owed, Payment.status.in_(_MONEY_BACK_STATUSES)))
    if merchant_id is not None:
        query = query.where(Deal.merchant_id == merchant_id)
    if cursor is not None:
        query = query.where(Payment.id < decode_cursor(cursor))
    rows = []
    for r in session.execute(query).all():
        if r.status in _MONEY_BACK_STATUSES:
            current = RefundState.DONE
        else:
            current = RefundState.FAILING if r.last_error is not None else RefundState.OWED
        rows.append(
            RefundRow(
                id=r.id,
                seat_id=r.seat_id,
                team_id=r.team_id,
                deal_id=r.deal_id,
                deal_title=r.deal_title,
                merchant_id=r.merchant_id,
                merchant_name=r.merchant_name,
                shopper_name=r.shopper_name,
                shopper_email=r.shopper_email,
                provider=r.provider,
                action="void" if r.status == "voided" or r.pending_action == "void" else "refund",
                state=current,
                reason=_reason(r.team_status, r.team_ended_at, r.seat_status, r.seat_ended_at),
                amount=r.amount,
                currency=r.currency,
                attempts=r.attempts,
                last_error=r.last_error,
                updated_at=r.updated_at,
            )
        )
    return rows


def list_merchant_refunds(
    session: Session,
    principal: Principal,
    merchant_id: str,
    *,
    state: RefundState | None,
    cursor: str | None,
    limit: int,
) -> list[RefundRow]:
    """The merchant's refunds newest first (``limit + 1`` rows), optionally in one state."""
    managed_merchant(session, principal, merchant_id)
    return _refunds(session, merchant_id, state, cursor, limit)


def list_all_refunds(
    session: Session,
    principal: Principal,
    *,
    merchant_id: str | None = None,
    state: RefundState | None,
    cursor: str | None,
    limit: int,
) -> list[RefundRow]:
    """Refunds across every merchant, newest first (operators only); ``failing`` shows the
    ones whose provider call keeps failing and may need a person."""
    require_operator(principal)
    return _refunds(session, merchant_id, state, cursor, limit)
