"""Reads the shopper's pages need beside the features' own: counts and look-ups for display.

Nothing here decides anything; every change goes through the features' services.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.refunds import RefundSource
from pintuan.domain.teams import LIVE_SEATS, TeamStatus
from pintuan.merchants.models import Merchant
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.teams.models import Seat, Team


def forming_team_counts(session: Session, deal_ids: Sequence[str], now: datetime) -> dict[str, int]:
    """How many teams are forming (window still open) per deal; a solo purchase is no team
    forming."""
    if not deal_ids:
        return {}
    rows = session.execute(
        select(Team.deal_id, func.count())
        .where(
            Team.deal_id.in_(list(deal_ids)),
            Team.status == TeamStatus.FORMING.value,
            Team.expires_at > now,
            ~Team.solo,
        )
        .group_by(Team.deal_id)
    ).all()
    return {deal_id: int(count) for deal_id, count in rows}


def joinable_team_counts(
    session: Session, deal_ids: Sequence[str], now: datetime
) -> dict[str, int]:
    """How many teams a shopper could join now, per deal, in one query: forming with the
    window open, someone in and a seat free (a full team waiting for payments, or one whose
    members all left, is not "forming" to a shopper)."""
    if not deal_ids:
        return {}
    rows = session.execute(
        select(Team.deal_id, func.count())
        .where(
            Team.deal_id.in_(list(deal_ids)),
            Team.status == TeamStatus.FORMING.value,
            Team.expires_at > now,
            Team.taken > 0,
            Team.taken < Team.team_size,
        )
        .group_by(Team.deal_id)
    ).all()
    return {deal_id: int(count) for deal_id, count in rows}


def merchant_names(session: Session, merchant_ids: Sequence[str]) -> dict[str, str]:
    if not merchant_ids:
        return {}
    rows = session.execute(
        select(Merchant.id, Merchant.name).where(Merchant.id.in_(set(merchant_ids)))
    ).all()
    return {str(merchant_id): str(name) for merchant_id, name in rows}


def find_deal(session: Session, deal_id: str) -> Deal | None:
    return session.get(Deal, deal_id)


def seats_of_user_in_team(session: Session, user_id: str, team_id: str) -> list[Seat]:
    """The viewer's seats of one team, newest first (a released seat may precede a new one)."""
    return list(
        session.scalars(
            select(Seat)
            .where(Seat.team_id == team_id, Seat.user_id == user_id)
            .order_by(Seat.id.desc())
        )
    )


def teams_with_user(session: Session, user_id: str, team_ids: Sequence[str]) -> set[str]:
    """Which of ``team_ids`` the user holds a live seat in."""
    if not team_ids:
        return set()
    return set(
        session.scalars(
            select(Seat.team_id).where(
                Seat.team_id.in_(list(team_ids)),
                Seat.user_id == user_id,
                Seat.status.in_([s.value for s in LIVE_SEATS]),
            )
        )
    )


def payments_of_seats(session: Session, seat_ids: Sequence[str]) -> dict[str, list[Payment]]:
    """Each seat's payments, oldest first."""
    found: dict[str, list[Payment]] = {seat_id: [] for seat_id in seat_ids}
    if not seat_ids:
        return found
    for payment in session.scalars(
        select(Payment).where(Payment.seat_id.in_(list(seat_ids))).order_by(Payment.id)
    ):
        if payment.seat_id is not None:
            found.setdefault(payment.seat_id, []).append(payment)
    return found


def team_of_payment(session: Session, user_id: str, payment_id: str) -> str | None:
    """The team a payment of this user was for, or None (not theirs, or not a seat's)."""
    payment = session.get(Payment, payment_id)
    if payment is None or payment.user_id != user_id:
        return None
    return payment.team_id


def lottery_refund_status(session: Session, seat_id: str) -> str | None:
    """The status of the refund a lottery seat that was not drawn gets (one per seat), or None
    while the worker has not made it yet."""
    return session.scalar(
        select(Refund.status).where(
            Refund.seat_id == seat_id, Refund.source == RefundSource.LOTTERY.value
        )
    )
