"""A shopper's coupons: listing them, and applying one to a held seat (``domain/coupons.py``).

Applying is one transaction that locks the seat's row first (payments of a seat lock it too, so
a payment never begins at the old price while a coupon lowers it, nor the reverse), checks that
no payment of the seat has begun, then makes two conditional writes: the seat's price goes down
by the coupon's amount only while it has no coupon, and the coupon points at the seat only while
it is free (never applied, or its last seat ended without a sale) and unexpired. Either failing
refuses the whole; the partial unique index on ``seats.coupon_id`` backs the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from pintuan.bargains.models import Bargain
from pintuan.coupons.models import Coupon
from pintuan.deals.models import Deal
from pintuan.domain.coupons import (
    FREEING_SEAT_STATES,
    CouponState,
    SeatToLower,
    state_of,
    why_not_applicable,
)
from pintuan.domain.payments import PaymentStatus
from pintuan.domain.teams import SeatStatus
from pintuan.errors import Conflict, NotFound
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql
from pintuan.merchants.models import Merchant
from pintuan.teams import service as teams
from pintuan.teams.models import Seat


@dataclass(frozen=True, slots=True)
class CouponView:
    coupon: Coupon
    merchant_name: str
    state: CouponState

    @property
    def id(self) -> str:
        return self.coupon.id


def my_coupons(
    session: Session,
    user_id: str,
    now: datetime,
    cursor_id: str | None,
    limit: int,
    state: CouponState | None = None,
) -> list[CouponView]:
    """The shopper's coupons, newest first, each with its state now (optionally only those in
    ``state``)."""
    applied_to = aliased(Seat)
    query = (
        select(Coupon, Merchant.name, applied_to.status)
        .join(Merchant, Merchant.id == Coupon.merchant_id)
        .outerjoin(applied_to, applied_to.id == Coupon.seat_id)
        .where(Coupon.owner_id == user_id)
        .order_by(Coupon.id.desc())
    )
    if cursor_id is not None:
        query = query.where(Coupon.id < cursor_id)
    if state is None:
        query = query.limit(limit + 1)
    views = []
    # The state depends on the seat's status and the clock, so a page of one state reads on
    # until it has ``limit + 1`` matching rows (a shopper has few coupons).
    for coupon, merchant_name, seat_status in session.execute(query):
        view = CouponView(coupon, merchant_name, state_of(seat_status, coupon.expires_at, now))
        if state is None or view.state is state:
            views.append(view)
            if len(views) > limit:
                break
    return views


def usable_for_seat(
    session: Session, user_id: str, seat: Seat, deal: Deal, now: datetime
) -> list[CouponView]:
    """The shopper's coupons that could be applied to ``seat`` (of ``deal``) now (for the pay
    page): by the same rule as :func:`apply_coupon`."""
    if seat.status != SeatStatus.HELD.value or seat.coupon_id is not None:
        return []
    lowered = SeatToLower(
        merchant_id=deal.merchant_id,
        currency=seat.currency,
        price=seat.price_amount,
        ladder=deal.ladder is not None,
        lottery=deal.lottery_winners is not None,
        bargained=session.scalar(select(Bargain.id).where(Bargain.seat_id == seat.id)) is not None,
    )
    return [
        view
        for view in my_coupons(session, user_id, now, None, 50, CouponState.AVAILABLE)
        if why_not_applicable(
            view.coupon.merchant_id, view.coupon.currency, view.coupon.amount, lowered
        )
        is None
    ]


# ---------------------------------------------------------------------------- applying one

SEAT_FOR_COUPON = Sql("""
    SELECT s.user_id, s.status, s.hold_expires_at, s.price_amount, s.currency, s.coupon_id,
           d.merchant_id, d.ladder, d.lottery_winners,
           EXISTS (SELECT 1 FROM bargains b WHERE b.seat_id = s.id) AS bargained
    FROM seats s JOIN deals d ON d.id = s.deal_id WHERE s.id = :id
""")
COUPON = Sql("""
    SELECT c.owner_id, c.merchant_id, c.amount, c.currency, c.expires_at, s.status AS seat_status
    FROM coupons c LEFT JOIN seats s ON s.id = c.seat_id WHERE c.id = :id
