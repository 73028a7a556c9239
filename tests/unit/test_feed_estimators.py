"""Off-policy estimates of a slate policy's value: on synthetic logs whose true value is known
exactly, each estimator's 90% bootstrap interval holds the truth in at least 90% of seeded runs.

The logs are drawn by the feed's own ``slot_choice`` (random pools over the five verticals, a
minimum share and a merchant cap). Each pool is small enough to list every slate the logging
and the candidate policy could draw, with its probability, so the candidate's value is exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from pintuan.domain.feed import (
    CANDIDATE_FEATURES,
    VERTICALS,
    VIEWER_FEATURES,
    Candidate,
    Rules,
    Viewer,
    slot_choice,
)
from pintuan.domain.feed_estimators import (
    SlateLog,
    evaluate,
    fit_ridge,
    prefix_ratios,
    slot_features,
)
from pintuan.domain.feed_policies import LinUCBPolicy, PopularityPolicy, linucb_context

RUNS = 100
SLATES = 1000
SLOTS = 2
POOL = 5
VIEWER = Viewer("v_sim", tuple(0.2 for _ in VIEWER_FEATURES))


@dataclass(frozen=True)
class Path:
    """One slate a policy can draw: the pool's indices in slot order, and per slot the logging
    policy's propensity, the candidate's probability and expected features."""

    items: tuple[int, ...]
    logged: tuple[float, ...]
    target: tuple[float, ...]
    x_target: tuple[np.ndarray, ...]
    p_logged: float  # the whole slate's probability under each policy
    p_target: float


def make_pool(rng: random.Random, size: int) -> list[Candidate]:
    pool = []
    for index in range(size):
        vertical = VERTICALS[index % len(VERTICALS)]
        features = [rng.random() for _ in CANDIDATE_FEATURES]
        features[0] = 1.0
        for name in VERTICALS:
            features[CANDIDATE_FEATURES.index(f"vertical_{name}")] = float(name == vertical)
        pool.append(Candidate("deal", f"deal_{index}", vertical, f"m_{index % 3}", tuple(features)))
    return pool


def paths(
    pool: Sequence[Candidate],
    logging: Sequence[float],
    target: Sequence[float],
    rules: Rules,
    features: np.ndarray,
) -> list[Path]:
    """Every slate of SLOTS slots (or fewer, when the rules leave nothing) with probabilities."""
    found: list[Path] = []

    def walk(prefix: list[int], logged: list[float], tprobs: list[float], xs: list) -> None:
        mu = slot_choice(logging, pool, prefix, SLOTS, rules)
        if len(prefix) == SLOTS or mu is None:
            found.append(
                Path(
                    tuple(prefix),
                    tuple(logged),
                    tuple(tprobs),
                    tuple(xs),
                    math.prod(logged),
                    math.prod(tprobs),
                )
            )
            return
        pi = slot_choice(target, pool, prefix, SLOTS, rules)
        assert pi is not None
        assert pi.eligible == mu.eligible
        expected = sum(
            p * features[i, len(prefix)] for i, p in zip(pi.eligible, pi.probabilities, strict=True)
        )
        for index, p_mu in zip(mu.eligible, mu.probabilities, strict=True):
            p_pi = pi.probabilities[pi.eligible.index(index)]
            if p_mu > 0:
                walk([*prefix, index], [*logged, p_mu], [*tprobs, p_pi], [*xs, expected])

    walk([], [], [], [])
    return found


def world(seed: int) -> tuple[list[Path], np.ndarray, np.ndarray, float]:
    """A pool, a logging and a candidate policy, the slots' true click rates and the
    candidate's exact value."""
    rng = random.Random(seed)
    pool = make_pool(rng, POOL)
    rules = Rules(exploration=0.5, min_share={"travel": 0.34}, merchant_cap=2)
    logging_policy = PopularityPolicy()
    for item in pool:
        logging_policy.learn(VIEWER, item, rng.random())
    candidate_policy = LinUCBPolicy(alpha=0.2)
    for item in pool * 4:
        candidate_policy.learn(VIEWER, item, float(rng.random() < 0.5))
    logging = list(logging_policy.scores(VIEWER, pool))
    target = list(candidate_policy.scores(VIEWER, pool))
    # The shopper's hidden click rate of an item in a slot: a little lower further down.
    appeal = [0.1 + 0.5 * rng.random() for _ in pool]
    rates = np.array([[appeal[i] * (1.0 - 0.2 * k) for k in range(SLOTS)] for i in range(POOL)])
    features = np.array(
        [[slot_features(linucb_context(VIEWER, item), k) for k in range(SLOTS)] for item in pool]
    )
    found = paths(pool, logging, target, rules, features)
    assert sum(p.p_logged for p in found) == pytest.approx(1.0)
    assert sum(p.p_target for p in found) == pytest.approx(1.0)
    truth = sum(p.p_target * sum(rates[i, k] for k, i in enumerate(p.items)) for p in found)
    return found, rates, features, truth


