"""A slate's placements as the log keeps them: written flat, read back by position."""

from __future__ import annotations

import json
import random

from pintuan.domain.feed import Candidate, Placement
from pintuan.feed.slate_log import (
    LoggedPlacement,
    credited_slot,
    placements_json,
    read_placements,
    slots_flat,
)


def candidate(kind: str, item_id: str) -> Candidate:
    return Candidate(kind, item_id, "food", "mer_1", (0.0,) * 8)


def test_slots_written_flat_read_back_whole_in_position_order() -> None:
    served = [
        Placement(candidate("team", "team_1"), 0, 1.0, "pinned"),
        Placement(candidate("deal", "deal_1"), 1, 1 / 3, "explore"),
    ]
    text = placements_json(slots_flat(served))

    expected = [
        LoggedPlacement(0, "team", "team_1", "food", "mer_1", 1.0, "pinned"),
        LoggedPlacement(1, "deal", "deal_1", "food", "mer_1", 1 / 3, "explore"),
    ]
    assert read_placements(text) == expected
    # As the driver or the ORM gives the column (a list), in any order.
    assert read_placements(list(reversed(json.loads(text)))) == expected
    assert read_placements("[]") == []


def test_a_deed_is_credited_to_its_teams_card_before_its_deals() -> None:
    slate = [
        LoggedPlacement(0, "deal", "deal_1", "food", "mer_1", 0.5, "best"),
        LoggedPlacement(1, "deal", "deal_1", "food", "mer_1", 0.5, "best"),
        LoggedPlacement(2, "team", "team_1", "food", "mer_1", 0.5, "best"),
    ]

    assert credited_slot(slate, "team_1", "deal_1") == 2
    assert credited_slot(slate, "team_2", "deal_1") == 0
    assert credited_slot(slate, "team_2", "deal_2") is None


def test_the_slots_text_is_what_json_writes_whatever_was_kept_before() -> None:
    rng = random.Random(7)
    words = ["deal", "team", 'quo"te', "back\\slash", "é", "新品", "line\nbreak", ""]
    numbers: list[object] = [1.0, 1, 0.5, 1 / 3, 0.1 + 0.2, 1e-12, True]
    for _ in range(300):
        flat: list[object] = []
        for position in range(rng.randrange(0, 6)):
            flat += (
                position if rng.random() < 0.9 else rng.choice([True, 2.5]),
                *(rng.choice(words) for _ in range(4)),
                rng.choice(numbers),
                rng.choice(words),
            )
        rows = [flat[at : at + 7] for at in range(0, len(flat), 7)]

        assert placements_json(flat) == json.dumps(rows)
