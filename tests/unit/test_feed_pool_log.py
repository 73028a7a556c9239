"""The pool the feed logs is put together from JSON parts kept per item: it must be exactly the
candidates the policy saw, as a JSON array of their entries, for any item, moment and place."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.feed import CANDIDATE_FEATURES, Candidate
from pintuan.feed.snapshot import DealEntry, Item, Place, Snapshot, TeamEntry, logged_pool

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
VERTICALS = ("goods", "food", "movies", "travel", "local", "unknown")


def entry_of(candidate: Candidate) -> dict[str, object]:
    """The log's entry for one candidate, as evaluation and learning read it."""
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
        candidates, logged = logged_pool(pool, now, place, 5.0, kept)
        assert json.loads(logged) == [entry_of(c) for c in candidates]
        # Asked again at the same moment: the kept candidates, the same text.
        assert logged_pool(pool, now, place, 5.0, kept) == (candidates, logged)
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
    at_start, _ = logged_pool([item], NOW, None, 5.0, snapshot)
    later, logged = logged_pool([item], NOW + timedelta(minutes=30), None, 5.0, snapshot)
    left = CANDIDATE_FEATURES.index("time_left")
    assert at_start[0].features[left] == 0.5
    assert later[0].features[left] == 0.25
    assert json.loads(logged)[0]["features"][left] == 0.25
    assert at_start[0].features[:left] == later[0].features[:left]
