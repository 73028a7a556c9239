"""The aggregated feed's pure rules: what a candidate and a viewer are to a ranking policy, the
operators' rules around it, and how a slate is drawn so that every slot's propensity is known.

A slate is drawn one slot at a time. For each slot the policy scores the candidates still
eligible (not shown above, within the merchant cap, of an owed vertical when the slots left
are needed for the verticals' minimum shares); the slot goes to the best of them with
probability ``1 - exploration`` (shared evenly among ties) and to a uniformly random one of them
otherwise. Candidates pinned to slots further down are kept for their own slots and count
already towards the merchant caps and the verticals' shares. The
probability the chosen one had is its *propensity*: the probabilities of one slot sum to 1 over
the candidates eligible at that slot, and ``replay_propensities`` recomputes them for any
policy over a logged pool, which is what judging a new policy on past traffic needs. A pinned
slot is no choice (propensity 1).

Nothing here touches storage or HTTP; the features are plain numbers the feed computes.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from pintuan.domain.deals import Vertical

VERTICALS: tuple[str, ...] = tuple(vertical.value for vertical in Vertical)

# A candidate's features, each scaled into [0, 1] by the feed, in this order.
CANDIDATE_FEATURES: tuple[str, ...] = (
    "bias",  # always 1
    "discount",  # 1 - group price / list price
    "fill",  # a team's taken / size; for a deal, its fullest joinable team's
    "time_left",  # share of the window (team) or of the deal's life still ahead
    "price_band",  # log-scaled group price in its currency's minor units
    "distance",  # 1 near the viewer, 0 far or unknown
    "is_team",  # 1 for an almost full team, 0 for a deal
    "is_partner",  # 1 for an outside app's offer
    *(f"vertical_{vertical}" for vertical in VERTICALS),
)
# The viewer's history: the share of their clicks, then of their purchases, in each vertical.
VIEWER_FEATURES: tuple[str, ...] = (
    *(f"clicked_{vertical}" for vertical in VERTICALS),
    *(f"bought_{vertical}" for vertical in VERTICALS),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Something the feed may show: a deal, or a team a few seats from full."""

    kind: str  # "deal" or "team"
    item_id: str
    vertical: str
    merchant_id: str
    features: tuple[float, ...]  # in CANDIDATE_FEATURES order
    # ``kind:item_id``, made once: a slate looks its candidates up by it, twenty a request.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.kind}:{self.item_id}")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the slate is for, as a policy may know them: a pseudonymous id, never personal
    data, and what they clicked and bought by vertical."""

    pseudonym: str
    history: tuple[float, ...]  # in VIEWER_FEATURES order


@dataclass(frozen=True, slots=True)
class Rules:
    """What operators set around the policy."""

    exploration: float = 0.1  # share of slots given to a uniformly random eligible candidate
    # vertical → the least share of each slate's slots it gets when it has candidates
    min_share: Mapping[str, float] = field(default_factory=dict)
    pins: Mapping[int, str] = field(default_factory=dict)  # position (0-based) → candidate key
    boosts: Mapping[str, float] = field(default_factory=dict)  # key or merchant id → added score
    merchant_cap: int | None = None  # at most this many items of one merchant in a slate


class Placement(NamedTuple):
    """One served slot: what, where, with which probability and why (a tuple: a slate makes
    twenty, and a frozen dataclass costs twice as much to make)."""

    candidate: Candidate
    position: int
    propensity: float
    reason: str  # "pinned", "best", "explore" or "vertical_share"


class Policy(Protocol):
    """A ranking policy: scores candidates for a viewer (higher is shown first) and learns from
    rewards. Its state is plain JSON so that every process can load what the worker learnt."""

    name: str

    def scores(self, viewer: Viewer, candidates: Sequence[Candidate]) -> Sequence[float]: ...

    def learn(self, viewer: Viewer, candidate: Candidate, reward: float) -> None: ...

    def state(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SlotChoice:
    """The candidates eligible at one slot (indices into the pool) and their probabilities."""

    eligible: tuple[int, ...]
    probabilities: tuple[float, ...]
    best: frozenset[int]  # indices into the pool of the highest scored eligible candidates
    vertical_share: bool  # eligibility was narrowed to verticals owed their minimum share


def _pinned_below(
    pool: Sequence[Candidate], chosen: Sequence[int], slots: int, rules: Rules
) -> list[int]:
    """Candidates pinned to slots below the next one (indices into the pool, in slot order):
    kept out of the draw so that each lands on its own slot, and counted already for the
    merchant caps and the verticals' shares."""
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    taken = set(chosen)
    below: list[int] = []
    for position in sorted(rules.pins):
        index = by_key.get(rules.pins[position])
        if index is None or index in taken or index in below:
            continue
        if len(chosen) < position < slots:
            below.append(index)
    return below


def _owed_verticals(
    pool: Sequence[Candidate], placed: Sequence[int], slots: int, rules: Rules
) -> dict[str, int]:
    """Slots each vertical is still owed in this slate, for verticals with candidates left."""
    if not rules.min_share:
        return {}
    shown = Counter(pool[index].vertical for index in placed)
    taken = set(placed)
    available = Counter(pool[index].vertical for index in range(len(pool)) if index not in taken)
    owed: dict[str, int] = {}
    for vertical, share in rules.min_share.items():
        wanted = math.ceil(max(0.0, min(1.0, share)) * slots) - shown[vertical]
        wanted = min(wanted, available[vertical])
        if wanted > 0:
            owed[vertical] = wanted
    return owed


