"""Reading refunds after success and disputes, for the API and the pages (ORM)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.teams.models import Seat


def seat_for_refunds(session: Session, principal: Principal, seat_id: str) -> tuple[Seat, str]:
    """The seat and its merchant, if the caller may see its refunds: its shopper, the
    merchant's staff or an operator; anybody else finds no such seat."""
    found = session.execute(
        select(Seat, Deal.merchant_id).join(Deal, Deal.id == Seat.deal_id).where(Seat.id == seat_id)
    ).first()
    if found is None:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    seat, merchant_id = found
    if seat.user_id != principal.user_id and not principal.can_manage(merchant_id):
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return seat, merchant_id


def refunds_of_seats(session: Session, seat_ids: Iterable[str]) -> dict[str, list[Refund]]:
    """Each seat's refunds after success, oldest first."""
    ids = list(seat_ids)
    found: dict[str, list[Refund]] = defaultdict(list)
    if not ids:
        return found
    for refund in session.scalars(
        select(Refund).where(Refund.seat_id.in_(ids)).order_by(Refund.created_at, Refund.id)
    ):
        found[refund.seat_id].append(refund)
    return found


def get_refund(session: Session, refund_id: str) -> Refund:
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise NotFound(f"No refund {refund_id}.", code="refund_not_found")
    return refund


def disputes_of_merchant(session: Session, merchant_id: str, limit: int = 100) -> list[Dispute]:
    """The merchant's disputes, newest first."""
    return list(
        session.scalars(
            select(Dispute)
            .where(Dispute.merchant_id == merchant_id)
            .order_by(Dispute.opened_at.desc(), Dispute.id.desc())
            .limit(limit)
        )
    )
