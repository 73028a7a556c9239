"""The feed's cursor: the JSON of what it continues, in URL-safe base64, read back as written."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.errors import InvalidInput
from pintuan.feed.service import FeedCursor, decode_feed_cursor, encode_feed_cursor

_ID = st.from_regex(r"\A(imp|deal|team)_[0-9A-Z]{26}\Z")


def json_cursor(cursor: FeedCursor) -> str:
    text = json.dumps({"i": cursor.impression_id, "s": list(cursor.seen)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@given(st.text(), st.lists(st.text(), max_size=12))
def test_the_cursor_is_its_json_in_base64_whatever_the_ids(
    impression: str, seen: list[str]
) -> None:
    cursor = FeedCursor(impression, tuple(seen))
    assert encode_feed_cursor(cursor) == json_cursor(cursor)


@given(_ID, st.lists(_ID, max_size=40))
def test_a_cursor_reads_back_as_written(impression: str, seen: list[str]) -> None:
    cursor = FeedCursor(impression, tuple(seen))
    assert decode_feed_cursor(encode_feed_cursor(cursor)) == cursor


def test_ids_that_json_must_escape_are_escaped() -> None:
    cursor = FeedCursor('imp_"', ("deal_\\", "team_é", "deal_\n"))
    decoded = json.loads(base64.urlsafe_b64decode(encode_feed_cursor(cursor) + "=="))
    assert decoded == {"i": 'imp_"', "s": ["deal_\\", "team_é", "deal_\n"]}
    with pytest.raises(InvalidInput):  # well formed, but not ids this API gives
        decode_feed_cursor(encode_feed_cursor(cursor))
