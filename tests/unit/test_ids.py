"""Public ids are prefixed, fixed-length Crockford base32, unique, and sort by creation time;
so are the cheaper ids of a sequence (request ids), which are not meant to be unguessable."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from pintuan.kit.ids import IdSequence, new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 26  # 10 characters of milliseconds + 16 of randomness (or tag and counter)


def from_sequences() -> Callable[[str], str]:
    sequences: dict[str, IdSequence] = {}

    def make(prefix: str) -> str:
        return sequences.setdefault(prefix, IdSequence(prefix)).next()

    return make


@pytest.fixture(params=["new_id", "sequence"])
def make(request: pytest.FixtureRequest) -> Callable[[str], str]:
    return new_id if request.param == "new_id" else from_sequences()


@pytest.mark.parametrize("prefix", ["deal", "team", "merchant", "usr"])
def test_an_id_starts_with_its_prefix_and_an_underscore(
    prefix: str, make: Callable[[str], str]
) -> None:
    # given a prefix / when an id is made
    value = make(prefix)

    # then a reader can tell the kind of thing from the id
    assert value.startswith(f"{prefix}_")
    assert len(value) == len(prefix) + 1 + BODY_LENGTH


def test_an_id_body_uses_only_the_crockford_alphabet(make: Callable[[str], str]) -> None:
    # given many ids / when their bodies are inspected
    bodies = [make("deal").removeprefix("deal_") for _ in range(500)]

    # then only Crockford base32 appears: no I, L, O or U, no lower case
    for body in bodies:
        assert re.fullmatch(f"[{CROCKFORD}]{{{BODY_LENGTH}}}", body), body
        assert not set(body) & set("ILOU")


def test_an_id_carries_its_creation_time_in_milliseconds(make: Callable[[str], str]) -> None:
    # given the clock just before and after an id is made
    before = time.time_ns() // 1_000_000
    value = make("deal")
    after = time.time_ns() // 1_000_000

    # when its leading ten characters are read as a base32 number
    millis = 0
    for char in value.removeprefix("deal_")[:10]:
        millis = millis * 32 + CROCKFORD.index(char)

    # then they are the moment it was made
    assert before <= millis <= after


def test_a_later_id_sorts_after_an_earlier_one(make: Callable[[str], str]) -> None:
    # given ids made a couple of milliseconds apart
    made = []
    for _ in range(5):
        made.append(make("deal"))
        time.sleep(0.002)

    # when / then their plain string order is their creation order
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ten_thousand_ids_are_all_different(make: Callable[[str], str]) -> None:
    # given ten thousand ids made as fast as possible (many in the same millisecond)
    ids = [make("team") for _ in range(10_000)]

    # when / then none repeats
    assert len(set(ids)) == len(ids)


def test_two_sequences_of_one_prefix_never_repeat_each_other() -> None:
    # given two processes' sequences making ids in the same milliseconds
    first, second = IdSequence("req"), IdSequence("req")
    ids = [seq.next() for _ in range(5_000) for seq in (first, second)]

    # when / then none repeats
    assert len(set(ids)) == len(ids)
