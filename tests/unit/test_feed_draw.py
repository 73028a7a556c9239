"""The fast slate draw serves what the plain rules of ``domain.feed`` state: over random pools,
rules and policies, every served slot is one the rules allowed, with the propensity and reason
they give it, the slate ends where theirs would, and each candidate is drawn as often as its
probability says."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.feed import (
    VERTICALS,
    Candidate,
    Placement,
    Policy,
    Rules,
    draw_slate,
    replay_choices,
    slot_choice,
)
from pintuan.domain.feed_draw import SlateStart, _Slate, draw_slate_fast
from tests.unit.test_feed_slates import VIEWER, candidate, policies, pools

MISSING = "deal:not_in_the_pool"


def the_policies(pool: list[Candidate], seed: int) -> list[Policy]:
    """Random, popularity and a trained LinUCB, as the plain rules' tests use them."""
    return [cast(Policy, policy) for policy in policies(pool, seed)]


@st.composite
def pools_and_rules(draw: st.DrawFn) -> tuple[list[Candidate], Rules, int]:
    pool = draw(pools())
    keys = [c.key for c in pool]
    slots = draw(st.integers(1, 30))
    pins = draw(
        st.dictionaries(st.integers(0, slots + 2), st.sampled_from([*keys, MISSING]), max_size=3)
    )
    boosts = draw(
        st.dictionaries(
            st.sampled_from([*keys, "m_a", "m_b"]), st.sampled_from([0.5, 1.0, 5.0]), max_size=3
        )
    )
    rules = Rules(
        exploration=draw(st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0])),
        min_share=draw(
            st.dictionaries(st.sampled_from(VERTICALS), st.sampled_from([0.05, 0.1, 0.2, 0.34]))
        ),
        pins=pins,
        boosts=boosts,
        merchant_cap=draw(st.one_of(st.none(), st.integers(1, 4))),
    )
    return pool, rules, slots


def domain_reason(
    policy: Policy, pool: list[Candidate], shown: list[str], slots: int, rules: Rules, index: int
) -> str:
    """The reason the plain rules give for serving pool[index] after ``shown``."""
    by_key = {c.key: i for i, c in enumerate(pool)}
    choice = slot_choice(
        list(policy.scores(VIEWER, pool)), pool, [by_key[k] for k in shown], slots, rules
    )
    assert choice is not None
    if choice.vertical_share:
        return "vertical_share"
    return "best" if index in choice.best else "explore"


@settings(max_examples=150, deadline=None)
@given(pools_and_rules(), st.integers(0, 2**32 - 1))
def test_every_served_slot_is_one_the_plain_rules_allow_with_their_propensity_and_reason(
    drawn: tuple[list[Candidate], Rules, int], seed: int
) -> None:
    pool, rules, slots = drawn
    for policy in the_policies(pool, seed):
        rng = random.Random(seed)
        placements = draw_slate_fast(policy.scores(VIEWER, pool), pool, slots, rules, rng)
        shown = [p.candidate.key for p in placements]
        # One extra slot after the last: the plain rules have nothing for it either.
        choices = replay_choices(policy, VIEWER, pool, [*shown, MISSING], slots, rules)
        by_key = {c.key: i for i, c in enumerate(pool)}
        for n, placement in enumerate(placements):
            index = by_key[placement.candidate.key]
            eligible, probabilities = choices[n]
            assert placement.position == n
            assert index in eligible
            assert placement.propensity == probabilities[eligible.index(index)]
            if placement.reason == "pinned":
                assert probabilities == (1.0,)
            else:
                assert placement.reason == domain_reason(
                    policy, pool, shown[:n], slots, rules, index
                )
        if len(placements) < slots:
            assert choices[len(placements)] == ((), ())


@settings(max_examples=60, deadline=None)
@given(pools(), st.integers(0, 2**32 - 1))
def test_without_exploration_or_ties_the_fast_draw_serves_the_plain_rules_slate(
    pool: list[Candidate], seed: int
) -> None:
    rules = Rules(exploration=0.0, min_share=dict.fromkeys(VERTICALS, 0.1), merchant_cap=2)
    linucb = the_policies(pool, seed)[2]
    scores = linucb.scores(VIEWER, pool)
    plain = draw_slate(linucb, VIEWER, pool, 12, rules, random.Random(seed))
    fast = draw_slate_fast(scores, pool, 12, rules, random.Random(seed))
    assert fast == plain


