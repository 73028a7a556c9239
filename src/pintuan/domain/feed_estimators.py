"""Judging a ranking policy on past traffic: IPS, SNIPS and doubly robust estimates of a slate's
value from the logged slates, with bootstrap confidence intervals.

**What is estimated.** A slate's value is the weighted sum of its slots' rewards,
``sum_k w_k r_k`` (every ``w_k`` is 1 by default: the reward per slate). A policy's value is its
expectation over the logged viewers and pools, with the logged rules.

**Which assumption.** The cascade assumption of ranking: a slot's reward may depend on the item
in it and on the items above it, not on those below (a shopper reads down the feed). Under it
the probability ratio of a slot is the ratio of the *prefix* down to that slot,
``rho_k = prod_{j<=k} pi(a_j | a_<j) / mu(a_j | a_<j)``, where ``mu`` is the logged propensity
and ``pi`` the candidate policy's probability of the same item in the same slot given the same
slots above (``domain.feed.replay_propensities``). Each ``rho_k`` has expectation 1 under the
logging policy, so:

* **IPS**: ``mean_i sum_k w_k rho_ik r_ik``, unbiased wherever ``mu > 0`` where ``pi > 0``;
* **SNIPS**: ``sum_k w_k (sum_i rho_ik r_ik) / (sum_i rho_ik)``, each slot normalised by its
  ratios' sum: a little biased, much less variable;
* **DR** (cascade doubly robust): ``mean_i sum_k w_k [rho_ik (r_ik - q(a_ik)) +
  rho_i,k-1 E_pi q]``, where ``q`` is a reward model and ``E_pi q`` its expectation over the
  candidate policy's choice for slot k given the logged slots above. Unbiased when either the
  propensities or the model are right; the model only lowers the variance.

**The reward model** is a ridge regression of a slot's reward on a feature vector of the item in
it (the caller's choice: the feed uses the bandit's context and the slot's position). Being
linear, its expectation under the candidate policy is its value at the expected feature vector,
so the caller logs ``E_pi x`` per slot rather than every candidate. It is cross-fitted: fitted
on one half of the slates and applied to the other, so no slate's own reward shapes its own
correction.

**Intervals** come from the bootstrap over slates (the reward model held fixed): resample the
slates with replacement ``rounds`` times, recompute, and take the bias-corrected and
accelerated (BCa) percentile interval, since importance-weighted estimates are skewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

ESTIMATORS = ("ips", "snips", "dr")
DEFAULT_ROUNDS = 1000
DEFAULT_LEVEL = 0.9


@dataclass(frozen=True, slots=True)
class SlateLog:
    """``n`` logged slates of up to ``K`` slots, as arrays of shape (n, K).

    A slot a slate did not fill has ``shown`` False; its propensities and reward are ignored."""

    logged: Array  # the logging policy's propensity of the shown item
    target: Array  # the candidate policy's probability of it, given the logged slots above
    reward: Array
    shown: npt.NDArray[np.bool_]
    # For doubly robust: the shown item's features and the candidate policy's expected features,
    # shape (n, K, d); the half each slate is in (0 or 1), shape (n,).
    x_shown: Array | None = None
    x_target: Array | None = None
    fold: npt.NDArray[np.int_] | None = None

    @property
    def slates(self) -> int:
        return int(self.reward.shape[0])


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float

    def holds(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The candidate policy's estimated value beside the logging policy's actual value."""

    slates: int
    logged: Estimate  # the reward per slate actually seen
    ips: Estimate
    snips: Estimate
    dr: Estimate | None  # None without features for the reward model
    # Kish's effective sample size of the whole-slate ratios: how many slates the estimate
    # is really worth (few means the candidate policy is far from the logged one).
    effective_slates: float
    # Slates with a slot the candidate policy could never have filled as logged.
    unsupported: int
    level: float
    rounds: int

    def estimates(self) -> dict[str, Estimate]:
        found = {"ips": self.ips, "snips": self.snips}
        if self.dr is not None:
            found["dr"] = self.dr
        return found


def prefix_ratios(log: SlateLog) -> Array:
    """``rho_ik``: the probability ratio of slate i's prefix down to slot k. A slot not shown
    keeps the ratio of the slots above it."""
    safe = np.where(log.shown, log.logged, 1.0)
    if np.any(safe <= 0.0):
        raise ValueError("a shown item has a logged propensity of 0: it could not have been shown")
    step = np.where(log.shown, log.target / safe, 1.0)
    return np.cumprod(step, axis=1).astype(np.float64)


def slot_features(context: Array, position: int) -> Array:
    """The reward model's features of an item in a slot: its context and how high the slot is
    (1 at the top, 1/2 below it, ...), since shoppers act less on items further down."""
    return np.append(context, 1.0 / (1.0 + position)).astype(np.float64)


def fit_ridge(x: Array, y: Array, ridge: float = 1.0) -> Array:
    """Ridge regression's coefficients: argmin |x theta - y|^2 + ridge |theta|^2."""
    d = x.shape[1]
    return np.linalg.solve(x.T @ x + ridge * np.eye(d), x.T @ y).astype(np.float64)


