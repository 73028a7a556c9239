"""The feed's ranking policies: random, popularity, and a LinUCB contextual bandit.

Each scores candidates for a viewer (``domain.feed.Policy``); ``domain.feed.draw_slate`` turns
scores into a slate with propensities. Their state is plain JSON so that the worker, which
learns from rewards, can hand what it learnt to every serving process.

LinUCB keeps one shared linear model over a candidate's features joined with how much the
viewer has clicked and bought in the candidate's vertical: score = theta.x + alpha *
sqrt(x' A^-1 x), where A = ridge * I + sum(x x') and theta = A^-1 sum(r x). A^-1 is kept up to
date by Sherman-Morrison, so learning from one reward costs O(d^2) and scoring n candidates one
matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pintuan.domain.feed import (
    CANDIDATE_FEATURES,
    VERTICALS,
    VIEWER_FEATURES,
    Candidate,
    Policy,
    Viewer,
)

Vector = npt.NDArray[np.float64]

POLICY_KINDS = ("random", "popularity", "linucb")


class RandomPolicy:
    """Every candidate alike: with ties shared evenly, slates are drawn uniformly."""

    kind = "random"

    def __init__(self, name: str = "random") -> None:
        self.name = name

    def scores(self, viewer: Viewer, candidates: Sequence[Candidate]) -> Sequence[float]:
        return [0.0] * len(candidates)

    def learn(self, viewer: Viewer, candidate: Candidate, reward: float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind}


class PopularityPolicy:
    """The items with the best reward per showing so far first (a smoothed mean, so an item
    never shown starts at the prior rather than at zero or at the top)."""

    kind = "popularity"

    def __init__(
        self,
        name: str = "popularity",
        prior_mean: float = 0.05,
        prior_weight: float = 20.0,
        shown: dict[str, float] | None = None,
        rewarded: dict[str, float] | None = None,
    ) -> None:
        self.name = name
        self.prior_mean = prior_mean
        self.prior_weight = prior_weight
        self.shown: dict[str, float] = dict(shown or {})
        self.rewarded: dict[str, float] = dict(rewarded or {})

    def scores(self, viewer: Viewer, candidates: Sequence[Candidate]) -> Sequence[float]:
        prior = self.prior_mean * self.prior_weight
        return [
            (self.rewarded.get(c.key, 0.0) + prior)
            / (self.shown.get(c.key, 0.0) + self.prior_weight)
            for c in candidates
        ]

    def learn(self, viewer: Viewer, candidate: Candidate, reward: float) -> None:
        self.shown[candidate.key] = self.shown.get(candidate.key, 0.0) + 1.0
        self.rewarded[candidate.key] = self.rewarded.get(candidate.key, 0.0) + reward

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "prior_mean": self.prior_mean,
            "prior_weight": self.prior_weight,
            "shown": self.shown,
            "rewarded": self.rewarded,
        }


# LinUCB's context: the candidate's features, then the viewer's click and purchase shares in
# the candidate's own vertical.
LINUCB_DIMENSIONS = len(CANDIDATE_FEATURES) + 2
_CLICKED = {vertical: VIEWER_FEATURES.index(f"clicked_{vertical}") for vertical in VERTICALS}
_BOUGHT = {vertical: VIEWER_FEATURES.index(f"bought_{vertical}") for vertical in VERTICALS}


def linucb_context(viewer: Viewer, candidate: Candidate) -> Vector:
    """The vector LinUCB scores for this viewer and candidate."""
    history = viewer.history
    clicked = history[_CLICKED[candidate.vertical]] if candidate.vertical in _CLICKED else 0.0
    bought = history[_BOUGHT[candidate.vertical]] if candidate.vertical in _BOUGHT else 0.0
    return np.array((*candidate.features, clicked, bought), dtype=np.float64)


class LinUCBPolicy:
    """A contextual bandit with upper confidence bounds over one shared linear model."""

    kind = "linucb"

    def __init__(
        self,
        name: str = "linucb",
        alpha: float = 0.5,
        ridge: float = 1.0,
        a_inverse: Sequence[Sequence[float]] | None = None,
        b: Sequence[float] | None = None,
        learnt: int = 0,
    ) -> None:
        self.name = name
        self.alpha = alpha
        self.ridge = ridge
        d = LINUCB_DIMENSIONS
        self.a_inverse: Vector = (
            np.array(a_inverse, dtype=np.float64) if a_inverse is not None else np.eye(d) / ridge
        )
        self.b: Vector = np.array(b, dtype=np.float64) if b is not None else np.zeros(d)
        self.learnt = learnt

    def scores(self, viewer: Viewer, candidates: Sequence[Candidate]) -> Sequence[float]:
        if not candidates:
            return []
        # Every candidate's context (``linucb_context``) in one matrix, built from tuples: one
        # array for the pool rather than one per candidate.
        history = viewer.history
        own = {v: (history[_CLICKED[v]], history[_BOUGHT[v]]) for v in VERTICALS}
        none = (0.0, 0.0)
        x = np.array([c.features + own.get(c.vertical, none) for c in candidates], dtype=np.float64)
        theta = self.a_inverse @ self.b
        spread = np.einsum("ij,jk,ik->i", x, self.a_inverse, x)
        values = x @ theta + self.alpha * np.sqrt(np.maximum(spread, 0.0))
        scored: list[float] = values.tolist()
        return scored

    def learn(self, viewer: Viewer, candidate: Candidate, reward: float) -> None:
        x = linucb_context(viewer, candidate)
        ax = self.a_inverse @ x
        self.a_inverse -= np.outer(ax, ax) / (1.0 + float(x @ ax))
        self.b += reward * x
        self.learnt += 1

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "alpha": self.alpha,
            "ridge": self.ridge,
            "a_inverse": self.a_inverse.tolist(),
            "b": self.b.tolist(),
            "learnt": self.learnt,
        }


def new_policy(kind: str, name: str | None = None, **params: Any) -> Policy:
    """A fresh policy of ``kind`` (one of POLICY_KINDS), named ``name`` (default: the kind)."""
    if kind == "random":
        return RandomPolicy(name or kind)
    if kind == "popularity":
        return PopularityPolicy(name or kind, **params)
    if kind == "linucb":
        return LinUCBPolicy(name or kind, **params)
    raise ValueError(f"unknown policy kind {kind!r}")


def policy_from_state(name: str, state: dict[str, Any]) -> Policy:
    """The policy ``state()`` described, under ``name``."""
    params = {key: value for key, value in state.items() if key != "kind"}
    stale = params.get("a_inverse") is not None and len(params["a_inverse"]) != LINUCB_DIMENSIONS
    if state.get("kind") == "linucb" and stale:  # the features changed: start over
        params.pop("a_inverse")
        params.pop("b", None)
        params["learnt"] = 0
    return new_policy(str(state.get("kind")), name, **params)
