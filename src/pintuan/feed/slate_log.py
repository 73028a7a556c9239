"""How the log keeps a slate's placements: a list in the slate's own row
(``feed_impressions.placements``), one entry a slot,
``[position, kind, item_id, vertical, merchant_id, propensity, reason]``.

They were a row a slot in a table of their own, twenty rows a page view, each in the table and
in its primary key's index: writing them was most of what the feed's log cost (about 50 µs of
the 60 a slate took on SQLite), for rows that are only ever read by slate (a click checked
against what its slate showed, a deed credited to the viewer's latest slate that showed its deal
or team, learning and evaluation replaying whole slates).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from pintuan.domain.feed import Placement
from pintuan.kit.jsontext import dumps, float_text


class LoggedPlacement(NamedTuple):
    """One slot of a logged slate."""

    position: int
    kind: str
    item_id: str
    vertical: str
    merchant_id: str
    propensity: float  # a probability in (0, 1], not money
    reason: str


_WIDTH = len(LoggedPlacement._fields)


def slots_flat(placements: Sequence[Placement]) -> tuple[Any, ...]:
    """A served slate's slots as the log will write them, one after the other in one flat
    tuple of strings and numbers (``LoggedPlacement``'s fields, slot by slot).

    One flat tuple because a busy process holds thousands of slates between two batches: a
    tuple a slot would be twenty more objects a slate for the garbage collector to track (a
    tuple is tracked until a pass finds only plain values in it)."""
    values: list[Any] = []
    for placement in placements:
        candidate = placement.candidate
        values += (
            placement.position,
            candidate.kind,
            candidate.item_id,
            candidate.vertical,
            candidate.merchant_id,
            placement.propensity,
            placement.reason,
        )
    return tuple(values)


def placements_json(flat: Sequence[Any]) -> str:
    """The column's text for a slate's slots (given as ``slots_flat`` made them): what
    ``json.dumps`` writes for the list of slots, made of pieces kept between calls.

    The batch writer makes this text for every slate while holding the interpreter, so the event
    loop's requests wait behind it: a slot's item (kind, id, vertical, merchant) is one of the
    few thousand candidates live, and its propensity one of few values (the slates of a second
    are drawn from one start), so their text is kept, which makes a slate's text about twice
    as fast as encoding it whole (9 to 10 µs against 19 to 21; the propensities' ``repr`` was
    half of the whole)."""
    slots = []
    for at in range(0, len(flat), _WIDTH):
        position, kind, item_id, vertical, merchant_id, propensity, reason = flat[at : at + _WIDTH]
        item = (kind, item_id, vertical, merchant_id)
        fragment = _ITEMS.get(item)
        if fragment is None:
            fragment = _keep(_ITEMS, item, ", ".join(map(dumps, item)))
        number = float_text(propensity)
        said = _REASONS.get(reason) if reason.__class__ is str else dumps(reason)
        if said is None:
            said = _keep(_REASONS, reason, dumps(reason))
        at_text = position if position.__class__ is int else dumps(position)
        slots.append(f"[{at_text}, {fragment}, {number}, {said}]")
    return f"[{', '.join(slots)}]"


# The text kept for items and reasons (each table emptied when full); propensities' is
# ``float_text``'s.
_KEPT = 20_000
_ITEMS: dict[tuple[Any, ...], str] = {}
_REASONS: dict[str, str] = {}


def _keep(table: dict[Any, str], key: Any, text: str) -> str:
    if len(table) >= _KEPT:
        table.clear()
    table[key] = text
    return text


def read_placements(value: Any) -> list[LoggedPlacement]:
    """A slate's slots by position, from the column as read: JSON text (a raw statement on
    SQLite) or the list it holds (through the ORM, or from PostgreSQL's driver)."""
    rows: Sequence[Sequence[Any]] = json.loads(value) if isinstance(value, str) else value or ()
    return sorted(
        (
            LoggedPlacement(int(row[0]), row[1], row[2], row[3], row[4], float(row[5]), row[6])
            for row in rows
        ),
        key=lambda entry: entry.position,
    )


def credited_slot(placements: Sequence[LoggedPlacement], team_id: str, deal_id: str) -> int | None:
    """The slot of a slate a deed on ``team_id`` of ``deal_id`` is credited to: the team's own
    card before its deal's, the higher of each; None when the slate showed neither."""
    deal_slot = None
    for entry in placements:
        if entry.kind == "team" and entry.item_id == team_id:
            return entry.position
        if deal_slot is None and entry.kind == "deal" and entry.item_id == deal_id:
            deal_slot = entry.position
    return deal_slot
