"""The read cache's own promises: an age limit counted from the build's start, drops by tag, a
bound on entries, one build for concurrent misses, and no keeping a build an invalidation
overtook."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pintuan.kit.readcache import ReadCache, etag_of, if_none_match


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _builder(
    value: str, tags: tuple[str, ...] = ("deal:a",)
) -> Callable[[], Awaitable[tuple[str, str, tuple[str, ...]]]]:
    async def build() -> tuple[str, str, tuple[str, ...]]:
        return value, etag_of(value), tags

    return build


def test_an_entry_expires_at_its_age_counted_from_the_start_of_its_build() -> None:
    clock = Clock()
    cache = ReadCache(max_age=1.0, clock=clock)

    async def slow() -> tuple[str, str, list[str]]:
        clock.now += 0.5  # the read took half a second: the data is that old when kept
        return "v1", etag_of("v1"), []

    async def scenario() -> None:
        await cache.get_or_build("k", slow)
        clock.now += 0.25
        assert cache.get("k") is not None
        clock.now += 0.25
        assert cache.get("k") is None

    asyncio.run(scenario())


def test_invalidating_a_tag_drops_only_its_entries() -> None:
    cache = ReadCache(max_age=60)

    async def scenario() -> None:
        await cache.get_or_build("deal page", _builder("d", ("deal:a",)))
        await cache.get_or_build("team page", _builder("t", ("team:x", "deal:a")))
        await cache.get_or_build("other", _builder("o", ("deal:b",)))
        assert cache.invalidate(["deal:a"]) == 2
        assert cache.get("deal page") is None
        assert cache.get("team page") is None
        assert cache.get("other") is not None

    asyncio.run(scenario())


def test_the_least_recently_used_entry_goes_past_the_bound() -> None:
    cache = ReadCache(max_age=60, max_entries=2)

    async def scenario() -> None:
        for key in ("a", "b"):
            await cache.get_or_build(key, _builder(key))
        assert cache.get("a") is not None  # "b" is now the least recently used
        await cache.get_or_build("c", _builder("c"))
        assert len(cache) == 2
        assert cache.get("b") is None
        assert cache.get("a") is not None

    asyncio.run(scenario())


def test_concurrent_misses_share_one_build() -> None:
    cache = ReadCache(max_age=60)
    builds = 0

    async def build() -> tuple[str, str, list[str]]:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.01)
        return "v", etag_of("v"), []

    async def scenario() -> None:
        answers = await asyncio.gather(*(cache.get_or_build("k", build) for _ in range(20)))
        assert {a.value for a in answers} == {"v"}

    asyncio.run(scenario())
    assert builds == 1


def test_a_build_overtaken_by_an_invalidation_answers_but_is_not_kept() -> None:
    cache = ReadCache(max_age=60)

    async def build() -> tuple[str, str, list[str]]:
        cache.invalidate(["team:x"])  # the outbox named a change while this read ran
        return "old", etag_of("old"), ["team:x"]

    async def scenario() -> None:
        assert (await cache.get_or_build("k", build)).value == "old"
        assert cache.get("k") is None

    asyncio.run(scenario())


def test_a_failed_build_keeps_nothing_and_fails_every_waiter() -> None:
    cache = ReadCache(max_age=60)

    async def build() -> tuple[str, str, list[str]]:
        await asyncio.sleep(0.01)
        raise LookupError("no such deal")

    async def scenario() -> None:
        results = await asyncio.gather(
            *(cache.get_or_build("k", build) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, LookupError) for r in results)
        assert cache.get("k") is None

    asyncio.run(scenario())


def test_an_age_of_zero_keeps_nothing() -> None:
    cache = ReadCache(max_age=0)
    asyncio.run(cache.get_or_build("k", _builder("v")))
    assert not cache.enabled
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
        (None, False),
        ("", False),
    ],
)
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert if_none_match(header, '"abc"') is matches