def logged_slates(
    found: list[Path], rates: np.ndarray, features: np.ndarray, seed: int
) -> SlateLog:
    """SLATES slates drawn by the logging policy, each slot rewarded at its true rate."""
    d = features.shape[2]
    paths_count = len(found)
    logged = np.ones((paths_count, SLOTS))
    target = np.ones((paths_count, SLOTS))
    rate = np.zeros((paths_count, SLOTS))
    shown = np.zeros((paths_count, SLOTS), dtype=bool)
    x_shown = np.zeros((paths_count, SLOTS, d))
    x_target = np.zeros((paths_count, SLOTS, d))
    for row, path in enumerate(found):
        for k, index in enumerate(path.items):
            logged[row, k], target[row, k] = path.logged[k], path.target[k]
            rate[row, k], shown[row, k] = rates[index, k], True
            x_shown[row, k], x_target[row, k] = features[index, k], path.x_target[k]
    rng = np.random.default_rng(seed)
    picks = rng.choice(paths_count, size=SLATES, p=[p.p_logged for p in found])
    reward = (rng.random((SLATES, SLOTS)) < rate[picks]).astype(np.float64)
    fold = (np.arange(SLATES) % 2).astype(np.int_)
    return SlateLog(
        logged[picks], target[picks], reward, shown[picks], x_shown[picks], x_target[picks], fold
    )


def test_each_estimators_90_percent_interval_holds_the_true_value_in_90_percent_of_runs() -> None:
    held = {"ips": 0, "snips": 0, "dr": 0}
    errors: dict[str, list[float]] = {name: [] for name in held}
    for run in range(RUNS):
        found, rates, features, truth = world(run)
        log = logged_slates(found, rates, features, seed=10_000 + run)
        result = evaluate(log, rounds=1000, level=0.9, seed=run)
        for name, estimate in result.estimates().items():
            held[name] += estimate.holds(truth)
            errors[name].append(estimate.value - truth)
    coverage = {name: count / RUNS for name, count in held.items()}
    print(f"coverage over {RUNS} runs of {SLATES} slates: {coverage}")
    assert all(share >= 0.9 for share in coverage.values()), coverage
    # Unbiased: the mean error is small beside the spread of single runs.
    for name, values in errors.items():
        spread = float(np.std(values))
        assert abs(float(np.mean(values))) < 0.25 * spread, (name, np.mean(values), spread)
    # The reward model earns its place: DR varies less than IPS.
    assert np.std(errors["dr"]) < np.std(errors["ips"])


def test_the_logging_policy_judged_on_its_own_logs_is_its_logged_value() -> None:
    found, rates, features, _ = world(1)
    log = logged_slates(found, rates, features, seed=5)
    same = SlateLog(log.logged, log.logged, log.reward, log.shown, None, None, None)
    result = evaluate(same, rounds=100)
    assert result.ips.value == pytest.approx(result.logged.value)
    assert result.snips.value == pytest.approx(result.logged.value)
    assert result.effective_slates == pytest.approx(SLATES)
    assert result.dr is None


def test_prefix_ratios_multiply_down_the_slate_and_hold_past_its_end() -> None:
    log = SlateLog(
        logged=np.array([[0.5, 0.25, 1.0]]),
        target=np.array([[1.0, 0.5, 0.3]]),
        reward=np.zeros((1, 3)),
        shown=np.array([[True, True, False]]),
    )
    assert prefix_ratios(log).tolist() == [[2.0, 4.0, 4.0]]


def test_a_shown_item_logged_with_no_chance_is_refused() -> None:
    log = SlateLog(
        logged=np.array([[0.0]]),
        target=np.array([[1.0]]),
        reward=np.zeros((1, 1)),
        shown=np.array([[True]]),
    )
    with pytest.raises(ValueError, match="propensity of 0"):
        evaluate(log)


def test_no_slates_is_refused() -> None:
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match="no logged slates"):
        evaluate(SlateLog(empty, empty, empty, empty.astype(bool)))


def test_ridge_recovers_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    theta = np.array([1.0, -2.0, 0.5, 0.0])
    assert fit_ridge(x, x @ theta, ridge=1e-6) == pytest.approx(theta, abs=1e-6)
