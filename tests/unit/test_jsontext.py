"""The reused JSON encoder (kit/jsontext.py) writes exactly what ``json.dumps`` writes, refuses
what it refuses, and is really the reused one on this interpreter (or the outbox would pay
``json.dumps``'s price without anyone noticing)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.kit import jsontext
from pintuan.kit.jsontext import dumps, float_text

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(_VALUES)
def test_the_text_is_json_dumps_text_byte_for_byte(value: Any) -> None:
    assert dumps(value) == json.dumps(value)


@given(st.dictionaries(st.text(), _VALUES, max_size=4))
def test_a_payload_reads_back_as_it_was_written(payload: dict[str, Any]) -> None:
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return bool(a == b)

    assert same(payload, json.loads(dumps(payload)))


def test_what_json_cannot_write_is_refused_as_json_dumps_refuses_it() -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        dumps({"at": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        dumps({(1, 2): "a tuple key"})


def test_the_encoder_is_made_once_and_reused_here() -> None:
    assert dumps is not json.dumps
    # Reused across calls: one call's state (its keys, its nesting) leaks into no other.
    assert dumps({"a": [1, {"b": 2}]}) == '{"a": [1, {"b": 2}]}'
    assert dumps([{"a": 1}, {"a": 1}]) == '[{"a": 1}, {"a": 1}]'
    assert dumps("text") == '"text"'


@given(st.lists(st.floats() | st.integers(-5, 5) | st.booleans(), max_size=30))
def test_a_kept_float_text_is_json_dumps_text_however_often_asked(values: list[Any]) -> None:
    for _ in range(2):  # written, then kept
        assert [float_text(v) for v in values] == [json.dumps(v) for v in values]


def test_floats_a_key_cannot_tell_apart_are_each_written_as_they_are() -> None:
    assert [float_text(v) for v in (0.0, -0.0, 0.0, math.nan, math.nan)] == [
        "0.0",
        "-0.0",
        "0.0",
        "NaN",
        "NaN",
    ]
    assert math.nan not in jsontext._FLOATS
    assert 0.0 not in jsontext._FLOATS


def test_ints_and_bools_are_not_taken_for_the_floats_they_equal() -> None:
    assert float_text(1.0) == "1.0"
    assert (float_text(1), float_text(True), float_text(0.0), float_text(False)) == (
        "1",
        "true",
        "0.0",
        "false",
    )


def test_the_kept_floats_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "FLOATS_KEPT", 8)
    monkeypatch.setattr(jsontext, "_FLOATS", {})
    for n in range(50):
        assert float_text(n / 7) == json.dumps(n / 7)
        assert len(jsontext._FLOATS) <= 8
