"""The audit of ladder teams and tipping points, recomputed from facts (``domain/ladder.py``):

* a succeeded ladder team's price is the tier its confirmed seats reach;
* no member was refunded by the ladder more than they paid above that price, and a team that
  owes nothing more has refunded each member who paid above it (unless the seat's payment has
  nothing left to refund);
* a deal with a tipping point that has not tipped has no team that succeeded, and no team of a
  tipped deal succeeded before the deal tipped.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.ladder import refund_for, stored_ladder
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.teams.models import Seat, Team


def ladder_breaches(session: Session) -> list[str]:
    """Every way ladder teams, their prices and their refunds disagree."""
    found: list[str] = []
    teams = session.execute(
        select(
            Team.id,
            Team.ladder_price,
            Team.ladder_refunds_due,
            Deal.ladder,
            Deal.team_size,
            Deal.group_price_amount,
        )
        .join(Deal, Deal.id == Team.deal_id)
        .where(Team.status == "succeeded", Team.min_size.is_not(None))
    ).all()
    if not teams:
        return found
    ids = [t.id for t in teams]
    seats: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for team_id, seat_id, price in session.execute(
        select(Seat.team_id, Seat.id, Seat.price_amount).where(
            Seat.team_id.in_(ids), Seat.status == "confirmed"
        )
    ):
        seats[team_id].append((seat_id, int(price)))
    refunded = {
        str(seat_id): int(total)
        for seat_id, total in session.execute(
            select(Refund.seat_id, func.sum(Refund.amount))
            .where(Refund.source == "ladder", Refund.status != "failed")
            .group_by(Refund.seat_id)
        )
    }
    for team in teams:
        ladder = stored_ladder(team.team_size, int(team.group_price_amount), team.ladder)
        reached = ladder.reached(len(seats[team.id])) if ladder else None
        if reached is None or team.ladder_price != reached.price:
            found.append(
                f"ladder team {team.id}: price {team.ladder_price}, but its "
                f"{len(seats[team.id])} confirmed seats reach "
                f"{reached.price if reached else 'no tier'}"
            )
            continue
        for seat_id, price in seats[team.id]:
            back, due = refunded.get(seat_id, 0), refund_for(price, reached.price)
            if back > due:
                found.append(
                    f"ladder seat {seat_id}: refunded {back}, more than {price} - {reached.price}"
                )
            owed = not team.ladder_refunds_due and due > 0 and back == 0
            if owed and _left_to_refund(session, seat_id) > 0:
                found.append(f"ladder seat {seat_id}: owed {due}, not paid")
    return found


def _left_to_refund(session: Session, seat_id: str) -> int:
    """What a seat's payments could still give back, all refunds counted."""
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.seat_id == seat_id, Payment.status.in_(("captured", "charged"))
        )
    )
    back = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.seat_id == seat_id, Refund.status != "failed"
        )
    )
    return int(paid or 0) - int(back or 0)


def tipping_breaches(session: Session) -> list[str]:
    """Teams of tipping deals that succeeded before their deal tipped, or of a deal never
    tipped."""
    rows = session.execute(
        select(Team.id, Team.ended_at, Deal.id, Deal.tipped_at)
        .join(Deal, Deal.id == Team.deal_id)
        .where(Deal.tipping_point.is_not(None), Team.status == "succeeded")
    ).all()
    return [
        f"team {team_id} of deal {deal_id} succeeded"
        + (" though the deal never tipped" if tipped is None else f" at {ended} before it tipped")
        for team_id, ended, deal_id, tipped in rows
        if tipped is None or (ended is not None and ended < tipped)
    ]
