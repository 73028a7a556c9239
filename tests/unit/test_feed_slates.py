"""The feed's slates: every slot's probabilities, the operators' rules, replayed propensities
and the policies' learning, tried over many random pools."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.feed import (
    CANDIDATE_FEATURES,
    VERTICALS,
    VIEWER_FEATURES,
    Candidate,
    Rules,
    Viewer,
    draw_slate,
    replay_propensities,
    slot_choice,
)
from pintuan.domain.feed_policies import (
    LINUCB_DIMENSIONS,
    LinUCBPolicy,
    PopularityPolicy,
    RandomPolicy,
    linucb_context,
    new_policy,
    policy_from_state,
)

VIEWER = Viewer("v_test", tuple(0.0 for _ in VIEWER_FEATURES))


def candidate(index: int, vertical: str, merchant: str, rng: random.Random) -> Candidate:
    features = [rng.random() for _ in CANDIDATE_FEATURES]
    features[0] = 1.0
    for name in VERTICALS:
        features[CANDIDATE_FEATURES.index(f"vertical_{name}")] = float(name == vertical)
    return Candidate("deal", f"deal_{index}", vertical, merchant, tuple(features))


@st.composite
def pools(draw: st.DrawFn) -> list[Candidate]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    size = draw(st.integers(1, 25))
    verticals = draw(st.lists(st.sampled_from(VERTICALS), min_size=size, max_size=size))
    merchants = draw(st.lists(st.sampled_from("abcd"), min_size=size, max_size=size))
    return [candidate(i, verticals[i], f"m_{merchants[i]}", rng) for i in range(size)]


rules_strategy = st.builds(
    Rules,
    exploration=st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0]),
    min_share=st.dictionaries(st.sampled_from(VERTICALS), st.sampled_from([0.1, 0.2, 0.34])),
    merchant_cap=st.one_of(st.none(), st.integers(1, 4)),
)


def trained_linucb(pool: list[Candidate], seed: int) -> LinUCBPolicy:
    policy = LinUCBPolicy(alpha=0.3)
    rng = random.Random(seed)
    for item in pool:
        policy.learn(VIEWER, item, float(rng.random() < 0.3))
    return policy


def policies(pool: list[Candidate], seed: int) -> list[object]:
    popularity = PopularityPolicy()
    for item in pool[::2]:
        popularity.learn(VIEWER, item, 1.0)
    return [RandomPolicy(), popularity, trained_linucb(pool, seed)]


@settings(max_examples=60, deadline=None)
@given(pool=pools(), rules=rules_strategy, slots=st.integers(1, 12), seed=st.integers(0, 999))
def test_each_slots_probabilities_sum_to_one_and_served_propensities_lie_in_zero_to_one(
    pool: list[Candidate], rules: Rules, slots: int, seed: int
) -> None:
    for policy in (RandomPolicy(), trained_linucb(pool, seed)):
        scores = list(policy.scores(VIEWER, pool))
        placements = draw_slate(policy, VIEWER, pool, slots, rules, random.Random(seed))
        chosen: list[int] = []
        keys = [c.key for c in pool]
        for placement in placements:
            assert 0.0 < placement.propensity <= 1.0
            choice = slot_choice(scores, pool, chosen, slots, rules)
            assert choice is not None
            assert sum(choice.probabilities) == pytest.approx(1.0)
            assert all(p >= 0.0 for p in choice.probabilities)
            assert keys.index(placement.candidate.key) in choice.eligible
            chosen.append(keys.index(placement.candidate.key))
        assert len({p.candidate.key for p in placements}) == len(placements)
        assert len(placements) == min(slots, len(pool)) or rules.merchant_cap is not None


@settings(max_examples=60, deadline=None)
@given(pool=pools(), rules=rules_strategy, slots=st.integers(1, 12), seed=st.integers(0, 999))
def test_the_minimum_share_of_each_vertical_holds_in_every_slate_that_can_hold_it(
    pool: list[Candidate], rules: Rules, slots: int, seed: int
) -> None:
    rules = Rules(exploration=rules.exploration, min_share=rules.min_share)  # no merchant cap
    for policy in policies(pool, seed):
        placements = draw_slate(policy, VIEWER, pool, slots, rules, random.Random(seed))  # type: ignore[arg-type]
        shown = Counter(p.candidate.vertical for p in placements)
        available = Counter(c.vertical for c in pool)
        wanted = {v: math.ceil(share * slots) for v, share in rules.min_share.items()}
        if sum(min(wanted[v], available[v]) for v in wanted) <= slots:
            for vertical in wanted:
                assert shown[vertical] >= min(wanted[vertical], available[vertical]), (
                    vertical,
                    shown,
                )


def test_a_small_vertical_keeps_its_minimum_share_over_many_impressions() -> None:
    rng = random.Random(7)
    # Movies are few and score worst: a greedy policy would never show them.
    pool = [candidate(i, "goods", f"m_{i % 5}", rng) for i in range(40)]
    pool += [candidate(100 + i, "movies", "m_cinema", rng) for i in range(3)]
    popularity = PopularityPolicy()
    for item in pool:
        popularity.learn(VIEWER, item, 0.0 if item.vertical == "movies" else 1.0)
    rules = Rules(exploration=0.05, min_share={"movies": 0.2})
    shown: Counter[str] = Counter()
    for _ in range(500):
        for placement in draw_slate(popularity, VIEWER, pool, 10, rules, rng):
            shown[placement.candidate.vertical] += 1
    assert shown["movies"] / shown.total() >= 0.2
    without = Counter(
        p.candidate.vertical
        for _ in range(100)
        for p in draw_slate(popularity, VIEWER, pool, 10, Rules(exploration=0.05), rng)
    )
    assert without["movies"] / without.total() < 0.1  # the rule is what lifts them


@settings(max_examples=60, deadline=None)
@given(pool=pools(), slots=st.integers(2, 10), seed=st.integers(0, 999), data=st.data())
def test_pins_take_their_position_and_merchant_caps_hold(
    pool: list[Candidate], slots: int, seed: int, data: st.DataObject
) -> None:
    positions = data.draw(st.lists(st.integers(0, slots - 1), unique=True, max_size=3))
    pinned = data.draw(
        st.lists(
            st.sampled_from(pool),
            unique_by=lambda c: c.key,
            min_size=len(positions),
            max_size=len(positions),
        )
        if len(pool) >= len(positions)
        else st.just([])
    )
    pins = {position: c.key for position, c in zip(positions, pinned, strict=False)}
    cap = data.draw(st.integers(1, 3))
    rules = Rules(
        exploration=0.2,
        pins=pins,
        merchant_cap=cap,
        min_share=data.draw(st.dictionaries(st.sampled_from(VERTICALS), st.just(0.2))),
    )
    for policy in policies(pool, seed):
        placements = draw_slate(policy, VIEWER, pool, slots, rules, random.Random(seed))  # type: ignore[arg-type]
        where = {p.candidate.key: p for p in placements}
        for position, key in pins.items():
            # On its own slot, or higher up when nothing else was left to show above it.
            placement = where[key]
            assert placement.position <= position
            assert placement.propensity == 1.0
            assert placement.reason == "pinned"
            if placement.position < position:
                assert all(p.reason == "pinned" for p in placements[placement.position :])
        unpinned = Counter(p.candidate.merchant_id for p in placements if p.reason != "pinned")
        pinned_per_merchant = Counter(
            p.candidate.merchant_id for p in placements if p.reason == "pinned"
        )
        for merchant, count in unpinned.items():
            assert count + pinned_per_merchant[merchant] <= max(cap, pinned_per_merchant[merchant])
        assert [p.position for p in placements] == list(range(len(placements)))


def test_a_pin_further_down_is_kept_for_its_own_position() -> None:
    rng = random.Random(3)
    pool = [candidate(i, "goods", f"m_{i}", rng) for i in range(6)]
    popularity = PopularityPolicy()
    popularity.learn(VIEWER, pool[4], 1.0)  # the policy's favourite is pinned lower down
    rules = Rules(exploration=0.0, pins={3: pool[4].key})
    placements = draw_slate(popularity, VIEWER, pool, 5, rules, rng)
    assert [p.candidate.key for p in placements].count(pool[4].key) == 1
    assert placements[3].candidate.key == pool[4].key


def test_a_pinned_slot_below_does_not_starve_a_vertical_owed_its_share() -> None:
    rng = random.Random(5)
    pool = [candidate(i, "food", "m_food", rng) for i in range(5)]
    pool.append(candidate(9, "travel", "m_travel", rng))
    popularity = PopularityPolicy()
    for item in pool[:5]:
        popularity.learn(VIEWER, item, 1.0)
    rules = Rules(exploration=0.0, min_share={"travel": 0.5}, pins={1: pool[0].key})
    placements = draw_slate(popularity, VIEWER, pool, 2, rules, rng)
    assert [p.candidate.vertical for p in placements] == ["travel", "food"]


@settings(max_examples=60, deadline=None)
@given(pool=pools(), rules=rules_strategy, slots=st.integers(1, 12), seed=st.integers(0, 999))
def test_replayed_propensities_equal_the_logged_ones_for_the_logging_policy(
    pool: list[Candidate], rules: Rules, slots: int, seed: int
) -> None:
    pins = {1: pool[-1].key} if slots > 1 else {}
    rules = Rules(rules.exploration, rules.min_share, pins, {}, rules.merchant_cap)
    for policy in policies(pool, seed):
        placements = draw_slate(policy, VIEWER, pool, slots, rules, random.Random(seed))  # type: ignore[arg-type]
        replayed = replay_propensities(
            policy,  # type: ignore[arg-type]
            VIEWER,
            pool,
            [p.candidate.key for p in placements],
            slots,
            rules,
        )
        assert replayed == pytest.approx([p.propensity for p in placements])


def test_a_policy_that_could_not_have_shown_an_item_replays_it_at_zero() -> None:
    rng = random.Random(1)
    pool = [candidate(i, "goods", "m_a", rng) for i in range(4)]
    rules = Rules(exploration=0.0)
    popularity = PopularityPolicy()
    popularity.learn(VIEWER, pool[0], 1.0)
    assert replay_propensities(popularity, VIEWER, pool, [pool[1].key], 3, rules) == [0.0]
    assert replay_propensities(popularity, VIEWER, pool, ["deal:gone"], 3, rules) == [0.0]


def test_linucb_keeps_the_inverse_of_its_design_matrix_exactly() -> None:
    rng = random.Random(11)
    pool = [candidate(i, VERTICALS[i % 5], "m_a", rng) for i in range(30)]
    policy = LinUCBPolicy(ridge=2.0)
    a = np.eye(LINUCB_DIMENSIONS) * 2.0
    for item in pool * 3:
        policy.learn(VIEWER, item, rng.random())
        x = linucb_context(VIEWER, item)
        a += np.outer(x, x)
    assert np.allclose(policy.a_inverse, np.linalg.inv(a), atol=1e-9)
    assert policy.learnt == 90


def test_linucb_learns_to_rank_the_rewarding_vertical_first() -> None:
    rng = random.Random(2)
    pool = [candidate(i, VERTICALS[i % 5], "m_a", rng) for i in range(50)]
    policy = LinUCBPolicy(alpha=0.1)
    for _ in range(20):
        for item in pool:
            policy.learn(VIEWER, item, 1.0 if item.vertical == "travel" else 0.0)
    scores = policy.scores(VIEWER, pool)
    ranked = sorted(range(len(pool)), key=lambda i: -scores[i])
    assert {pool[i].vertical for i in ranked[:10]} == {"travel"}


@pytest.mark.parametrize("kind", ["random", "popularity", "linucb"])
def test_a_policys_state_round_trips_through_json(kind: str) -> None:
    import json

    rng = random.Random(4)
    pool = [candidate(i, VERTICALS[i % 5], "m_a", rng) for i in range(10)]
    policy = new_policy(kind, f"{kind}-a")
    for item in pool:
        policy.learn(VIEWER, item, rng.random())
    again = policy_from_state(f"{kind}-a", json.loads(json.dumps(policy.state())))
    assert again.name == f"{kind}-a"
    assert again.state() == policy.state()
    assert list(again.scores(VIEWER, pool)) == pytest.approx(list(policy.scores(VIEWER, pool)))


def test_an_unknown_kind_of_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown policy kind"):
        new_policy("oracle")
    with pytest.raises(ValueError, match="unknown policy kind"):
        policy_from_state("x", {"kind": "oracle"})