@settings(max_examples=80, deadline=None)
@given(pools_and_rules(), st.integers(0, 2**32 - 1))
def test_slates_drawn_from_one_start_are_each_the_slate_a_fresh_draw_gives(
    drawn: tuple[list[Candidate], Rules, int], seed: int
) -> None:
    # The feed keeps one start per pool and draws many slates from it: a draw must leave the
    # start as it was, so that the tenth slate is what a fresh draw with the same coins serves.
    pool, rules, slots = drawn
    scores = the_policies(pool, seed)[2].scores(VIEWER, pool)
    start = SlateStart(scores, pool, slots, rules)
    for n in range(4):
        assert start.draw(random.Random(seed + n)) == draw_slate_fast(
            scores, pool, slots, rules, random.Random(seed + n)
        )


def test_each_candidate_is_drawn_as_often_as_its_propensity_says() -> None:
    rng = random.Random(7)
    pool = [
        candidate(i, VERTICALS[i % 3], f"m_{'abc'[i % 3]}", rng)
        for i in range(12)  # three verticals, three merchants
    ]
    rules = Rules(
        exploration=0.3, min_share={VERTICALS[2]: 0.34}, merchant_cap=2, boosts={"m_a": 0.2}
    )
    linucb = the_policies(pool, 7)[2]
    scores = linucb.scores(VIEWER, pool)
    draws = 20_000
    slot_counts: list[Counter[str]] = [Counter() for _ in range(3)]
    for n in range(draws):
        slate = draw_slate_fast(scores, pool, 3, rules, random.Random(n))
        for placement in slate:
            slot_counts[placement.position][placement.candidate.key] += 1
    # The first slot's distribution is the plain rules' choice over the whole pool.
    eligible, probabilities = replay_choices(linucb, VIEWER, pool, [MISSING], 3, rules)[0]
    for index, probability in zip(eligible, probabilities, strict=True):
        seen = slot_counts[0][pool[index].key] / draws
        spread = (probability * (1 - probability) / draws) ** 0.5
        assert abs(seen - probability) <= 5 * spread + 1e-9
    # Later slots: served as often as the plain rules' own draw serves them.
    plain: list[Counter[str]] = [Counter() for _ in range(3)]
    for n in range(draws):
        for placement in draw_slate(linucb, VIEWER, pool, 3, rules, random.Random(n)):
            plain[placement.position][placement.candidate.key] += 1
    for position in (1, 2):
        for key in {*plain[position], *slot_counts[position]}:
            p = plain[position][key] / draws
            q = slot_counts[position][key] / draws
            spread = ((p * (1 - p) + q * (1 - q)) / draws) ** 0.5
            assert abs(p - q) <= 5 * spread + 1e-9


def assert_same_draws(
    one: Callable[[random.Random], list[Placement]],
    other: Callable[[random.Random], list[Placement]],
    seed: int,
    *,
    slates: int,
) -> None:
    """``one`` and ``other``, each given a generator seeded alike, serve the same slates and
    toss exactly the same coins (each generator is left in the same state)."""
    for n in range(slates):
        first, second = random.Random(seed + n), random.Random(seed + n)
        assert one(first) == other(second)
        assert first.random() == second.random()


@settings(max_examples=120, deadline=None)
@given(pools_and_rules(), st.integers(0, 2**32 - 1))
def test_slates_that_follow_the_shared_path_are_the_slates_drawn_slot_by_slot(
    drawn: tuple[list[Candidate], Rules, int], seed: int
) -> None:
    # The slates of one start share the path no coin has left: each slate, whether it follows
    # the path to its end, leaves it where a coin explores or a tie is broken, or builds it
    # further, serves what drawing it slot by slot with the same coins serves, and tosses
    # exactly the same coins (the generator is left in the same state).
    pool, rules, slots = drawn
    for policy in the_policies(pool, seed):
        scores = policy.scores(VIEWER, pool)
        shared, walking = (
            SlateStart(scores, pool, slots, rules),
            SlateStart(scores, pool, slots, rules),
        )
        assert_same_draws(shared.draw, walking.draw_walking, seed, slates=12)


