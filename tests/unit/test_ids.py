"""Public ids are prefixed, fixed-length Crockford base32, unique, and sort by creation time."""

from __future__ import annotations

import re
import time

import pytest

from pintuan.kit.ids import new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 26  # 10 characters of milliseconds + 16 of randomness


@pytest.mark.parametrize("prefix", ["deal", "team", "merchant", "usr"])
def test_an_id_starts_with_its_prefix_and_an_underscore(prefix: str) -> None:
    # given a prefix / when an id is made
    value = new_id(prefix)

    # then a reader can tell the kind of thing from the id
    assert value.startswith(f"{prefix}_")
    assert len(value) == len(prefix) + 1 + BODY_LENGTH


def test_an_id_body_uses_only_the_crockford_alphabet() -> None:
    # given many ids / when their bodies are inspected
    bodies = [new_id("deal").removeprefix("deal_") for _ in range(500)]

    # then only Crockford base32 appears: no I, L, O or U, no lower case
    for body in bodies:
        assert re.fullmatch(f"[{CROCKFORD}]{{{BODY_LENGTH}}}", body), body
        assert not set(body) & set("ILOU")


def test_an_id_carries_its_creation_time_in_milliseconds() -> None:
    # given the clock just before and after an id is made
    before = time.time_ns() // 1_000_000
    value = new_id("deal")
    after = time.time_ns() // 1_000_000

    # when its leading ten characters are read as a base32 number
    millis = 0
    for char in value.removeprefix("deal_")[:10]:
        millis = millis * 32 + CROCKFORD.index(char)

    # then they are the moment it was made
    assert before <= millis <= after


def test_a_later_id_sorts_after_an_earlier_one() -> None:
    # given ids made a couple of milliseconds apart
    made = []
    for _ in range(5):
        made.append(new_id("deal"))
        time.sleep(0.002)

    # when / then their plain string order is their creation order
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ten_thousand_ids_are_all_different() -> None:
    # given ten thousand ids made as fast as possible (many in the same millisecond)
    ids = [new_id("team") for _ in range(10_000)]

    # when / then none repeats
    assert len(set(ids)) == len(ids)
