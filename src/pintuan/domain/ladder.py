"""Ladder teams (阶梯团) and tipping points (Groupon's original), two ways a deal's price or its
very sale depends on how many buy.

**A ladder** prices a team by the size it reaches. Its first tier is the deal's own
``team_size`` and ``group_price``; further tiers are larger and cheaper (e.g. 2 → 19.90,
5 → 15.90, 10 → 12.90). A ladder team takes members up to the top tier's size, and:

* it succeeds at once when its top tier is full and paid;
* otherwise, when its window ends, it succeeds if its paid seats reached the first tier (its
  seats still held unpaid are released) and fails if not, as any team;
* everyone pays the tier reached: each member paid the first tier's price (or their leader
  price) when joining, and the difference to the reached tier's price comes back to them after
  success, a refund after success of ``source = 'ladder'`` (to the original method or the
  wallet, as the payer chose), taken from the merchant like any refund.

So a team that reached its first tier cannot fail any more (it is *secured*); it keeps filling
to lower everyone's price until its window ends. Its page says which tier it reached and what
the next one needs ("2 more and everyone pays 12.90").

**A tipping point** makes a deal's sale conditional: it sells only if, by its end, its paid
seats reach ``tipping_point``. Until the deal tips, a team whose seats are all paid does not
succeed: it waits, its money held (a hold authorised, not captured; a charge kept by the
platform, not the merchant's), until the deal's end. The payment that brings the deal's waiting
paid seats to the threshold tips it: in that transaction every waiting team succeeds, and teams
filled later succeed as usual. A deal that ends untipped fails its waiting teams, and their
money goes back (holds voided, charges refunded, wallets credited). Only the seats of full,
paid teams count: a half-formed team may still fail, so its seats cannot tip a deal. With a
team size of 1, every paid purchase counts: a plain group purchase.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pintuan.domain.deals import FieldProblem

MAX_TIERS = 5  # beyond the first
MAX_TEAM_SIZE = 100
MAX_TIPPING_POINT = 1_000_000


@dataclass(frozen=True, slots=True)
class Tier:
    size: int
    price: int  # minor units of the deal's currency


@dataclass(frozen=True, slots=True)
class Ladder:
    """Every tier of a ladder deal, the first being the deal's team size and group price."""

    tiers: tuple[Tier, ...]

    @classmethod
    def of(cls, team_size: int, group_price: int, more: Sequence[Tier]) -> Ladder:
        return cls((Tier(team_size, group_price), *more))

    @property
    def first(self) -> Tier:
        return self.tiers[0]

    @property
    def top(self) -> Tier:
        return self.tiers[-1]

    def reached(self, members: int) -> Tier | None:
        """The largest tier ``members`` fill, or None below the first."""
        found = None
        for tier in self.tiers:
            if tier.size <= members:
                found = tier
        return found

    def next_after(self, members: int) -> Tier | None:
        """The smallest tier larger than ``members``, or None at the top."""
        return next((tier for tier in self.tiers if tier.size > members), None)


def refund_for(paid_price: int, tier_price: int) -> int:
    """What a member who paid ``paid_price`` gets back when the team reached ``tier_price``
    (nothing when they paid less already: a leader's price below the tier keeps its bargain)."""
    return max(0, paid_price - tier_price)


def tiers_as_json(more: Sequence[Tier]) -> list[list[int]]:
    """The tiers beyond the first, as a deal stores them."""
    return [[tier.size, tier.price] for tier in more]


def tiers_from_json(stored: object) -> tuple[Tier, ...]:
    """The stored tiers beyond the first (a list, or its JSON text as SQLite's driver gives it);
    empty when the deal has none."""
    rows = json.loads(stored) if isinstance(stored, str | bytes) else stored
    if rows is None:  # SQL NULL, or the JSON null a JSON column may store for None
        return ()
    assert isinstance(rows, list)
    return tuple(Tier(int(size), int(price)) for size, price in rows)


def stored_ladder(team_size: int, group_price: int, stored: object) -> Ladder | None:
    """A deal's whole ladder from its team size, group price and stored further tiers; None for
    a deal that has none."""
    more = tiers_from_json(stored)
    return Ladder.of(team_size, group_price, more) if more else None


def ladder_problems(team_size: int, group_price: int, more: Sequence[Tier]) -> list[FieldProblem]:
    """What is wrong with a ladder's tiers beyond the first, each naming its field."""
    problems: list[FieldProblem] = []
    if not more:
        return [FieldProblem("ladder", "give at least one tier beyond the team size")]
    if len(more) > MAX_TIERS:
        problems.append(FieldProblem("ladder", f"at most {MAX_TIERS} tiers beyond the first"))
    before = Tier(team_size, group_price)
    for index, tier in enumerate(more):
        if not before.size < tier.size <= MAX_TEAM_SIZE:
            problems.append(
                FieldProblem(
                    f"ladder[{index}].size",
                    f"must be larger than {before.size} and at most {MAX_TEAM_SIZE}",
                )
            )
        if not 1 <= tier.price < before.price:
            problems.append(
                FieldProblem(
                    f"ladder[{index}].price",
                    f"must be above 0 and below the tier before's price {before.price}",
                )
            )
        before = tier
    return problems


def tipping_problems(tipping_point: int, stock: int) -> list[FieldProblem]:
    if not 1 <= tipping_point <= min(stock, MAX_TIPPING_POINT):
        return [FieldProblem("tipping_point", f"must be 1 to the stock ({stock}) seats paid")]
    return []


def options_clash(
    *,
    ladder: bool,
    tipping: bool,
    lottery: bool,
    auto_fill: bool,
    team_size: int,
) -> list[FieldProblem]:
    """Options that cannot go together: a ladder's price depends on its own team only, so it
    takes no lottery (whose losers are refunded in full) nor a tipping point (whose teams wait
    full for the deal); a team of one exists only with a tipping point; and a budget fills no
    seats of a ladder, a tipping point or a lottery (``domain/autofill.py``), whose teams end on
    rules of their own."""
    problems: list[FieldProblem] = []
    if ladder and lottery:
        problems.append(FieldProblem("ladder", "a ladder deal cannot also be a lottery"))
    if ladder and tipping:
        problems.append(FieldProblem("ladder", "a ladder deal cannot also have a tipping point"))
    if team_size == 1 and not tipping:
        problems.append(
            FieldProblem("team_size", "a team of one needs a tipping point (at least 2 otherwise)")
        )
    if auto_fill:
        for clash, words in (
            (ladder, "a ladder"),
            (tipping, "a tipping point"),
            (lottery, "a lottery"),
        ):
            if clash:
                problems.append(FieldProblem("auto_fill", f"a deal with {words} fills no seats"))
    return problems


@dataclass(frozen=True, slots=True)
class LadderProgress:
    """Where a ladder team stands: the tier its paid seats secured (None: below the first),
    the next tier and how many more members reach it (None: at the top, or the team ended)."""

    tiers: tuple[Tier, ...]
    reached: Tier | None
    next: Tier | None
    more_needed: int

    @property
    def secured(self) -> bool:
        return self.reached is not None


def progress(ladder: Ladder, *, paid: int, taken: int, forming: bool) -> LadderProgress:
    """A ladder team's progress from its paid and taken seats (a team that ended has no next
    tier: its price is final)."""
    following = ladder.next_after(max(paid, taken)) if forming else None
    return LadderProgress(
        ladder.tiers,
        ladder.reached(paid),
        following,
        following.size - taken if following is not None else 0,
    )
