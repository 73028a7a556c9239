"""Drawing a slate fast: the rules of ``domain.feed.draw_slate`` with the bookkeeping kept
between slots instead of recounted for each.

``domain.feed`` states the rules as plainly as they can be read, and recounts for every slot
what is taken, what each merchant and vertical has, which candidates are pinned below and every
candidate's boosted score: about 250 microseconds a slot over a pool of 50. Here the boosted
scores are computed once and the candidates sorted by them, and the counts (slots each vertical
has, candidates each vertical and merchant has left, candidates still eligible) are updated as
each slot is filled, so that a slot costs a few microseconds: the best eligible candidates are
the first eligible ones in score order, and how many candidates are eligible is a count.

What a slot's choice may be, and with which probability, is exactly the plain rules': the same
eligible candidates, the same narrowing to the verticals owed their share, the same best ones,
and each served propensity computed by the same expression, so ``replay_propensities`` over the
logged pool gives back every served propensity (the unit tests prove it over random pools). Only
the way the random draw is made differs: a coin with the exploration rate, then a uniform choice
among the best or among every eligible candidate, which gives each candidate the probability the
plain rules state.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pintuan.domain.feed import Candidate, Placement, Rules

_OTHER = -1  # a vertical without a minimum share


def _propensity(explore: float, count: int, best: int) -> float:
    """A slot's probability of serving a candidate: the exploration coin's share of it among
    ``count`` candidates, plus, when it is one of the ``best`` (0: it is not), its share of
    the rest."""
    return explore / count + ((1.0 - explore) / best if best else 0.0)


class _Slate:
    """What is placed so far (chosen slots and pins kept for slots below) and the counts the
    next slot's choice needs."""

    def __init__(
        self, pool: Sequence[Candidate], values: Sequence[float], slots: int, rules: Rules
    ) -> None:
        self.pool = pool
        self.values = values
        self.slots = slots
        self.cap = rules.merchant_cap
        self.explore = max(0.0, min(1.0, rules.exploration))
        # The verticals with a share, in the rules' order, and the slots each is due.
        self.shared = list(rules.min_share)
        code = {vertical: n for n, vertical in enumerate(self.shared)}
        self.due = [math.ceil(max(0.0, min(1.0, rules.min_share[v])) * slots) for v in self.shared]
        self.vertical = [code.get(c.vertical, _OTHER) for c in pool]
        merchants: dict[str, int] = {}
        self.merchant = [merchants.setdefault(c.merchant_id, len(merchants)) for c in pool]
        n_verticals = len(self.shared)
        self.shown = [0] * n_verticals  # placed per vertical
        self.left = [0] * n_verticals  # not placed per vertical
        self.eligible_in = [0] * n_verticals  # eligible per vertical
        self.per_merchant = [0] * len(merchants)  # placed per merchant
        # not placed per merchant and vertical (the last entry: verticals without a share)
        self.merchant_left = [[0] * (n_verticals + 1) for _ in merchants]
        for index in range(len(pool)):
            v = self.vertical[index]
            self.merchant_left[self.merchant[index]][v] += 1
            if v != _OTHER:
                self.left[v] += 1
                self.eligible_in[v] += 1
        # Slots each vertical is still owed (its due less shown, at most its candidates left)
        # and the sum of those above zero, kept as each slot is placed.
        self.owe = [min(d, left) for d, left in zip(self.due, self.left, strict=True)]
        self.owe_sum = sum(w for w in self.owe if w > 0)
        self.eligible = len(pool)
        self.placed = [False] * len(pool)
        self.count = 0  # candidates placed
        # Candidate indices, best score first (stable: equal scores in pool order).
        self.order = sorted(range(len(pool)), key=lambda i: -values[i])
        self.head = 0  # order[:head] is placed or out of the merchant cap for good
        if self.cap is not None and self.cap <= 0:
            for index in range(len(pool)):
                self._drop_eligible(index)

    def copy(self) -> _Slate:
        """The same slate so far, to be drawn on without changing this one: what never changes
        between slots is shared, the counts are copied."""
        other = object.__new__(_Slate)
        other.pool, other.values, other.slots = self.pool, self.values, self.slots
        other.cap, other.explore, other.shared, other.due = (
            self.cap,
            self.explore,
            self.shared,
            self.due,
        )
        other.vertical, other.merchant, other.order = self.vertical, self.merchant, self.order
        other.shown, other.left = self.shown[:], self.left[:]
        other.eligible_in, other.per_merchant = self.eligible_in[:], self.per_merchant[:]
        other.merchant_left = [left[:] for left in self.merchant_left]
        other.owe, other.owe_sum = self.owe[:], self.owe_sum
        other.eligible, other.placed = self.eligible, self.placed[:]
        other.count, other.head = self.count, self.head
        return other

    def _is_eligible(self, index: int) -> bool:
        return not self.placed[index] and (
            self.cap is None or self.per_merchant[self.merchant[index]] < self.cap
        )

    def _drop_eligible(self, index: int) -> None:
        self.eligible -= 1
        v = self.vertical[index]
        if v != _OTHER:
            self.eligible_in[v] -= 1

    def place(self, index: int) -> None:
        """Count ``index`` as taken (a chosen slot, or a pin kept for its own slot below)."""
        placed = self.placed
        if placed[index]:
            return
        cap, per_merchant = self.cap, self.per_merchant
        v, m = self.vertical[index], self.merchant[index]
        was_eligible = cap is None or per_merchant[m] < cap
        placed[index] = True
        self.count += 1
        self.merchant_left[m][v] -= 1
        if v != _OTHER:
            self._count_shown(v)
        if was_eligible:
            self._drop_eligible(index)
        per_merchant[m] += 1
        if cap is not None and per_merchant[m] == cap:
            # The merchant's other candidates are out of the slate from now on.
            for vertical, left in enumerate(self.merchant_left[m]):
                if left:
                    self.eligible -= left
                    if vertical < len(self.shared):
                        self.eligible_in[vertical] -= left

    def place_uncapped(self, index: int) -> None:
        """``place`` for a slate without a merchant cap, of a candidate not placed yet: the
        merchants' counts, which only a cap reads, are left as they are."""
        self.placed[index] = True
        self.count += 1
        self.eligible -= 1
        v = self.vertical[index]
        if v != _OTHER:
            self.eligible_in[v] -= 1
            self._count_shown(v)

    def _count_shown(self, v: int) -> None:
        """One more candidate of the shared vertical ``v`` placed: its counts, and the slots it
        is still owed."""
        shown = self.shown[v] + 1
        left = self.left[v] - 1
        self.shown[v], self.left[v] = shown, left
        owe = min(self.due[v] - shown, left)
        before = self.owe[v]
        self.owe_sum += (owe if owe > 0 else 0) - (before if before > 0 else 0)
        self.owe[v] = owe

    def first_unplaced(self) -> int:
        """Where in score order the first candidate not placed is, the head moved up to it (a
        slate without a cap, with a candidate left to place)."""
        order, placed, head = self.order, self.placed, self.head
        while placed[order[head]]:  # a candidate is left, so this ends
            head += 1
        self.head = head
        return head

    def owed(self) -> list[bool] | None:
        """Which verticals the next slot is narrowed to (None: not narrowed)."""
        total = self.owe_sum
        if total == 0 or total < self.slots - self.count:
            return None
        within = [w > 0 for w in self.owe]
        if not any(e for e, w in zip(self.eligible_in, within, strict=True) if w):
            return None
        return within

    def best(self) -> tuple[list[int], int, list[bool] | None] | None:
        """The next unpinned slot's best candidates (ties in pool order), how many candidates
        it may be drawn from, and the verticals it is narrowed to; None when no candidate is
        eligible. Draws nothing."""
        if self.eligible == 0:
            return None
        owed = self.owed()
        order, values, placed = self.order, self.values, self.placed
        end = len(order)
        if self.cap is None:  # eligible: not placed
            head = self.first_unplaced()
        else:
            head = self.head
            while head < end and not self._is_eligible(order[head]):
                head += 1
            self.head = head
        best: list[int] = []
        top = 0.0
        if owed is None:
            count = self.eligible
            if self.cap is None:
                # The first candidate not placed, and those tied with it.
                top = values[order[head]]
                best.append(order[head])
                for at in range(head + 1, end):
                    index = order[at]
                    if placed[index]:
                        continue
                    if values[index] < top:
                        break
                    best.append(index)
            else:
                for at in range(head, end):
                    index = order[at]
                    if not self._is_eligible(index):
                        continue
                    if best and values[index] < top:
                        break
                    top = values[index]
                    best.append(index)
        else:
            count = sum(e for e, w in zip(self.eligible_in, owed, strict=True) if w)
            vertical = self.vertical
            for at in range(head, end):
                index = order[at]
                v = vertical[index]
                if v == _OTHER or not owed[v] or not self._is_eligible(index):
                    continue
                if best and values[index] < top:
                    break
                top = values[index]
                best.append(index)
        return best, count, owed

    def choose(
        self, rng: random.Random, coin: float | None = None
    ) -> tuple[int, float, str] | None:
        """Draw the next unpinned slot: the candidate's index, its propensity and the reason;
        None when no candidate is eligible. ``coin`` is the exploration coin when it was
        already tossed (``rng.random()``)."""
        found = self.best()
        if found is None:
            return None
        best, count, owed = found
        explore = self.explore
        if explore and (rng.random() if coin is None else coin) < explore:
            picked = self._nth_eligible(rng.randrange(count), owed)
            in_best = picked in best
        else:
            picked = best[0] if len(best) == 1 else best[rng.randrange(len(best))]
            in_best = True
        propensity = _propensity(explore, count, len(best) if in_best else 0)
        reason = "vertical_share" if owed is not None else "best" if in_best else "explore"
        self.place(picked)
        return picked, propensity, reason

    def _nth_eligible(self, n: int, owed: list[bool] | None) -> int:
        if self.cap is None and owed is None:  # eligible: not placed
            for index, taken in enumerate(self.placed):
                if not taken:
                    if n == 0:
                        return index
                    n -= 1
            raise AssertionError("fewer eligible candidates than counted")
        for index in range(len(self.pool)):
            if not self._is_eligible(index):
                continue
            if owed is not None:
                v = self.vertical[index]
                if v == _OTHER or not owed[v]:
                    continue
            if n == 0:
                return index
            n -= 1
        raise AssertionError("fewer eligible candidates than counted")


