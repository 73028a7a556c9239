"""Offline evaluation: a candidate policy judged on the slates the feed served.

Each logged slate is replayed: the candidate policy scores the pool the logging policy saw (with
its features), under the rules in force then, and the probability it would have had of each
logged item in each slot, given the logged slots above, goes beside the logged propensity
(``domain.feed.replay_choices``). The rewards are the events logged against each slot, weighed
by ``feed.rewards.slot_reward``. ``domain.feed_estimators`` turns these into IPS, SNIPS and
doubly robust estimates with bootstrap intervals, next to the logged policy's own value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.domain.feed import (
    VIEWER_FEATURES,
    Candidate,
    Policy,
    Rules,
    Viewer,
    replay_choices,
)
from pintuan.domain.feed_estimators import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    Evaluation,
    SlateLog,
    evaluate,
    slot_features,
)
from pintuan.domain.feed_policies import (
    POLICY_KINDS,
    linucb_context,
    new_policy,
    policy_from_state,
)
from pintuan.domain.traffic import day_start
from pintuan.errors import InvalidInput, NotFound
from pintuan.feed.models import FeedImpression, FeedModel, FeedReward
from pintuan.feed.pool_log import decode_pool, read_candidates, slate_pools
from pintuan.feed.rewards import slot_reward
from pintuan.feed.rules import default_weights
from pintuan.feed.slate_log import LoggedPlacement, read_placements

PAGE = 500
# Each kind's parameters a candidate may be given.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "random": (),
    "popularity": ("prior_mean", "prior_weight"),
    "linucb": ("alpha", "ridge"),
}

Progress = Callable[[int, int], None]  # slates read so far, slates in the range


@dataclass(frozen=True, slots=True)
class RewardWeights:
    click: float
    join: float
    pay: float
    team_success: float

    def of(self, events: Sequence[str]) -> float:
        return slot_reward(
            events,
            click=self.click,
            join=self.join,
            pay=self.pay,
            team_success=self.team_success,
        )


def reward_weights(settings: Settings) -> RewardWeights:
    """The weights of the settings ``PINTUAN_FEED_REWARD_*``, as the live feed reads them."""
    return RewardWeights(**default_weights(settings))


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """A candidate policy's estimates over a range of days."""

    policy: str
    first_day: date
    last_day: date
    logged_policies: dict[str, int]  # the policies (A/B arms) that served the slates, counted
    skipped: int  # slates logged with features of another version of the feed
    evaluation: Evaluation


def candidate_policy(session: Session, name: str, params: Mapping[str, float]) -> Policy:
    """The policy to judge: one stored in ``feed_models`` under ``name`` (what it has learnt),
    else a fresh one of the kind ``name``; ``params`` override its parameters."""
    row = session.get(FeedModel, name)
    kind = str(row.state.get("kind")) if row is not None else name
    if kind not in POLICY_KINDS:
        stored = sorted(session.scalars(select(FeedModel.policy)))
        raise NotFound(
            f"No feed policy {name!r}: name a stored policy ({', '.join(stored) or 'none yet'}) "
            f"or a kind ({', '.join(POLICY_KINDS)}).",
            code="feed_policy_not_found",
        )
    unknown = sorted(set(params) - set(PARAMETERS[kind]))
    if unknown:
        allowed = ", ".join(PARAMETERS[kind]) or "none"
        raise InvalidInput(
            f"A {kind} policy has no parameter {', '.join(unknown)} (it takes: {allowed}).",
            code="feed_policy_parameter",
        )
    if row is not None:
        return policy_from_state(name, {**row.state, **params})
    return new_policy(kind, name, **params)


def logged_rules(logged: Mapping[str, Any]) -> Rules:
    """The rules a slate was drawn under, from their logged JSON."""
    cap = logged.get("merchant_cap")
    return Rules(
        exploration=float(logged.get("exploration", 0.0)),
        min_share={str(v): float(s) for v, s in (logged.get("min_share") or {}).items()},
        pins={int(p): str(key) for p, key in (logged.get("pins") or {}).items()},
        boosts={str(k): float(b) for k, b in (logged.get("boosts") or {}).items()},
        merchant_cap=int(cap) if cap is not None else None,
    )


@dataclass
class _Slots:
    logged: list[list[float]]
    target: list[list[float]]
    reward: list[list[float]]
    x_shown: list[list[np.ndarray]]
    x_target: list[list[np.ndarray]]