def slot_choice(
    scores: Sequence[float],
    pool: Sequence[Candidate],
    chosen: Sequence[int],
    slots: int,
    rules: Rules,
) -> SlotChoice | None:
    """The distribution of the next unpinned slot given what is already in the slate, or None
    when no candidate is eligible."""
    reserved = _pinned_below(pool, chosen, slots, rules)
    placed = [*chosen, *reserved]
    taken = set(placed)
    per_merchant = Counter(pool[index].merchant_id for index in placed)
    eligible = [
        index
        for index in range(len(pool))
        if index not in taken
        and (
            rules.merchant_cap is None or per_merchant[pool[index].merchant_id] < rules.merchant_cap
        )
    ]
    if not eligible:
        return None
    owed = _owed_verticals(pool, placed, slots, rules)
    slots_left = slots - len(placed)
    narrowed = False
    if owed and sum(owed.values()) >= slots_left:
        within = [index for index in eligible if pool[index].vertical in owed]
        if within:
            eligible, narrowed = within, True

    def boosted(index: int) -> float:
        candidate = pool[index]
        return (
            scores[index]
            + rules.boosts.get(candidate.key, 0.0)
            + rules.boosts.get(candidate.merchant_id, 0.0)
        )

    values = {index: boosted(index) for index in eligible}
    top = max(values.values())
    # Ties share the best slot's probability evenly: a policy that cannot tell candidates
    # apart (the random policy scores them all alike) draws uniformly.
    best = frozenset(index for index, value in values.items() if value >= top)
    explore = max(0.0, min(1.0, rules.exploration))
    share = explore / len(eligible)
    probabilities = tuple(
        share + ((1.0 - explore) / len(best) if index in best else 0.0) for index in eligible
    )
    return SlotChoice(tuple(eligible), probabilities, best, narrowed)


def _pinned_here(
    by_key: Mapping[str, int], chosen: Sequence[int], position: int, rules: Rules
) -> int | None:
    """The candidate pinned to ``position`` if it is not in the slate yet."""
    pinned = by_key.get(rules.pins.get(position, ""))
    return pinned if pinned is not None and pinned not in chosen else None


def draw_slate(
    policy: Policy,
    viewer: Viewer,
    pool: Sequence[Candidate],
    slots: int,
    rules: Rules,
    rng: random.Random,
) -> list[Placement]:
    """Fill up to ``slots`` slots from ``pool`` under ``rules``, each with its propensity.

    A pinned candidate takes its own slot, or moves up to the first free one when nothing else
    is left to show above it."""
    scores = list(policy.scores(viewer, pool))
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    chosen: list[int] = []
    placements: list[Placement] = []
    for position in range(slots):
        pinned = _pinned_here(by_key, chosen, position, rules)
        choice = None if pinned is not None else slot_choice(scores, pool, chosen, slots, rules)
        if choice is None:
            below = _pinned_below(pool, chosen, slots, rules)
            pinned = pinned if pinned is not None else (below[0] if below else None)
            if pinned is None:
                break
            chosen.append(pinned)
            placements.append(Placement(pool[pinned], position, 1.0, "pinned"))
            continue
        picked = rng.choices(choice.eligible, weights=choice.probabilities)[0]
        propensity = choice.probabilities[choice.eligible.index(picked)]
        reason = (
            "vertical_share"
            if choice.vertical_share
            else "best"
            if picked in choice.best
            else "explore"
        )
        chosen.append(picked)
        placements.append(Placement(pool[picked], position, propensity, reason))
    return placements


def replay_choices(
    policy: Policy,
    viewer: Viewer,
    pool: Sequence[Candidate],
    shown: Sequence[str],
    slots: int,
    rules: Rules,
) -> list[tuple[tuple[int, ...], tuple[float, ...]]]:
    """For each of ``shown`` (candidate keys, in slot order, as logged): the candidates
    ``policy`` could have put in that slot given the slots above it (indices into the pool)
    and their probabilities; empty where it could have put nothing there."""
    scores = list(policy.scores(viewer, pool))
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    chosen: list[int] = []
    out: list[tuple[tuple[int, ...], tuple[float, ...]]] = []
    for position, key in enumerate(shown):
        index = by_key.get(key)
        pinned = _pinned_here(by_key, chosen, position, rules)
        choice = None if pinned is not None else slot_choice(scores, pool, chosen, slots, rules)
        if choice is None:
            below = _pinned_below(pool, chosen, slots, rules)
            pinned = pinned if pinned is not None else (below[0] if below else None)
            out.append(((pinned,), (1.0,)) if pinned is not None else ((), ()))
        else:
            out.append((choice.eligible, choice.probabilities))
        if index is not None:
            chosen.append(index)
    return out


def replay_propensities(
    policy: Policy,
    viewer: Viewer,
    pool: Sequence[Candidate],
    shown: Sequence[str],
    slots: int,
    rules: Rules,
) -> list[float]:
    """The probability ``policy`` would have had of putting each of ``shown`` (candidate keys,
    in slot order, as logged) in its slot, given the slots above it: 0 where it could not."""
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    out: list[float] = []
    choices = replay_choices(policy, viewer, pool, shown, slots, rules)
    for key, (eligible, probabilities) in zip(shown, choices, strict=True):
        index = by_key.get(key)
        out.append(probabilities[eligible.index(index)] if index in eligible else 0.0)
    return out
