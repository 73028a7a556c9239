"""Bargains (砍价): a shopper opens a bargain on a deal and friends help cut its price.

A merchant gives a deal bargain terms: the floor price, how many helpers it takes to reach it,
and how many hours a bargain stays open. A shopper opens one bargain per deal at a time, at the
deal's list price; each signed-in friend (not the owner, once per account, device and network
address) cuts it by the next amount of a schedule fixed when it was opened, so the floor is
reached exactly with the last helper. The owner buys one unit at the price reached, alone,
before the deadline::

    open ──the owner's seat is paid──▶ bought
      └──deadline passes with no paid seat──▶ expired

The schedule is derived from the bargain's secret seed: ``helpers`` amounts of at least one
minor unit each, summing exactly to what may be cut, with random-looking weights (HMAC-SHA256 of
the seed and the cut's position) apportioned by the largest remainder, integers only. Earlier
helpers tend to cut more (each weight is scaled by the helpers still to come), the familiar
shape of a bargain that starts fast and slows near the floor. Anyone holding the seed can
recompute every cut, which is how the audit checks them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pintuan.domain.deals import FieldProblem
from pintuan.domain.teams import SeatStatus

MIN_HELPERS = 2
MAX_HELPERS = 100
MIN_HOURS = 1
MAX_HOURS = 168
SEED_BYTES = 32
# One in 2**32 of randomness per weight, on top of a floor of 2**32, so no weight is tiny.
_WEIGHT_FLOOR = 1 << 32
# A seat in one of these states was paid for: its bargain was bought.
PAID_SEATS = (SeatStatus.PAID.value, SeatStatus.CONFIRMED.value, SeatStatus.REFUNDED.value)


class BargainStatus(StrEnum):
    OPEN = "open"
    BOUGHT = "bought"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class BargainTerms:
    """A deal's bargain terms: the floor price (minor units of the deal's currency), the cuts
    it takes to reach it, and how long a bargain stays open."""

    floor_amount: int
    helpers: int
    hours: int


def terms_problems(terms: BargainTerms, list_price: int) -> list[FieldProblem]:
    """What is wrong with a deal's bargain terms, each naming its field: the floor is below the
    list price by at least one minor unit per helper, so every cut takes something."""
    problems: list[FieldProblem] = []
    if not MIN_HELPERS <= terms.helpers <= MAX_HELPERS:
        problems.append(FieldProblem("helpers", f"must be {MIN_HELPERS} to {MAX_HELPERS}"))
    if not MIN_HOURS <= terms.hours <= MAX_HOURS:
        problems.append(FieldProblem("hours", f"must be {MIN_HOURS} to {MAX_HOURS}"))
    if terms.floor_amount < 1:
        problems.append(FieldProblem("floor_price.amount", "must be at least 1 minor unit"))
    elif terms.floor_amount >= list_price:
        problems.append(FieldProblem("floor_price.amount", "must be below the deal's list price"))
    elif terms.helpers >= MIN_HELPERS and list_price - terms.floor_amount < terms.helpers:
        problems.append(
            FieldProblem(
                "floor_price.amount",
                f"leaves {list_price - terms.floor_amount} minor units to cut, fewer than the "
                f"{terms.helpers} helpers: each cut takes at least one",
            )
        )
    return problems


def _weight(key: bytes, index: int) -> int:
    digest = hmac.new(key, index.to_bytes(4, "big"), hashlib.sha256).digest()
    return _WEIGHT_FLOOR + int.from_bytes(digest[:4], "big")


def cut_schedule(seed: str, total: int, helpers: int) -> list[int]:
    """The ``helpers`` cut amounts of a bargain whose seed is ``seed`` (hex), which take
    ``total`` minor units off its price: each at least 1, summing exactly to ``total``.

    Each cut gets 1, and what is left is shared by weight (largest remainder: the floors of the
    exact shares, then one more unit to the largest fractional parts, ties to the earlier cut).
    """
    if helpers < 1:
        raise ValueError("a bargain needs at least one helper")
    if total < helpers:
        raise ValueError(f"{total} minor units cannot make {helpers} cuts of at least 1")
    key = bytes.fromhex(seed)
    weights = [_weight(key, i) * (helpers - i) for i in range(helpers)]
    whole = sum(weights)
    left = total - helpers
    shares = [left * w // whole for w in weights]
    remainders = [left * w % whole for w in weights]
    short = left - sum(shares)
    for i in sorted(range(helpers), key=lambda i: (-remainders[i], i))[:short]:
        shares[i] += 1
    return [1 + share for share in shares]


def price_after(start: int, schedule: list[int], cuts: int) -> int:
    """The price after the first ``cuts`` cuts of ``schedule``."""
    return start - sum(schedule[:cuts])


def shown_status(
    status: str, expires_at: datetime, seat_status: str | None, now: datetime
) -> BargainStatus:
    """What a bargain is to its readers: bought once its seat is paid (the worker writes it
    down later), expired past its deadline without a paid seat, else as stored. A seat bought
    before the deadline and still held for its payment keeps the bargain open until the hold
    ends."""
    if seat_status in PAID_SEATS or status == BargainStatus.BOUGHT:
        return BargainStatus.BOUGHT
    if status == BargainStatus.EXPIRED or (expires_at <= now and seat_status != SeatStatus.HELD):
        return BargainStatus.EXPIRED
    return BargainStatus.OPEN
