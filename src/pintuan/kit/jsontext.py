"""JSON text of many small values, as ``json.dumps`` writes it, for less.

``json.dumps`` makes a new encoder at every call. For the few fields of an outbox payload that
costs twice the encoding itself (about 1.8 µs a call against 0.6 µs), and a sweep writes one
payload for each of thousands of teams. :func:`dumps` makes the standard library's own C encoder
once, with ``json.dumps``'s defaults, and uses it for every call: the same text, byte for byte.

Where that encoder is missing (an interpreter without the ``_json`` accelerator), or does not
take the arguments this module gives it, :func:`dumps` is ``json.dumps`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any


def _reused_encoder() -> Callable[[Any], str]:
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    try:
        # json.dumps's defaults: no indent, ": " and ", ", keys in their order, no key skipped,
        # NaN allowed. No circular check: a payload is data built for the event, never a graph.
        encode = make(
            None,
            json.JSONEncoder().default,
            _encoder.encode_basestring_ascii,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
    except TypeError:  # another interpreter's encoder, with other arguments
        return json.dumps

    def dumps(value: Any) -> str:
        if isinstance(value, str):
            return _encoder.encode_basestring_ascii(value)
        return "".join(encode(value, 0))

    probe = {"a": [1, 2.5, None, True, "é\n"], "b": {"c": -0.0}}
    return dumps if dumps(probe) == json.dumps(probe) else json.dumps


dumps: Callable[[Any], str] = _reused_encoder()


# Floats whose text is kept, and how many at most (the table is emptied when full).
_FLOATS: dict[float, str] = {}
FLOATS_KEPT = 20_000


def float_text(value: float) -> str:
    """``dumps(value)`` for a float, kept by value: a float's shortest text costs about fifteen
    times looking it up, and the feed writes the same few propensities in every answer and every
    logged slate (the slates of one second are drawn from one start).

    Anything but a float (an int, a bool, which equal floats as keys) is written by ``dumps``,
    as are the floats a key cannot tell apart: zero (``-0.0 == 0.0``) and NaN (equal to nothing,
    so never found)."""
    if value.__class__ is not float or not value or value != value:
        return dumps(value)
    text = _FLOATS.get(value)
    if text is None:
        if len(_FLOATS) >= FLOATS_KEPT:
            _FLOATS.clear()
        text = _FLOATS[value] = dumps(value)
    return text
