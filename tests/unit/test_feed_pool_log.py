"""The pool the feed logs is put together from JSON parts kept per item, and names each candidate's
fixed part logged once: read back as evaluation and learning read it, it must be exactly the
candidates the policy saw, for any item, moment and place; slates logged before, with each
candidate whole, read the same."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.feed import CANDIDATE_FEATURES, Candidate
from pintuan.feed.pool_log import decode_pool, pool_entry
from pintuan.feed.snapshot import DealEntry, Item, Place, Snapshot, TeamEntry, logged_pool

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
VERTICALS = ("goods", "food", "movies", "travel", "local", "unknown")


def whole_entry(candidate: Candidate) -> dict[str, object]:
    """A candidate's entry in a pool logged before ``feed_candidates``."""
    return {
        "kind": candidate.kind,
        "id": candidate.item_id,
        "vertical": candidate.vertical,
        "merchant_id": candidate.merchant_id,
        "features": list(candidate.features),
    }


@st.composite
def items(draw: st.DrawFn) -> Item:
    n = draw(st.integers(0, 10**6))
    list_price = draw(st.integers(0, 10**9))
    lat = draw(st.none() | st.floats(-80, 80))
    offer = DealEntry(
        id=f"deal_{n:026d}",
        merchant_id=f"mer_{draw(st.integers(0, 9))}",
        vertical=draw(st.sampled_from(VERTICALS)),
        country="DE",
        currency="EUR",
        is_partner=draw(st.booleans()),
        title='A "quoted" <title>',
        image_urls=(),
        list_price=list_price,
        group_price=draw(st.integers(0, max(0, list_price))),
        team_size=3,
        stock=10,
        committed=1,
        starts_at=NOW - timedelta(seconds=draw(st.integers(-3600, 10**7))),
        ends_at=NOW + timedelta(seconds=draw(st.integers(-3600, 10**7))),
        lat=lat,
        lon=None if lat is None else draw(st.floats(-170, 170)),
        fill=draw(st.floats(0, 1)),
    )
    if not draw(st.booleans()):
        return Item("deal", offer, None, 1.0)
    opened = NOW - timedelta(seconds=draw(st.integers(0, 86_400)))
    window = TeamEntry(
        f"team_{n:026d}",
        offer.id,
        3,
        draw(st.integers(1, 2)),
        opened,
        opened + timedelta(seconds=draw(st.integers(0, 172_800))),
    )
    return Item("team", offer, window, 2.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(items(), max_size=12, unique_by=lambda i: i.key),
    st.none() | st.builds(Place, st.floats(-80, 80), st.floats(-170, 170)),
    st.integers(0, 10**6),
)
def test_the_logged_pool_is_the_candidates_the_policy_saw(
    pool: list[Item], place: Place | None, seconds: int
) -> None:
    now = NOW + timedelta(seconds=seconds)
    snapshot = Snapshot()
    for kept in (snapshot, None):  # parts kept per snapshot, and computed afresh
        logged = logged_pool(pool, now, place, 5.0, kept)
        candidates = logged.candidates
        # The fixed parts as the table keeps them (its JSON column gives back the list).
        table = {
            f.id: Candidate(
                f.kind, f.item_id, f.vertical, f.merchant_id, tuple(json.loads(f.features))
            )
            for f in logged.fixed
        }
        assert decode_pool(json.loads(logged.json), table) == candidates
        assert json.loads(logged.json) == [pool_entry(c)[1] for c in candidates]
        assert [f.id for f in logged.fixed] == [pool_entry(c)[0].id for c in candidates]
        # Logged whole, as before the table: read the same.
        assert decode_pool([whole_entry(c) for c in candidates], {}) == candidates
        # Asked again at the same moment: the kept candidates, the same text.
        assert logged_pool(pool, now, place, 5.0, kept) == logged
        assert [c.key for c in candidates] == [i.key for i in pool]
        for candidate, item in zip(candidates, pool, strict=True):
            features = dict(zip(CANDIDATE_FEATURES, candidate.features, strict=True))
            assert len(candidate.features) == len(CANDIDATE_FEATURES)
            assert 0.0 <= features["time_left"] <= 1.0
            assert features["is_team"] == (1.0 if item.team is not None else 0.0)
            assert all(math.isfinite(f) for f in candidate.features)


def test_time_left_moves_with_the_clock_while_the_other_parts_are_kept() -> None:
    offer = DealEntry(
        id="deal_1",
        merchant_id="mer_1",
        vertical="food",
        country="DE",
        currency="EUR",
        is_partner=False,
        title="t",
        image_urls=(),
        list_price=2000,
        group_price=1000,
        team_size=3,
        stock=5,
        committed=0,
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        lat=None,
        lon=None,
    )
    snapshot = Snapshot()
    item = Item("deal", offer, None, 1.0)
    at_start = logged_pool([item], NOW, None, 5.0, snapshot)
    later = logged_pool([item], NOW + timedelta(minutes=30), None, 5.0, snapshot)
    left = CANDIDATE_FEATURES.index("time_left")
    assert at_start.candidates[0].features[left] == 0.5
    assert later.candidates[0].features[left] == 0.25
    assert json.loads(later.json)[0][1] == 0.25
    assert at_start.candidates[0].features[:left] == later.candidates[0].features[:left]
    # The same fixed part, logged once for both slates.
    assert at_start.fixed == later.fixed
    # The feed's clock counts whole seconds: later in the same second, the very same candidates.
    within = logged_pool([item], NOW + timedelta(milliseconds=900), None, 5.0, snapshot)
    assert within == at_start
    again = logged_pool([item], NOW + timedelta(milliseconds=950), None, 5.0, snapshot)
    assert again.candidates[0] is within.candidates[0]
    assert logged_pool([item], NOW + timedelta(milliseconds=900), None, 5.0) == at_start


def test_a_changed_candidate_is_a_new_fixed_part_and_near_or_far_the_same() -> None:
    base = Candidate("deal", "deal_1", "food", "mer_1", tuple(0.5 for _ in CANDIDATE_FEATURES))
    distance = CANDIDATE_FEATURES.index("distance")
    left = CANDIDATE_FEATURES.index("time_left")

    def with_feature(index: int, value: float) -> Candidate:
        features = list(base.features)
        features[index] = value
        return Candidate(base.kind, base.item_id, base.vertical, base.merchant_id, tuple(features))

    same = pool_entry(base)[0].id
    assert pool_entry(with_feature(distance, 1.0))[0].id == same
    assert pool_entry(with_feature(left, 0.1))[0].id == same
    assert pool_entry(with_feature(1, 0.6))[0].id != same  # a new discount
    moved = Candidate("deal", "deal_1", "food", "mer_2", base.features)
    assert pool_entry(moved)[0].id != same
    # A pool naming a candidate the table does not hold is not read at all.
    assert decode_pool([pool_entry(base)[1]], {}) is None
    assert decode_pool(["not an entry"], {}) is None
