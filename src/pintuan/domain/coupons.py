"""Coupons: money off one seat at one merchant, held in a shopper's account.

A deal gives them; today a lottery deal may give one to each seat its teams' draws did not pick
(``"lottery": {"winners": k, "coupon": {...}}``), **on top of** that seat's full refund: a
shopper who lost the draw gets all their money back whatever the deal says, and the coupon is
the merchant's consolation, not a replacement for the money (which would keep a shopper's money
without a sale).

The rules of a coupon:

* It takes its ``amount`` off the price of one held seat of its merchant's deals, in its
  currency, before any payment of that seat began; the seat's price stays at least one minor
  unit (a free seat has no payment to take). The merchant funds it: the seat simply costs less,
  so the payment, its fee and the merchant's share are all of the lower price.
* Not on ladder or lottery deals, whose price or sale is decided after seats are paid, nor on
  a bargain's purchase, whose price was agreed with the friends who cut it.
* It can be applied until it expires. While its seat is live it is taken; when that seat ends
  without a sale (released, or refunded) it is free again, if it has not expired.
* One coupon, one live seat, and one coupon per seat: both are conditional writes, and the
  database refuses a second live seat with the same coupon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pintuan.domain.deals import FieldProblem

MAX_VALID_DAYS = 365


class CouponSource(StrEnum):
    LOTTERY = "lottery"  # a seat a lottery team's draw did not pick


class CouponState(StrEnum):
    AVAILABLE = "available"
    APPLIED = "applied"  # to a seat not paid for yet, or paid while its team forms
    USED = "used"  # its seat's purchase went through
    EXPIRED = "expired"


# Seats whose end frees the coupon applied to them: they ended without a sale.
FREEING_SEAT_STATES = ("released", "refunded")


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """What a deal gives: ``amount`` off (in the deal's currency), valid ``valid_days``."""

    amount: int
    valid_days: int

    def expires(self, issued_at: datetime) -> datetime:
        return issued_at + timedelta(days=self.valid_days)


def terms_problems(terms: CouponTerms, group_price: int, field: str) -> list[FieldProblem]:
    problems = []
    if not 1 <= terms.amount < group_price:
        problems.append(
            FieldProblem(f"{field}.amount", "must be at least 0.01 and below the group price")
        )
    if not 1 <= terms.valid_days <= MAX_VALID_DAYS:
        problems.append(FieldProblem(f"{field}.valid_days", f"must be 1 to {MAX_VALID_DAYS}"))
    return problems


def lottery_coupon_problems(
    terms: CouponTerms, *, lottery: bool, group_price: int
) -> list[FieldProblem]:
    """A deal's coupon for the seats its draws do not pick: only a lottery gives one, and it
    must fit the deal's group price."""
    problems = (
        [] if lottery else [FieldProblem("lottery.coupon", "is given only by a lottery deal")]
    )
    return problems + terms_problems(terms, group_price, "lottery.coupon")


@dataclass(frozen=True, slots=True)
class SeatToLower:
    """What decides whether a coupon may come off a seat's price, besides their states."""

    merchant_id: str  # of the seat's deal
    currency: str
    price: int
    ladder: bool  # the deal has a ladder
    lottery: bool  # the deal has a lottery
    bargained: bool  # the seat is a bargain's purchase


def why_not_applicable(
    merchant_id: str, currency: str, amount: int, seat: SeatToLower
) -> str | None:
    """Why a coupon (its merchant, currency and amount) cannot come off ``seat``'s price, or
    None when it can."""
    if merchant_id != seat.merchant_id:
        return "it is for another merchant's deals"
    if currency != seat.currency:
        return f"it is in {currency}, the seat in {seat.currency}"
    if seat.ladder or seat.lottery:
        return "ladder and lottery deals decide their price after payment"
    if seat.bargained:
        return "a bargain's price was agreed with the friends who cut it"
    if price_with(seat.price, amount) is None:
        return "it is worth as much as the seat or more"
    return None


def state_of(seat_status: str | None, expires_at: datetime, now: datetime) -> CouponState:
    """A coupon's state from the seat it was last applied to (None: never applied)."""
    if seat_status == "confirmed":
        return CouponState.USED
    if seat_status in ("held", "paid"):
        return CouponState.APPLIED
    return CouponState.AVAILABLE if expires_at > now else CouponState.EXPIRED


def price_with(price: int, amount: int) -> int | None:
    """A seat's price with the coupon taken off; None when the coupon is worth too much for it
    (the seat would cost nothing)."""
    return price - amount if price > amount else None