def cross_fitted_predictions(log: SlateLog, ridge: float = 1.0) -> tuple[Array, Array]:
    """The reward model's prediction for the shown item and its expectation under the candidate
    policy, each slate's from the model fitted on the other half."""
    if log.x_shown is None or log.x_target is None or log.fold is None:
        raise ValueError("doubly robust needs the features of the shown and expected items")
    q_shown = np.zeros_like(log.reward)
    q_target = np.zeros_like(log.reward)
    for fold in (0, 1):
        train = (log.fold != fold)[:, None] & log.shown
        if not train.any():  # one half is empty: fit on what there is
            train = log.shown
        theta = fit_ridge(log.x_shown[train], log.reward[train], ridge)
        rows = log.fold == fold
        q_shown[rows] = log.x_shown[rows] @ theta
        q_target[rows] = log.x_target[rows] @ theta
    shown = log.shown.astype(np.float64)
    return q_shown * shown, q_target * shown


def _weights(log: SlateLog, weights: Array | None) -> Array:
    slots = log.reward.shape[1]
    if weights is None:
        return np.ones(slots)
    if weights.shape != (slots,):
        raise ValueError(f"one weight per slot is needed: {slots}, not {weights.shape}")
    return weights


def _interval(samples: Array, value: float, leave_one_out: Array, level: float) -> Estimate:
    """The bias-corrected and accelerated (BCa) bootstrap interval: the percentile interval
    moved for the bootstrap's median bias and for skew (from the jackknife, ``leave_one_out``
    being the estimate without each slate). Importance weights make these estimates skewed to
    the right, where the plain percentile interval falls short of its level."""
    normal = NormalDist()
    below = float(np.mean(samples < value)) + 0.5 * float(np.mean(samples == value))
    below = min(max(below, 1.0 / (len(samples) + 1)), 1.0 - 1.0 / (len(samples) + 1))
    bias = normal.inv_cdf(below)
    spread = leave_one_out.mean() - leave_one_out
    squares = float((spread**2).sum())
    acceleration = float((spread**3).sum()) / (6.0 * squares**1.5) if squares > 0 else 0.0
    tail = (1.0 - level) / 2.0
    quantiles = []
    for z in (normal.inv_cdf(tail), normal.inv_cdf(1.0 - tail)):
        moved = bias + (bias + z) / (1.0 - acceleration * (bias + z))
        quantiles.append(normal.cdf(moved))
    low, high = np.quantile(samples, quantiles)
    return Estimate(value, float(low), float(high))


def evaluate(
    log: SlateLog,
    *,
    weights: Array | None = None,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    ridge: float = 1.0,
) -> Evaluation:
    """IPS, SNIPS and (with features) DR estimates of the candidate policy's slate value, each
    with a ``level`` bootstrap interval over ``rounds`` resamplings seeded by ``seed``."""
    if log.slates == 0:
        raise ValueError("no logged slates to judge a policy on")
    if not 0.0 < level < 1.0:
        raise ValueError("the interval's level must lie between 0 and 1")
    w = _weights(log, weights)
    n = log.slates
    shown = log.shown.astype(np.float64)
    reward = log.reward * shown
    rho = prefix_ratios(log)
    rho_above = np.concatenate([np.ones((log.slates, 1)), rho[:, :-1]], axis=1)
    logged_i = reward @ w
    ips_i = (rho * reward) @ w
    numerators = rho * reward  # SNIPS: per slot, summed over slates
    denominators = rho
    dr_i: Array | None = None

    def snips_value(num: Array, den: Array) -> Array:
        ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.asarray(ratio @ w)

    if log.x_shown is not None:
        q_shown, q_target = cross_fitted_predictions(log, ridge)
        dr_i = (rho * (reward - q_shown) + rho_above * q_target) @ w

    # A round's resample as how many times each slate was drawn, so that a round is one
    # matrix product; rounds go in batches that bound the memory.
    rng = np.random.default_rng(seed)
    per_slate = np.stack([logged_i, ips_i, dr_i if dr_i is not None else np.zeros(n)], axis=1)
    batch = max(1, min(rounds, 2_000_000 // n))
    means: list[Array] = []
    snips_samples: list[Array] = []
    done = 0
    while done < rounds:
        size = min(batch, rounds - done)
        drawn = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        counts = counts.astype(np.float64)
        means.append(counts @ per_slate / n)
        snips_samples.append(snips_value(counts @ numerators, counts @ denominators))
        done += len(counts)
    mean_samples = np.concatenate(means)

    def mean_estimate(column: int) -> Estimate:
        values = per_slate[:, column]
        value = float(values.mean())
        leave_one_out = (value * n - values) / max(n - 1, 1)
        return _interval(mean_samples[:, column], value, leave_one_out, level)

    num_total, den_total = numerators.sum(axis=0), denominators.sum(axis=0)
    snips = _interval(
        np.concatenate(snips_samples),
        float(snips_value(num_total, den_total)),
        snips_value(num_total - numerators, den_total - denominators),
        level,
    )
    whole = rho[:, -1]
    total = float(whole.sum())
    squares = float((whole**2).sum())
    unsupported = int(np.any(log.shown & (log.target <= 0.0), axis=1).sum())
    return Evaluation(
        slates=n,
        logged=mean_estimate(0),
        ips=mean_estimate(1),
        snips=snips,
        dr=mean_estimate(2) if dr_i is not None else None,
        effective_slates=total**2 / squares if squares > 0 else 0.0,
        unsupported=unsupported,
        level=level,
        rounds=rounds,
    )
