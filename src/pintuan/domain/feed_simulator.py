"""A feed simulator: synthetic shoppers with hidden tastes meet the ranking policies.

Each shopper has a hidden liking for each vertical and hidden weights over a candidate's
features; the chance they click an item is a logistic function of both, lower further down the
slate. A catalogue of items across the five verticals (goods many, movies few) supplies each
visit's pool. Every policy meets the same shoppers and pools in the same order (the same random
numbers), draws its slates through ``domain.feed.draw_slate`` under the same rules, is rewarded
with the clicks and learns from every slot it showed.

Regret is measured against an oracle that knows each shopper's click chances and ranks by them
under the same rules (no exploration): per visit, the oracle slate's expected clicks minus the
policy slate's expected clicks, so the curve is free of the clicks' own noise.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pintuan.domain.feed import (
    CANDIDATE_FEATURES,
    VERTICALS,
    VIEWER_FEATURES,
    Candidate,
    Policy,
    Rules,
    Viewer,
    draw_slate,
)
from pintuan.domain.feed_policies import new_policy

POLICIES = ("random", "popularity", "linucb")
# How much of the catalogue each vertical has: a big goods shelf, a small cinema.
CATALOGUE_SHARES = {"goods": 0.45, "food": 0.25, "local": 0.15, "travel": 0.1, "movies": 0.05}
POSITION_DECAY = 0.85  # a slot's click chance, relative to the slot above it


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    visits: int = 2000
    shoppers: int = 200
    catalogue: int = 300
    pool: int = 60
    slots: int = 10
    seed: int = 7
    rules: Rules = field(
        default_factory=lambda: Rules(exploration=0.1, min_share=dict.fromkeys(VERTICALS, 0.1))
    )
    linucb_alpha: float = 0.3


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy's run: per visit its clicks and regret, and its impressions per vertical."""

    policy: str
    clicks: list[float]
    expected: list[float]
    regret: list[float]
    impressions: dict[str, int]

    @property
    def cumulative_reward(self) -> float:
        return float(sum(self.clicks))

    @property
    def cumulative_regret(self) -> float:
        return float(sum(self.regret))

    def shares(self) -> dict[str, float]:
        total = sum(self.impressions.values()) or 1
        return {vertical: self.impressions.get(vertical, 0) / total for vertical in VERTICALS}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    settings: SimulationSettings
    runs: dict[str, PolicyRun]

    def summary(self) -> dict[str, Any]:
        """The figures as plain JSON: per policy its totals and its share of each vertical."""
        return {
            "visits": self.settings.visits,
            "slots": self.settings.slots,
            "seed": self.settings.seed,
            "policies": {
                name: {
                    "cumulative_reward": run.cumulative_reward,
                    "cumulative_regret": run.cumulative_regret,
                    "shares": run.shares(),
                }
                for name, run in self.runs.items()
            },
        }


class _Shopper:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.pseudonym = f"sim_{index}"
        # Most shoppers love one or two verticals; a few like everything a little.
        self.liking = {vertical: rng.gauss(-1.0, 1.0) for vertical in VERTICALS}
        for favourite in rng.sample(VERTICALS, 2 if rng.random() < 0.4 else 1):
            self.liking[favourite] += 2.5
        self.weights = np.array([rng.gauss(0.0, 1.0) for _ in CANDIDATE_FEATURES])
        self.weights[0] = -2.0  # clicks are rare on the whole
        self.clicked: Counter[str] = Counter()
        # A returning shopper's past: clicks drawn from their liking.
        total = sum(math.exp(v) for v in self.liking.values())
        for vertical, value in self.liking.items():
            self.clicked[vertical] = round(10 * math.exp(value) / total)

    def viewer(self) -> Viewer:
        total = sum(self.clicked.values()) or 1
        clicked = [self.clicked[v] / total for v in VERTICALS]
        history = [*clicked, *([0.0] * (len(VIEWER_FEATURES) - len(clicked)))]
        return Viewer(self.pseudonym, tuple(history))

    def click_chance(self, candidate: Candidate, position: int) -> float:
        utility = float(self.weights @ np.asarray(candidate.features))
        utility += self.liking[candidate.vertical]
        return (POSITION_DECAY**position) / (1.0 + math.exp(-utility))