""")
PAYMENT_BEGUN = Sql(
    """
    SELECT 1 FROM payments WHERE seat_id = :id AND status NOT IN (:failed, :expired)
""",
    failed=PaymentStatus.FAILED,
    expired=PaymentStatus.EXPIRED,
)
LOWER_PRICE = Sql(
    """
    UPDATE seats SET price_amount = price_amount - :amount, coupon_id = :coupon_id
    WHERE id = :id AND status = :held AND coupon_id IS NULL AND price_amount > :amount
""",
    held=SeatStatus.HELD,
)
TAKE_COUPON = Sql(
    """
    UPDATE coupons SET seat_id = :seat_id, applied_at = :now
    WHERE id = :id AND owner_id = :user_id AND expires_at > :now
      AND (seat_id IS NULL OR EXISTS (SELECT 1 FROM seats s
                                      WHERE s.id = coupons.seat_id AND s.status IN_LIST(:freeing)))
"""
)


@dataclass(frozen=True, slots=True)
class _SeatRow:
    user_id: str
    status: str
    hold_expires_at: object
    price_amount: int
    currency: str
    coupon_id: str | None
    merchant_id: str
    ladder: object
    lottery_winners: int | None
    bargained: bool


@dataclass(frozen=True, slots=True)
class _CouponRow:
    owner_id: str
    merchant_id: str
    amount: int
    currency: str
    expires_at: object
    seat_status: str | None


def apply_coupon(tx: RawTx, user_id: str, seat_id: str, coupon_id: str, now: datetime) -> None:
    """Take the shopper's coupon off the price of their held seat (see the module's notes)."""
    teams.lock_seat_row(tx, seat_id)
    seat = tx.one_as(_SeatRow, SEAT_FOR_COUPON, {"id": seat_id})
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    coupon = tx.one_as(_CouponRow, COUPON, {"id": coupon_id})
    if coupon is None or coupon.owner_id != user_id:
        raise NotFound(f"No coupon {coupon_id}.", code="coupon_not_found")
    state = state_of(coupon.seat_status, tx.read_instant(coupon.expires_at), now)
    if state is not CouponState.AVAILABLE:
        raise Conflict(f"This coupon is {state.value}.", code=f"coupon_{state.value}")
    hold_ends = tx.read_optional_instant(seat.hold_expires_at)
    if seat.status != SeatStatus.HELD.value or (hold_ends is not None and hold_ends <= now):
        raise Conflict(
            "Only a held seat, not paid for yet, can take a coupon.", code="seat_not_payable"
        )
    if seat.coupon_id is not None:
        raise Conflict("This seat has a coupon already.", code="seat_has_coupon")
    if tx.one(PAYMENT_BEGUN, {"id": seat_id}) is not None:
        raise Conflict(
            "A payment of this seat has begun; a coupon is applied before paying.",
            code="payment_begun",
        )
    why = why_not_applicable(
        coupon.merchant_id,
        coupon.currency,
        coupon.amount,
        SeatToLower(
            merchant_id=seat.merchant_id,
            currency=seat.currency,
            price=seat.price_amount,
            ladder=seat.ladder is not None,
            lottery=seat.lottery_winners is not None,
            bargained=bool(seat.bargained),
        ),
    )
    if why is not None:
        raise Conflict(f"This coupon cannot be applied here: {why}.", code="coupon_not_applicable")
    try:
        lowered = tx.execute(
            LOWER_PRICE, {"id": seat_id, "amount": coupon.amount, "coupon_id": coupon_id}
        )
        taken = tx.execute(
            TAKE_COUPON,
            {
                "id": coupon_id,
                "user_id": user_id,
                "seat_id": seat_id,
                "now": tx.instant(now),
                "freeing": list(FREEING_SEAT_STATES),
            },
        )
    except IntegrityViolation:  # the coupon is on another live seat already
        lowered = taken = None
    if lowered is None or taken is None or lowered.rowcount != 1 or taken.rowcount != 1:
        # Another request applied this coupon, or a coupon to this seat, a moment ago.
        raise Conflict(
            "This coupon or this seat changed meanwhile; look again.", code="coupon_taken"
        )