# How a slot on the path no coin has left is filled (``_Step.kind``).
_FIXED = 0  # a pin: the same for every slate that gets here
_BEST = 1  # the one best candidate, unless the exploration coin says explore
_OPEN = 2  # anything else (ties to break, or the slate ends): each slate draws it itself


@dataclass(frozen=True, slots=True)
class _Step:
    """One slot of the path: what fills it, and the slate before it, where a slate that leaves
    the path there goes on from."""

    kind: int
    before: _Slate
    # Pool indices placed in the slots above, kept rather than gathered from the path: a slate
    # that leaves the path needs them, and most slates leave it.
    chosen: frozenset[int]
    placement: Placement | None = None
    index: int = -1


class SlateStart:
    """Where every slate drawn from one scored pool, for one number of slots under one set of
    rules, starts: the boosted scores, the candidates in score order and the pins kept for
    slots below, computed once. ``draw`` is a slate from here; each draw is independent.

    Most slots of most slates are no draw at all: without the exploration coin and without a
    tie, a slot serves the one best eligible candidate, and what is eligible depends only on
    the slots above. So the slates of one start share a path, built as far as slates walk it:
    each of its slots says what fills it when the coin does not explore, with its propensity
    and reason, and keeps the slate as it was before that slot. A slate follows the path,
    tossing each slot's coin as a fresh draw would, until a coin explores (or a slot needs a
    tie broken); from there it draws on its own from the slate the path kept. The slots, their
    propensities and reasons, and the coins tossed are exactly those of a slate drawn slot by
    slot (``draw_walking``; the unit tests compare the two)."""

    def __init__(
        self, scores: Sequence[float], pool: Sequence[Candidate], slots: int, rules: Rules
    ) -> None:
        values = [
            score + rules.boosts.get(c.key, 0.0) + rules.boosts.get(c.merchant_id, 0.0)
            for score, c in zip(scores, pool, strict=True)
        ]
        self.pool = pool
        self.slots = slots
        by_key = {candidate.key: index for index, candidate in enumerate(pool)}
        # The pins by slot, as pool indices (pins not in the pool are left out).
        self.pins: dict[int, int] = {}
        for position, key in rules.pins.items():
            index = by_key.get(key)
            if index is not None:
                self.pins[position] = index
        self.start = _Slate(pool, values, slots, rules)
        # Pins further down are kept for their own slots from the start; a pin moves up to the
        # first free slot when nothing else is left to show above it.
        self.below: list[tuple[int, int]] = []
        for position in sorted(self.pins):
            index = self.pins[position]
            if 0 < position < slots:
                self.below.append((position, index))
                self.start.place(index)
        self._path: list[_Step] = []
        self._walk = self.start.copy()  # the slate at the end of the path
        self._extending = threading.Lock()

    def draw(self, rng: random.Random) -> list[Placement]:
        """A slate: its slots, each with its propensity and reason."""
        path = self._path
        explore = self.start.explore
        placements: list[Placement] = []
        for position in range(self.slots):
            step = path[position] if position < len(path) else self._extend(position)
            if step is None:  # the slate ends here
                return placements
            coin = None
            if step.kind == _FIXED:
                placements.append(cast(Placement, step.placement))
                continue
            if step.kind == _BEST:
                if not explore:
                    placements.append(cast(Placement, step.placement))
                    continue
                coin = rng.random()
                if coin >= explore:
                    placements.append(cast(Placement, step.placement))
                    continue
            # Off the path: on from the slate as it was before this slot.
            return self._walk_on(
                step.before.copy(), set(step.chosen), position, placements, rng, coin
            )
        return placements

    def draw_walking(self, rng: random.Random, *, quick: bool = True) -> list[Placement]:
        """A slate drawn slot by slot from the start, without the path (what ``draw`` gives);
        with ``quick=False`` every slot goes through ``_Slate.choose`` (what the quick slots
        must equal)."""
        return self._walk_on(self.start.copy(), set(), 0, [], rng, None, quick=quick)

    def _walk_on(
        self,
        slate: _Slate,
        chosen: set[int],
        first: int,
        placements: list[Placement],
        rng: random.Random,
        coin: float | None,
        *,
        quick: bool = True,
    ) -> list[Placement]:
        """The slots from ``first`` on, drawn one by one from ``slate`` (``coin``: the first
        slot's exploration coin, when already tossed).

        Most slots drawn here are the plain case: no merchant cap, no vertical owed its share
        yet, one best candidate (no tie). Such a slot is drawn in this loop (``quick``), as
        ``_Slate.choose`` would draw it: the same coin, the same uniform choice among the
        candidates not placed, the same propensity and reason; any other goes through
        ``choose``. Going through ``choose`` for every slot made a walk of twenty slots half as
        dear again (its calls, and the lists it builds for the general case)."""
        pool, pins, below, slots = self.pool, self.pins, self.below, self.slots
        explore = slate.explore
        order, values, placed = slate.order, slate.values, slate.placed
        end = len(order)
        quick = quick and slate.cap is None
        for position in range(first, slots):
            pinned = pins.get(position) if pins else None
            if pinned is not None and pinned not in chosen:
                slate.place(pinned)
            else:
                owe = slate.owe_sum
                if quick and slate.eligible and (owe == 0 or owe < slots - slate.count):
                    # The first candidate not placed is the best, unless the next one not
                    # placed ties with it (``_Slate.best``'s test: not below it).
                    head = slate.first_unplaced()
                    picked = order[head]
                    top = values[picked]
                    tied = False
                    for at in range(head + 1, end):
                        index = order[at]
                        if not placed[index]:
                            tied = not values[index] < top
                            break
                    if not tied:
                        count = slate.eligible
                        if explore and (rng.random() if coin is None else coin) < explore:
                            drawn = slate._nth_eligible(rng.randrange(count), None)
                            best = drawn == picked
                            picked = drawn
                        else:
                            best = True
                        coin = None
                        # ``_propensity(explore, count, 1 if best else 0)``: x / 1 is x.
                        propensity = explore / count + ((1.0 - explore) if best else 0.0)
                        slate.place_uncapped(picked)
                        chosen.add(picked)
                        placements.append(
                            Placement(
                                pool[picked], position, propensity, "best" if best else "explore"
                            )
                        )
                        continue
                drawn_slot = slate.choose(rng, coin)
                coin = None
                if drawn_slot is not None:
                    picked, propensity, reason = drawn_slot
                    chosen.add(picked)
                    placements.append(Placement(pool[picked], position, propensity, reason))
                    continue
                waiting = [i for p, i in below if p > position and i not in chosen]
                if not waiting:
                    break
                pinned = waiting[0]
            chosen.add(pinned)
            placements.append(Placement(pool[pinned], position, 1.0, "pinned"))
        return placements

    def _extend(self, position: int) -> _Step | None:
        """The path's step for ``position`` (the first slot past its end), made from the slate
        at its end; None when the slate ends there. (A slate leaves the path at a slot each
        slate must draw itself, so the path never grows past one.)"""
        with self._extending:
            if position < len(self._path):  # another thread made it meanwhile
                return self._path[position]
            return self._next_step(position)

    def _next_step(self, position: int) -> _Step | None:
        path, walk = self._path, self._walk
        before = walk.copy()
        # The path grows only past a slot it fills (a pin or a best candidate: an index).
        last = path[-1] if path else None
        chosen = frozenset() if last is None else last.chosen | {last.index}
        pinned = self.pins.get(position)
        if pinned is not None and pinned not in chosen:
            walk.place(pinned)
            step = self._fixed(before, chosen, pinned, position)
        else:
            found = walk.best()
            if found is None:
                waiting = [i for p, i in self.below if p > position and i not in chosen]
                if not waiting:
                    return None
                step = self._fixed(before, chosen, waiting[0], position)
            elif len(found[0]) > 1:
                step = _Step(_OPEN, before, chosen)
            else:
                best, count, owed = found
                picked = best[0]
                walk.place(picked)
                placement = Placement(
                    self.pool[picked],
                    position,
                    _propensity(walk.explore, count, 1),
                    "vertical_share" if owed is not None else "best",
                )
                step = _Step(_BEST, before, chosen, placement, picked)
        path.append(step)
        return step

    def _fixed(self, before: _Slate, chosen: frozenset[int], pinned: int, position: int) -> _Step:
        placement = Placement(self.pool[pinned], position, 1.0, "pinned")
        return _Step(_FIXED, before, chosen, placement, pinned)


def draw_slate_fast(
    scores: Sequence[float],
    pool: Sequence[Candidate],
    slots: int,
    rules: Rules,
    rng: random.Random,
) -> list[Placement]:
    """``domain.feed.draw_slate`` for a pool already scored by the policy (``scores``, one per
    candidate): the same slots with the same propensities and reasons, drawn in a few
    microseconds a slot."""
    return SlateStart(scores, pool, slots, rules).draw(rng)
