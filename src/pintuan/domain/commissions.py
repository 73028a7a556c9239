"""Commissions, the rules, free of storage: a sharer's on the orders their share brought
(referral, 分销) and a pickup point leader's on the orders they hand over (团长佣金).

A deal may pay ``referral_commission_bps`` of what a seat paid to the shopper whose share brought
the order (last-touch attribution). Only one level: the sharer earns on the orders their own
share brought, never on what the people they brought bring (multi-level schemes are illegal in
several markets and left out on purpose).

A commission is frozen while its order may still be refunded, and each refund before then
shrinks it to the commission on what is still paid; once the order's refund window has closed it
is released to the sharer's wallet, and from then on nothing takes it back. A pickup point's
leader earns ``pickup_commission_bps`` of what a seat kept when they hand its order over; that
commission follows the same story, from the hand-over (which opens the refund window)::

    frozen ──(refund window closed)──▶ released
      └────(refunded in full)─────────▶ clawed_back

When the refund window opens: a voucher when redeemed, shipped goods when received, a pickup
when handed over, anything else when its team succeeded (the order has nothing left to happen).
"""

from __future__ import annotations

from enum import StrEnum

from pintuan.domain.ledger import BASIS_POINTS

# The most a deal may pay its sharers: 30 % of a sale.
MAX_REFERRAL_BPS = 3000


class CommissionKind(StrEnum):
    REFERRAL = "referral"  # to the sharer whose share brought the order
    PICKUP = "pickup"  # to the leader of the pickup point that handed the order over


class CommissionStatus(StrEnum):
    FROZEN = "frozen"
    RELEASED = "released"
    CLAWED_BACK = "clawed_back"


def commission_on(paid: int, rate_bps: int) -> int:
    """The commission on ``paid`` minor units at ``rate_bps``, rounded down to a whole minor unit
    (the sharer is never paid a fraction the merchant did not owe)."""
    if paid < 0 or not 0 <= rate_bps <= MAX_REFERRAL_BPS:
        raise ValueError("paid must be >= 0 and the rate within 0..3000 basis points")
    return paid * rate_bps // BASIS_POINTS


def kept_after_refunds(amount: int, paid: int, refunded: int, rate_bps: int) -> int:
    """What stays of a commission of ``amount`` once ``refunded`` of ``paid`` went back: the
    commission on what is still paid, never more than it was."""
    return min(amount, commission_on(max(paid - refunded, 0), rate_bps))
