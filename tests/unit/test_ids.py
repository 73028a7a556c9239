"""Public ids are prefixed, fixed-length Crockford base32, unique, and sort by creation time;
so are the cheaper ids of a sequence (request ids), which are not meant to be unguessable."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from pintuan.kit.ids import IdSequence, new_id, random_bytes, random_hex, random_urlsafe

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


def test_random_bytes_are_as_many_as_asked_and_never_repeat_a_block() -> None:
    # given sizes that straddle the block a thread reads from the system at once
    sizes = [1, 10, 16, 4095, 4096, 4097, 10_000, *range(1, 300)]

    # when each is drawn
    drawn = [random_bytes(size) for size in sizes]

    # then each has its size, and no 16-byte draw repeats over many blocks' worth
    assert [len(b) for b in drawn] == sizes
    sixteens = [random_bytes(16) for _ in range(5_000)]
    assert len(set(sixteens)) == len(sixteens)
    assert re.fullmatch("[0-9a-f]{32}", random_hex(16))
    assert re.fullmatch("[A-Za-z0-9_-]{22}", random_urlsafe(16))


def test_threads_draw_random_bytes_of_their_own() -> None:
    # given eight threads drawing at once
    def draw(_: int) -> list[bytes]:
        return [random_bytes(10) for _ in range(2_000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        drawn = [b for part in pool.map(draw, range(8)) for b in part]

    # when / then no thread saw another's bytes
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_draw_its_parents_next_bytes() -> None:
    # given a parent that has a block read (so its next bytes are in memory when it forks)
    random_bytes(10)
    reading, writing = os.pipe()

    # when a child draws after the fork and the parent draws too
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's own code
        os.close(reading)
        os.write(writing, random_bytes(64))
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading, "rb") as pipe:
        childs = pipe.read()
    parents = random_bytes(64)

    # then the two differ (the child read its own block from the system)
    assert len(childs) == 64
    assert childs != parents


def test_an_ids_last_sixteen_characters_are_its_ten_random_bytes_in_crockford_base32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Against the standard encoder's base32, mapped letter for letter onto Crockford's
    # alphabet: every bit of the ten bytes in its place, none lost or repeated.
    import base64

    import pintuan.kit.ids as ids

    rfc4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    to_crockford = bytes.maketrans(rfc4648, CROCKFORD.encode())
    for drawn in (bytes(10), b"\xff" * 10, bytes(range(10)), os.urandom(10), os.urandom(10)):
        monkeypatch.setattr(ids, "random_bytes", lambda count, drawn=drawn: drawn[:count])
        expected = base64.b32encode(drawn).translate(to_crockford).decode()
        assert new_id("deal")[-16:] == expected