@settings(max_examples=120, deadline=None)
@given(pools_and_rules(), st.integers(0, 2**32 - 1))
def test_slots_drawn_in_the_walks_own_loop_are_those_the_general_choice_draws(
    drawn: tuple[list[Candidate], Rules, int], seed: int
) -> None:
    # A walk draws its plain slots (no cap, no owed vertical, no tie) in its own loop; drawn
    # with every slot through the general choice instead, the same coins serve the same slots
    # with the same propensities and reasons, and leave the generator in the same state.
    pool, rules, slots = drawn
    for policy in the_policies(pool, seed):
        start = SlateStart(policy.scores(VIEWER, pool), pool, slots, rules)
        assert_same_draws(
            start.draw_walking,
            lambda rng, start=start: start.draw_walking(rng, quick=False),
            seed,
            slates=6,
        )


def test_a_walk_draws_its_plain_slots_in_its_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a cap, share or tie, no slot of a walk goes through the general choice (which
    # would leave the loop above untested by the comparison before).
    rng = random.Random(3)
    pool = [candidate(n, "goods", f"m{n}", rng) for n in range(30)]
    start = SlateStart([float(n) for n in range(30)], pool, 20, Rules(exploration=0.3))
    calls: list[int] = []
    general = _Slate.choose

    def counted(self: _Slate, rng: random.Random, coin: float | None = None) -> object:
        calls.append(1)
        return general(self, rng, coin)

    monkeypatch.setattr(_Slate, "choose", counted)
    slate = start.draw_walking(random.Random(5))
    assert len(slate) == 20
    assert not calls
    assert {p.reason for p in slate} == {"best", "explore"}
    monkeypatch.undo()
    assert start.draw_walking(random.Random(5), quick=False) == slate


def test_a_slate_on_the_path_costs_no_draw_until_a_coin_explores() -> None:
    # Twenty slots, no ties, exploration 0.1: the path holds the slots up to the first coin
    # that explored, and a slate whose coins all stay below explores nowhere and serves the
    # path's own placements (the same objects: nothing is made again).
    rng = random.Random(3)
    pool = [candidate(i, VERTICALS[i % 4], f"m_{i % 7}", rng) for i in range(50)]
    scores = [float(i) for i in range(50)]
    start = SlateStart(scores, pool, 20, Rules(exploration=0.1))

    class NoExploring(random.Random):
        def random(self) -> float:
            return 0.5

    first = start.draw(NoExploring())
    second = start.draw(NoExploring())

    assert [p.reason for p in first] == ["best"] * 20
    assert [p.candidate for p in first] == [pool[49 - n] for n in range(20)]
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert first == start.draw_walking(NoExploring())


def test_slates_drawn_at_once_in_many_threads_share_one_path_and_are_each_a_fresh_slate() -> None:
    # Threads that draw from one start at the same moment build its path together: it is made
    # once, slot by slot, and every slate is still the slot-by-slot draw with the same coins.
    rng = random.Random(11)
    pool = [candidate(i, VERTICALS[i % 5], f"m_{i % 6}", rng) for i in range(60)]
    scores = [rng.random() for _ in pool]
    rules = Rules(exploration=0.05, min_share=dict.fromkeys(VERTICALS, 0.1), pins={3: pool[7].key})
    start = SlateStart(scores, pool, 20, rules)
    reference = SlateStart(scores, pool, 20, rules)
    mismatches: list[int] = []
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the interpreter over between threads all the time
    try:

        def draw(thread: int) -> None:
            for n in range(150):
                seed = thread * 1_000 + n
                if start.draw(random.Random(seed)) != reference.draw_walking(random.Random(seed)):
                    mismatches.append(seed)

        threads = [threading.Thread(target=draw, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switching)

    assert mismatches == []
    # Each slot of the path was made once: the step at index n fills slot n.
    path = start._path
    assert len(path) <= 20
    assert all(s.placement.position == n for n, s in enumerate(path) if s.placement)
