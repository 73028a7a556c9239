"""The audit of coupons, recomputed from facts (``domain/coupons.py``): every seat a lottery's
draw did not pick, on a deal that gives a coupon, has exactly one, of the deal's amount, to the
seat's shopper, from the deal's merchant (and no coupon exists without such a seat); a seat that
took a coupon took its owner's, from its deal's merchant, in its currency, and is the coupon's
last seat; the coupon's last seat took it; and every payment of such a seat asked for the
lowered price."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.coupons.models import Coupon
from pintuan.deals.models import Deal
from pintuan.domain.payments import PaymentStatus
from pintuan.payments.models import Payment
from pintuan.teams.models import Seat

INVARIANT = "coupons are earned and spent once"


def coupon_breaches(session: Session) -> list[str]:
    found: list[str] = []
    coupons = {c.id: c for c in session.scalars(select(Coupon))}
    by_source = {c.source_seat_id: c for c in coupons.values()}
    for seat_id, user_id, currency, merchant_id, amount in session.execute(
        select(Seat.id, Seat.user_id, Seat.currency, Deal.merchant_id, Deal.lottery_coupon_amount)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.lottery_won.is_(False), Deal.lottery_coupon_amount.is_not(None))
    ):
        coupon = by_source.pop(seat_id, None)
        if coupon is None:
            found.append(f"seat {seat_id} lost its lottery draw but has no coupon")
        elif (coupon.owner_id, coupon.merchant_id, coupon.amount, coupon.currency) != (
            user_id,
            merchant_id,
            amount,
            currency,
        ):
            found.append(
                f"coupon {coupon.id} is {coupon.amount} {coupon.currency} to {coupon.owner_id} "
                f"from {coupon.merchant_id}; its seat {seat_id} earned {amount} {currency} to "
                f"{user_id} from {merchant_id}"
            )
    found += [f"coupon {c.id} was earned by no lost draw" for c in by_source.values()]

    for seat_id, user_id, status, price, currency, coupon_id, merchant_id in session.execute(
        select(
            Seat.id,
            Seat.user_id,
            Seat.status,
            Seat.price_amount,
            Seat.currency,
            Seat.coupon_id,
            Deal.merchant_id,
        )
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.coupon_id.is_not(None))
    ):
        taken = coupons.get(str(coupon_id))
        if taken is None:
            found.append(f"seat {seat_id} took coupon {coupon_id}, which does not exist")
            continue
        if (taken.owner_id, taken.merchant_id, taken.currency) != (user_id, merchant_id, currency):
            found.append(f"seat {seat_id} took coupon {coupon_id}, which is not for it")
        if status in ("held", "paid", "confirmed") and taken.seat_id != seat_id:
            found.append(f"live seat {seat_id} took coupon {coupon_id}, now on {taken.seat_id}")
        if price < 1:
            found.append(f"seat {seat_id} costs {price} after its coupon")
    for coupon in coupons.values():
        if coupon.seat_id is None:
            continue
        on = session.get(Seat, coupon.seat_id)
        if on is None or on.coupon_id != coupon.id:
            found.append(f"coupon {coupon.id} is on seat {coupon.seat_id}, which did not take it")

    for payment_id, amount, price in session.execute(
        select(Payment.id, Payment.amount, Seat.price_amount)
        .join(Seat, Seat.id == Payment.seat_id)
        .where(
            Seat.coupon_id.is_not(None),
            Payment.status.not_in([PaymentStatus.FAILED.value, PaymentStatus.EXPIRED.value]),
        )
    ):
        if amount != price:
            found.append(f"payment {payment_id} asks {amount} for a seat lowered to {price}")
    return found
