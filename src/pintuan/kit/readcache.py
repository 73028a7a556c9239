"""A bounded in-process cache of what anonymous reads answer: deal and team pages, the deal
list and a deal in the API.

Every entry is at most ``max_age`` old, measured from the moment its build started (so from
before the data it holds was read), whatever else happens: that is the staleness bound, one second
by default. Sooner than that, the outbox watcher (:mod:`pintuan.events.watch`) drops the entries
tagged with a team or deal whose events it reads, in every process. A build that an invalidation
overtook answers its own request but is not kept, so an entry never holds data older than the
last invalidation of its tags.

Concurrent misses of one key share one build (the first request builds, the others await it), so
a cold page under load costs one database read, not one per connection. The cache holds answers
for reads only: writes never look here.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")

DEFAULT_MAX_AGE_SECONDS = 1.0
DEFAULT_MAX_ENTRIES = 2_000


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """A kept answer, its validator (for ``ETag``) and when its build started."""

    value: V
    etag: str
    built_at: float
    tags: frozenset[str]


def etag_of(*parts: bytes | str) -> str:
    """A strong entity tag for these bytes: the same content, the same tag."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return f'"{digest.hexdigest()}"'


class ReadCache:
    """Entries by key, least recently used dropped past ``max_entries``; ``max_age`` 0 turns
    the cache off (every read builds)."""

    def __init__(
        self,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, Cached[Any]] = OrderedDict()
        self._by_tag: dict[str, set[Hashable]] = {}
        self._building: dict[Hashable, asyncio.Future[Cached[Any]]] = {}
        # Bumped by every invalidation: a build that saw it change keeps nothing.
        self._epoch = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_age > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Cached[Any] | None:
        """The fresh entry under ``key``, or None (an expired one is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.built_at >= self.max_age:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def hit(self, key: Hashable) -> Cached[Any] | None:
        """:meth:`get`, counted as a hit when there is a fresh entry to answer from."""
        found = self.get(key)
        if found is not None:
            self.hits += 1
        return found

    async def get_or_build(
        self,
        key: Hashable,
        build: Callable[[], Awaitable[tuple[V, str, Iterable[str]]]],
    ) -> Cached[V]:
        """The fresh entry under ``key``, else what ``build()`` gives: (value, etag, tags).
        A build that raises keeps nothing and raises to every request waiting on it."""
        found = self.hit(key)
        if found is not None:
            return found
        pending = self._building.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[Cached[Any]] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        started, epoch = self._clock(), self._epoch
        try:
            value, etag, tags = await build()
        except BaseException as exc:
            self._building.pop(key, None)
            if isinstance(exc, Exception):
                future.set_exception(exc)
                # Nobody else may be waiting: retrieve it so that asyncio does not warn.
                future.exception()
            else:
                future.cancel()
            raise
        entry = Cached(value, etag, started, frozenset(tags))
        self._building.pop(key, None)
        if self.enabled and epoch == self._epoch:
            self._keep(key, entry)
        future.set_result(entry)
        return entry

    def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every entry carrying one of ``tags``; how many were dropped."""
        self._epoch += 1
        dropped = 0
        for tag in tags:
            for key in self._by_tag.pop(tag, set()):
                if key in self._entries:
                    self._drop(key)
                    dropped += 1
        return dropped

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._by_tag.clear()

    def _keep(self, key: Hashable, entry: Cached[Any]) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]


def deal_tag(deal_id: str) -> str:
    return f"deal:{deal_id}"


def team_tag(team_id: str) -> str:
    return f"team:{team_id}"


# Every list of deals: a join moves a deal's units, and so its place in the popular order.
DEAL_LISTS = "deals"


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110 asks
    for this header), or is ``*``."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False