def _catalogue(size: int, rng: random.Random) -> list[Candidate]:
    verticals = list(CATALOGUE_SHARES)
    weights = list(CATALOGUE_SHARES.values())
    items = []
    for index in range(size):
        vertical = rng.choices(verticals, weights=weights)[0]
        features = [rng.random() for _ in CANDIDATE_FEATURES]
        features[0] = 1.0
        features[CANDIDATE_FEATURES.index("is_team")] = float(rng.random() < 0.2)
        features[CANDIDATE_FEATURES.index("is_partner")] = float(rng.random() < 0.3)
        for name in VERTICALS:
            features[CANDIDATE_FEATURES.index(f"vertical_{name}")] = float(name == vertical)
        items.append(
            Candidate("deal", f"sim_{index}", vertical, f"m_{index % 40}", tuple(features))
        )
    return items


class _Oracle:
    """Knows the shopper's click chances (at the top slot) and ranks by them."""

    name = "oracle"

    def __init__(self, shopper: _Shopper) -> None:
        self.shopper = shopper

    def scores(self, viewer: Viewer, candidates: Sequence[Candidate]) -> Sequence[float]:
        return [self.shopper.click_chance(c, 0) for c in candidates]

    def learn(self, viewer: Viewer, candidate: Candidate, reward: float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {}


def _policy(name: str, settings: SimulationSettings) -> Policy:
    if name == "linucb":
        return new_policy("linucb", alpha=settings.linucb_alpha)
    return new_policy(name)


def simulate(
    settings: SimulationSettings, policies: Sequence[str] = POLICIES, progress: Any = None
) -> SimulationResult:
    """Run each policy against the same synthetic shoppers; ``progress(done, total)`` is told
    after every hundred visits."""
    world = random.Random(settings.seed)  # noqa: S311 - a seeded simulation, not a secret
    catalogue = _catalogue(settings.catalogue, world)
    shoppers = [_Shopper(i, world) for i in range(settings.shoppers)]
    # The visits (who comes, which pool) and every click's dice, fixed before any policy runs.
    visits = [
        (world.randrange(settings.shoppers), world.sample(range(len(catalogue)), settings.pool))
        for _ in range(settings.visits)
    ]
    dice = [[world.random() for _ in range(settings.slots)] for _ in range(settings.visits)]
    oracle_rules = Rules(
        exploration=0.0,
        min_share=settings.rules.min_share,
        pins=settings.rules.pins,
        merchant_cap=settings.rules.merchant_cap,
    )
    first_histories = {s.pseudonym: Counter(s.clicked) for s in shoppers}
    runs: dict[str, PolicyRun] = {}
    total = settings.visits * len(policies)
    done = 0
    for name in policies:
        policy = _policy(name, settings)
        # Every policy starts from the same histories.
        histories = {who: Counter(clicked) for who, clicked in first_histories.items()}
        draws = random.Random(settings.seed + 1)  # noqa: S311 - as above
        clicks: list[float] = []
        expected: list[float] = []
        regret: list[float] = []
        impressions: Counter[str] = Counter()
        for visit, (who, picks) in enumerate(visits):
            shopper = shoppers[who]
            shopper.clicked = histories[shopper.pseudonym]
            pool = [catalogue[i] for i in picks]
            viewer = shopper.viewer()
            slate = draw_slate(policy, viewer, pool, settings.slots, settings.rules, draws)
            # With no exploration and no ties the oracle's draw takes no chance.
            best = draw_slate(_Oracle(shopper), viewer, pool, settings.slots, oracle_rules, draws)
            chances = [shopper.click_chance(p.candidate, p.position) for p in slate]
            ideal = sum(shopper.click_chance(p.candidate, p.position) for p in best)
            reward = 0.0
            for placement, chance in zip(slate, chances, strict=True):
                clicked = dice[visit][placement.position] < chance
                reward += clicked
                impressions[placement.candidate.vertical] += 1
                if clicked:
                    shopper.clicked[placement.candidate.vertical] += 1
                policy.learn(viewer, placement.candidate, float(clicked))
            clicks.append(reward)
            expected.append(sum(chances))
            regret.append(ideal - sum(chances))
            done += 1
            if progress is not None and done % 100 == 0:
                progress(done, total)
        runs[name] = PolicyRun(name, clicks, expected, regret, dict(impressions))
    return SimulationResult(settings, runs)
