"""``GET /v1/feed``'s answer written from kept parts is the answer its model writes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.feed import Candidate, Placement
from pintuan.feed.encoding import FeedJson, feed_out
from pintuan.feed.schemas import FeedOut
from pintuan.feed.serving import Shown, Slate
from tests.unit.test_feed_cards import item

REASONS = ("pinned", "best", "explore", "vertical_share")


def slate_of(
    picks: list[tuple[int, bool, float, str]],
    policy: str,
    impression: str = "imp_01JEXAMPLE000000000000000",
) -> Slate:
    shown = []
    for position, (n, team, propensity, reason) in enumerate(picks):
        served = item(n, timedelta(days=1 + n), team)
        candidate = Candidate(served.kind, served.item_id, served.deal.vertical, "mer_1", (1.0,))
        shown.append(Shown(Placement(candidate, position, propensity, reason), served))
    return Slate(impression, policy, tuple(shown))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),
            st.booleans(),
            st.floats(min_value=1e-9, max_value=1.0),
            st.sampled_from(REASONS),
        ),
        max_size=25,
    ),
    st.text(max_size=12),
    st.one_of(st.none(), st.text(max_size=40)),
    st.sampled_from(["imp_01JEXAMPLE000000000000000", 'imp_"quoted"\\/é']),
)
def test_the_kept_answer_is_the_models_answer(
    picks: list[tuple[int, bool, float, str]], policy: str, cursor: str | None, impression: str
) -> None:
    answers = FeedJson()
    slate = slate_of(picks, policy, impression)
    for _ in range(2):  # written, then from what was kept
        sent = json.loads(answers.encode(slate, cursor))
        assert sent == feed_out(slate, cursor).model_dump(mode="json")
        assert FeedOut.model_validate(sent) == feed_out(slate, cursor)


def test_a_changed_item_is_written_anew() -> None:
    answers = FeedJson()
    slate = slate_of([(3, True, 0.5, "best")], "linucb")
    answers.encode(slate, None)
    shown = slate.shown[0]
    assert shown.item.team is not None
    fuller = replace(shown.item, team=replace(shown.item.team, taken=3))
    changed = replace(slate, shown=(shown._replace(item=fuller),))
    sent = json.loads(answers.encode(changed, None))
    assert sent["display"][0]["seats_left"] == 0
    assert sent == feed_out(changed, None).model_dump(mode="json")
