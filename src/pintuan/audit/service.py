"""Scan the database for breaches of the invariants in DESIGN.md.

Each check is one query that counts what should be equal by two independent routes (a counter
and the rows it counts) or finds rows in states that must never meet. An empty result is a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement, Subquery

from pintuan.audit.bargains import INVARIANT as BARGAINS
from pintuan.audit.bargains import bargain_breaches
from pintuan.audit.coupons import INVARIANT as COUPONS
from pintuan.audit.coupons import coupon_breaches
from pintuan.audit.facts import check_facts
from pintuan.audit.fills import fill_breaches
from pintuan.audit.ladder import ladder_breaches, tipping_breaches
from pintuan.audit.ledger import check_ledger
from pintuan.audit.refunds import refunds_in_limbo
from pintuan.deals.models import Deal
from pintuan.kit.time import utc_now
from pintuan.payments.models import Payment
from pintuan.teams.models import LIVE_SEAT_STATUSES, DealShopperCount, Seat, Team

MONEY_GRACE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Breach:
    invariant: str
    detail: str


def audit_database(session: Session, grace: timedelta = MONEY_GRACE) -> list[Breach]:
    """Every breach found, in invariant order; empty when the data is sound."""
    return [
        *_team_capacity(session),
        *_deal_stock(session),
        *_per_user_limits(session),
        *_ended_teams(session),
        *(Breach("4 a team ends once, whole", d) for d in ladder_breaches(session)),
        *(Breach("4 a team ends once, whole", d) for d in tipping_breaches(session)),
        *(Breach("4 a team ends once, whole", d) for d in fill_breaches(session)),
        *_money_in_limbo(session, grace),
        *(Breach("5 no money in limbo", d) for d in refunds_in_limbo(session, utc_now() - grace)),
        *(Breach(b.invariant, b.detail) for b in check_ledger(session).breaches),
        *(Breach(f.invariant, f.detail) for f in check_facts(session)),
        *(Breach(BARGAINS, d) for d in bargain_breaches(session)),
        *(Breach(COUPONS, d) for d in coupon_breaches(session)),
    ]


def _live_seats_per(column: InstrumentedAttribute[str]) -> Subquery:
    return (
        select(column, func.count().label("live"))
        .where(Seat.status.in_(LIVE_SEAT_STATUSES))
        .group_by(column)
        .subquery()
    )


def _team_capacity(session: Session) -> list[Breach]:
    live = _live_seats_per(Seat.team_id)
    rows = session.execute(
        select(Team.id, Team.taken, Team.team_size, func.coalesce(live.c.live, 0))
        .outerjoin(live, live.c.team_id == Team.id)
        .where(
            or_(
                Team.taken != func.coalesce(live.c.live, 0),
                func.coalesce(live.c.live, 0) > Team.team_size,
            )
        )
    ).all()
    return [
        Breach("1 team capacity", f"team {r[0]}: counter {r[1]}, live seats {r[3]}, size {r[2]}")
        for r in rows
    ]


def _deal_stock(session: Session) -> list[Breach]:
    live = _live_seats_per(Seat.deal_id)
    rows = session.execute(
        select(Deal.id, Deal.committed, Deal.stock, func.coalesce(live.c.live, 0))
        .outerjoin(live, live.c.deal_id == Deal.id)
        .where(
            or_(
                Deal.committed != func.coalesce(live.c.live, 0),
                func.coalesce(live.c.live, 0) > Deal.stock,
            )
        )
    ).all()
    return [
        Breach("2 deal stock", f"deal {r[0]}: committed {r[1]}, live seats {r[3]}, stock {r[2]}")
        for r in rows
    ]


def _per_user_limits(session: Session) -> list[Breach]:
    live = (
        select(Seat.deal_id, Seat.user_id, func.count().label("live"))
        .where(Seat.status.in_(LIVE_SEAT_STATUSES))
        .group_by(Seat.deal_id, Seat.user_id)
        .subquery()
    )
    over = session.execute(
        select(live.c.deal_id, live.c.user_id, live.c.live, Deal.per_user_limit)
        .join(Deal, Deal.id == live.c.deal_id)
        .where(live.c.live > Deal.per_user_limit)
    ).all()
    drift = session.execute(
        select(
            DealShopperCount.deal_id,
            DealShopperCount.user_id,
            DealShopperCount.count,
            func.coalesce(live.c.live, 0),
        )
        .outerjoin(
            live,
            and_(
                live.c.deal_id == DealShopperCount.deal_id,
                live.c.user_id == DealShopperCount.user_id,
            ),
        )
        .where(DealShopperCount.count != func.coalesce(live.c.live, 0))
    ).all()
    return [
        Breach(
            "3 per-user limit", f"shopper {r[1]} holds {r[2]} seats of deal {r[0]}, limit {r[3]}"
        )
        for r in over
    ] + [
        Breach("3 per-user limit", f"shopper {r[1]} on deal {r[0]}: counter {r[2]}, live {r[3]}")
        for r in drift
    ]


def _ended_teams(session: Session) -> list[Breach]:
    confirmed = func.sum(func.cast(Seat.status == "confirmed", type_=Team.taken.type))
    unsettled = func.sum(func.cast(Seat.status.in_(("held", "paid")), type_=Team.taken.type))
    rows = session.execute(
        select(
            Team.id,
            Team.status,
            Team.team_size,
            func.coalesce(confirmed, 0),
            func.coalesce(unsettled, 0),
        )
        .outerjoin(Seat, Seat.team_id == Team.id)
        .group_by(Team.id, Team.status, Team.team_size, Team.min_size, Team.filled_seats)
        .having(
            or_(
                and_(
                    Team.status == "succeeded",
                    or_(
                        # A ladder team succeeds from its first tier (min_size) up; a filled
                        # team's missing seats were paid by a budget.
                        func.coalesce(confirmed, 0) + Team.filled_seats > Team.team_size,
                        func.coalesce(confirmed, 0) + Team.filled_seats
                        < func.coalesce(Team.min_size, Team.team_size),
                        func.coalesce(unsettled, 0) > 0,
                    ),
                ),
                and_(
                    Team.status == "failed",
                    or_(func.coalesce(confirmed, 0) > 0, func.coalesce(unsettled, 0) > 0),
                ),
                and_(Team.status == "forming", func.coalesce(confirmed, 0) > 0),
            )
        )
    ).all()
    return [
        Breach(
            "4 a team ends once, whole",
            f"team {r[0]} is {r[1]} with {r[3]} confirmed and {r[4]} unsettled seats (size {r[2]})",
        )
        for r in rows
    ]


# Every payment ends (payments/endings.py): a payment an owed call gave up on, or whose
# provider's news ended its course, waits in the operators' queue; it is in a person's hands,
# not in limbo. Those whose capture never happened still stand for their confirmed seat.
_SEAT_ENDINGS = ("capture_failed", "hold_expired", "unpaid")


def _not_with_operators() -> ColumnElement[bool]:
    return or_(Payment.queued_at.is_(None), Payment.resolved_at.is_not(None))


def _money_in_limbo(session: Session, grace: timedelta) -> list[Breach]:
    cutoff = utc_now() - grace
    holding = ("authorized", "charged", "captured")
    # Money held for a seat that is gone and not on its way back.
    stranded = session.execute(
        select(Payment.id, Payment.status, Seat.status)
        .join(Seat, Seat.id == Payment.seat_id)
        .where(
            Payment.status.in_(("authorized", "charged")),
            Seat.status.in_(("released", "refunded")),
            or_(Payment.pending_action.is_(None), Payment.updated_at < cutoff),
            _not_with_operators(),
        )
    ).all()
    # Ended teams whose payments are still undecided after the grace period.
    undecided = session.execute(
        select(Payment.id, Payment.status, Payment.pending_action, Team.id, Team.status)
        .join(Team, Team.id == Payment.team_id)
        .where(
            Team.status.in_(("succeeded", "failed")),
            Team.ended_at < cutoff,
            or_(
                Payment.pending_action.in_(("capture", "void", "refund")),
                Payment.status == "authorized",
            ),
            _not_with_operators(),
        )
    ).all()
    # More than one payment keeping money for one seat.
    doubled = session.execute(
        select(Payment.seat_id, func.count())
        .where(
            Payment.purpose == "seat",
            Payment.status.in_(holding),
            or_(Payment.pending_action.is_(None), Payment.pending_action == "capture"),
            _not_with_operators(),
        )
        .group_by(Payment.seat_id)
        .having(func.count() > 1)
    ).all()
    # Every confirmed seat keeps exactly one payment's money (or is owed its capture); one whose
    # shopper is asked to pay again (``repay_by``) keeps none until they do.
    keeping = (
        select(Payment.seat_id, func.count().label("n"))
        .where(
            or_(
                and_(
                    Payment.status.in_(("captured", "charged")),
                    Payment.pending_action.is_(None),
                    Payment.end_reason.is_(None),  # a refund that failed is still owed back
                ),
                and_(Payment.status == "authorized", Payment.pending_action == "capture"),
                # Its money never came: with the operators, or written off or refunded by one
                # (not charged again: the new payment stands for the seat).
                and_(
                    Payment.queued_at.is_not(None),
                    Payment.end_reason.in_(_SEAT_ENDINGS),
                    or_(Payment.resolution.is_(None), Payment.resolution != "charge_again"),
                ),
                Payment.resolution.in_(("write_off", "refund")),
            )
        )
        .group_by(Payment.seat_id)
        .subquery()
    )
    unpaid = session.execute(
        select(Seat.id, func.coalesce(keeping.c.n, 0))
        .outerjoin(keeping, keeping.c.seat_id == Seat.id)
        .where(
            Seat.status == "confirmed",
            Seat.price_amount > 0,  # a free leader seat has no payment
            func.coalesce(keeping.c.n, 0) != case((Seat.repay_by.is_(None), 1), else_=0),
        )
    ).all()
    return (
        [
            Breach("5 no money in limbo", f"confirmed seat {r[0]} keeps {r[1]} payments' money")
            for r in unpaid
        ]
        + [
            Breach("5 no money in limbo", f"payment {r[0]} is {r[1]} for a {r[2]} seat")
            for r in stranded
        ]
        + [
            Breach(
                "5 no money in limbo",
                f"payment {r[0]} is {r[1]} (owed: {r[2]}) though team {r[3]} {r[4]}",
            )
            for r in undecided
        ]
        + [
            Breach("5 no money in limbo", f"seat {r[0]} has {r[1]} payments keeping money")
            for r in doubled
        ]
    )
