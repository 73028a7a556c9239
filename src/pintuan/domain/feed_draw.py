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
from collections.abc import Sequence

from pintuan.domain.feed import Candidate, Placement, Rules

_OTHER = -1  # a vertical without a minimum share


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
        if self.placed[index]:
            return
        was_eligible = self._is_eligible(index)
        self.placed[index] = True
        self.count += 1
        v, m = self.vertical[index], self.merchant[index]
        self.merchant_left[m][v] -= 1
        if v != _OTHER:
            self.shown[v] += 1
            self.left[v] -= 1
            owe = min(self.due[v] - self.shown[v], self.left[v])
            self.owe_sum += max(owe, 0) - max(self.owe[v], 0)
            self.owe[v] = owe
        if was_eligible:
            self._drop_eligible(index)
        self.per_merchant[m] += 1
        if self.cap is not None and self.per_merchant[m] == self.cap:
            # The merchant's other candidates are out of the slate from now on.
            for vertical, left in enumerate(self.merchant_left[m]):
                if left:
                    self.eligible -= left
                    if vertical < len(self.shared):
                        self.eligible_in[vertical] -= left

    def owed(self) -> list[bool] | None:
        """Which verticals the next slot is narrowed to (None: not narrowed)."""
        total = self.owe_sum
        if total == 0 or total < self.slots - self.count:
            return None
        within = [w > 0 for w in self.owe]
        if not any(e for e, w in zip(self.eligible_in, within, strict=True) if w):
            return None
        return within

    def choose(self, rng: random.Random) -> tuple[int, float, str] | None:
        """Draw the next unpinned slot: the candidate's index, its propensity and the reason;
        None when no candidate is eligible."""
        if self.eligible == 0:
            return None
        owed = self.owed()
        order, values = self.order, self.values
        while self.head < len(order) and not self._is_eligible(order[self.head]):
            self.head += 1
        if owed is None:
            count = self.eligible
            best: list[int] = []
            top = 0.0
            for at in range(self.head, len(order)):
                index = order[at]
                if not self._is_eligible(index):
                    continue
                if best and values[index] < top:
                    break
                top = values[index]
                best.append(index)
        else:
            count = sum(e for e, w in zip(self.eligible_in, owed, strict=True) if w)
            best, top = [], 0.0
            vertical = self.vertical
            for at in range(self.head, len(order)):
                index = order[at]
                v = vertical[index]
                if v == _OTHER or not owed[v] or not self._is_eligible(index):
                    continue
                if best and values[index] < top:
                    break
                top = values[index]
                best.append(index)
        explore = self.explore
        if rng.random() < explore:
            picked = self._nth_eligible(rng.randrange(count), owed)
        else:
            picked = best[rng.randrange(len(best))]
        in_best = picked in best
        propensity = explore / count + ((1.0 - explore) / len(best) if in_best else 0.0)
        reason = "vertical_share" if owed is not None else "best" if in_best else "explore"
        self.place(picked)
        return picked, propensity, reason

    def _nth_eligible(self, n: int, owed: list[bool] | None) -> int:
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
    values = [
        score + rules.boosts.get(c.key, 0.0) + rules.boosts.get(c.merchant_id, 0.0)
        for score, c in zip(scores, pool, strict=True)
    ]
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    slate = _Slate(pool, values, slots, rules)
    # Pins further down are kept for their own slots from the start; a pin moves up to the
    # first free slot when nothing else is left to show above it.
    below: list[tuple[int, int]] = []
    for position in sorted(rules.pins):
        index = by_key.get(rules.pins[position])
        if index is not None and 0 < position < slots:
            below.append((position, index))
            slate.place(index)
    chosen: set[int] = set()
    placements: list[Placement] = []
    for position in range(slots):
        pinned = by_key.get(rules.pins.get(position, ""))
        if pinned is not None and pinned not in chosen:
            slate.place(pinned)
        else:
            drawn = slate.choose(rng)
            if drawn is not None:
                picked, propensity, reason = drawn
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