def _replay(
    impression: FeedImpression,
    pool: list[Candidate] | None,
    placements: Sequence[LoggedPlacement],
    rewards: Mapping[int, list[str]],
    policy: Policy,
    weights: RewardWeights,
    slots: _Slots,
) -> bool:
    history = tuple(float(f) for f in impression.viewer_features)
    if pool is None or len(history) != len(VIEWER_FEATURES):
        return False
    viewer = Viewer(impression.viewer, history)
    shown = [f"{p.kind}:{p.item_id}" for p in placements]
    by_key = {candidate.key: index for index, candidate in enumerate(pool)}
    contexts = np.stack([linucb_context(viewer, c) for c in pool]) if pool else np.zeros((0, 0))
    choices = replay_choices(
        policy, viewer, pool, shown, impression.slots, logged_rules(impression.rules)
    )
    logged: list[float] = []
    target: list[float] = []
    reward: list[float] = []
    x_shown: list[np.ndarray] = []
    x_target: list[np.ndarray] = []
    for k, (placement, key, (eligible, probabilities)) in enumerate(
        zip(placements, shown, choices, strict=True)
    ):
        index = by_key.get(key)
        if index is None:  # not in the pool it was drawn from: a log of another version
            return False
        logged.append(placement.propensity)
        target.append(probabilities[eligible.index(index)] if index in eligible else 0.0)
        reward.append(weights.of(rewards.get(placement.position, [])))
        x_shown.append(slot_features(contexts[index], k))
        expected = (
            np.asarray(probabilities) @ contexts[list(eligible)]
            if eligible
            else np.zeros(contexts.shape[1])
        )
        x_target.append(slot_features(expected, k))
    slots.logged.append(logged)
    slots.target.append(target)
    slots.reward.append(reward)
    slots.x_shown.append(x_shown)
    slots.x_target.append(x_target)
    return True


def _as_log(slots: _Slots) -> SlateLog:
    n = len(slots.reward)
    width = max((len(r) for r in slots.reward), default=0)
    d = next((len(x[0]) for x in slots.x_shown if x), 1)
    logged, target = np.ones((n, width)), np.ones((n, width))
    reward = np.zeros((n, width))
    shown = np.zeros((n, width), dtype=bool)
    x_shown, x_target = np.zeros((n, width, d)), np.zeros((n, width, d))
    for i in range(n):
        k = len(slots.reward[i])
        if k == 0:
            continue
        logged[i, :k], target[i, :k] = slots.logged[i], slots.target[i]
        reward[i, :k], shown[i, :k] = slots.reward[i], True
        x_shown[i, :k], x_target[i, :k] = slots.x_shown[i], slots.x_target[i]
    fold = (np.arange(n) % 2).astype(np.int_)
    return SlateLog(logged, target, reward, shown, x_shown, x_target, fold)


def evaluate_policy(
    session: Session,
    name: str,
    params: Mapping[str, float],
    first_day: date,
    last_day: date,
    weights: RewardWeights,
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Estimate the value of policy ``name`` on the slates served from ``first_day`` through
    ``last_day`` (UTC days, both included); with ``limit``, on the latest ``limit`` of them."""
    if last_day < first_day:
        raise InvalidInput(
            f"The range ends ({last_day}) before it starts ({first_day}).",
            code="feed_empty_range",
        )
    policy = candidate_policy(session, name, params)
    start, end = day_start(first_day), day_start(last_day + timedelta(days=1))
    in_range: tuple[ColumnElement[bool], ...] = (
        FeedImpression.served_at >= start,
        FeedImpression.served_at < end,
    )
    total = len(session.scalars(select(FeedImpression.id).where(*in_range)).all())
    if limit is not None:
        total = min(total, limit)
    if total == 0:
        raise NotFound(
            f"No feed slates were served from {first_day} through {last_day}.",
            code="feed_empty_range",
        )
    slots = _Slots([], [], [], [], [])
    arms: Counter[str] = Counter()
    skipped = read = 0
    after: tuple[datetime, str] | None = None
    if limit is not None:  # the latest ``limit`` slates: start from the oldest of them
        oldest = session.execute(
            select(FeedImpression.served_at, FeedImpression.id)
            .where(*in_range)
            .order_by(FeedImpression.served_at.desc(), FeedImpression.id.desc())
            .offset(total - 1)
            .limit(1)
        ).one()
        in_range = (*in_range, tuple_(FeedImpression.served_at, FeedImpression.id) >= oldest)
    while read < total:
        query = select(FeedImpression).where(*in_range)
        if after is not None:
            query = query.where(tuple_(FeedImpression.served_at, FeedImpression.id) > after)
        page = list(
            session.scalars(query.order_by(FeedImpression.served_at, FeedImpression.id).limit(PAGE))
        )
        if not page:
            break
        ids = [impression.id for impression in page]
        rewards: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for impression_id, position, event in session.execute(
            select(FeedReward.impression_id, FeedReward.position, FeedReward.event).where(
                FeedReward.impression_id.in_(ids)
            )
        ):
            rewards[impression_id][position].append(event)
        pools = slate_pools(session, [(i.pool_id, i.pool) for i in page])
        known = read_candidates(session, pools)
        for impression, pool in zip(page, pools, strict=True):
            if _replay(
                impression,
                decode_pool(pool, known),
                read_placements(impression.placements),
                rewards[impression.id],
                policy,
                weights,
                slots,
            ):
                arms[impression.policy] += 1
            else:
                skipped += 1
        read += len(page)
        after = (page[-1].served_at, page[-1].id)
        if progress is not None:
            progress(min(read, total), total)
    if not slots.reward:
        raise NotFound(
            f"None of the {total} slates served from {first_day} through {last_day} can be "
            "replayed: they were logged by another version of the feed.",
            code="feed_empty_range",
        )
    return EvaluationReport(
        policy=name,
        first_day=first_day,
        last_day=last_day,
        logged_policies=dict(arms),
        skipped=skipped,
        evaluation=evaluate(_as_log(slots), rounds=rounds, level=level, seed=seed),
    )
