"""Cursors are opaque to clients, survive a round trip, and refuse anything the API did not make."""

from __future__ import annotations

import base64
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.errors import InvalidInput
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor, encode_cursor

PROPERTY = settings(max_examples=100, deadline=None)

public_ids = st.builds(
    "{}_{}".format,
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12),
    st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=1, max_size=26),
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@PROPERTY
@given(public_ids)
def test_a_cursor_decodes_to_the_id_it_was_made_from(last_id: str) -> None:
    # given the last id of a page / when it is made into a cursor and read back
    decoded = decode_cursor(encode_cursor(last_id))

    # then the same id comes back
    assert decoded == last_id


@PROPERTY
@given(public_ids)
def test_a_cursor_is_safe_in_a_query_string_without_escaping(last_id: str) -> None:
    # given an id / when it is made into a cursor
    cursor = encode_cursor(last_id)

    # then it uses only URL-safe characters and carries no padding
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)


def test_a_cursor_made_from_a_real_id_round_trips() -> None:
    # given an id as the application makes them
    deal_id = new_id("deal")

    # when / then its cursor reads back as that id
    assert decode_cursor(encode_cursor(deal_id)) == deal_id


def test_a_cursor_does_not_show_the_id_in_plain_text() -> None:
    assert "deal_" not in encode_cursor("deal_01JD0000000000000000000000")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("a", id="one character"),
        pytest.param("abcde", id="impossible length"),
        pytest.param("deal_01JD0000000000000000000000", id="raw id instead of cursor"),
        pytest.param("////", id="only slashes"),
        pytest.param("%%%%", id="percent signs"),
        pytest.param(_b64(b"\xff\xfe\xfd"), id="not utf-8"),
        pytest.param(_b64(b"nounderscore"), id="no prefix separator"),
        pytest.param(_b64("deal_é".encode()), id="not ascii"),
        pytest.param("游标", id="non-ascii cursor"),
    ],
)
def test_a_garbage_cursor_is_refused_as_invalid_input(cursor: str) -> None:
    # given a cursor this API never returned
    # when it is decoded
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor)

    # then the refusal is a 422 the client can act on, naming the cursor field
    error = caught.value
    assert error.code == "invalid_cursor"
    assert error.status == 422
    assert error.extra["errors"] == [{"field": "cursor", "message": "not a valid cursor"}]
    assert "without it" in error.detail


@PROPERTY
@given(st.text(max_size=60))
def test_decoding_any_text_either_gives_an_id_like_string_or_refuses_it(cursor: str) -> None:
    # given arbitrary text as a cursor
    # when it is decoded
    value: str | None = None
    refusal_code: str | None = None
    try:
        value = decode_cursor(cursor)
    except InvalidInput as error:
        refusal_code = error.code

    # then a refusal is always the invalid_cursor one (never a crash),
    # and what comes back otherwise has the shape of a prefixed ascii id
    if value is None:
        assert refusal_code == "invalid_cursor"
    else:
        assert "_" in value
        assert value.isascii()


@pytest.mark.parametrize("cursor", ["ZGVh!!bF8x", "ZGVh bF8x", "ZGVh.bF8x"])
def test_a_cursor_with_characters_outside_base64url_is_refused(cursor: str) -> None:
    # given a valid cursor ("ZGVhbF8x", i.e. deal_1) with stray characters inserted
    # when / then it is refused rather than silently repaired
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)
