"""Redis, when one is configured (``PINTUAN_REDIS_URL``): the clients, and the two small uses
every layer may share (a fixed-window counter, an in-flight marker).

Redis holds nothing Pintuan cannot rebuild: the database stays the source of truth. What lives
here is either a filter in front of it (hot-deal admission, in ``teams.admission``), a count
that may be lost on a restart (rate-limit windows start again), or a marker whose loss only
sends a request to the database's own check (the idempotency claim).

Requests use the asyncio client, one per event loop (a test client runs each app on a loop of
its own); the worker and the command line use the blocking client. Both are made on first use,
so a process that never touches Redis never connects to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

# Every key Pintuan writes starts so, so that one Redis may serve other tenants beside it.
PREFIX = "pintuan:"
# A request waits this long for Redis at most; past it the caller falls back to the database.
TIMEOUT_SECONDS = 2.0
# What a call to a Redis that went away raises: redis-py's own errors and, under uvloop, the
# RuntimeError of a connection the server reset between its connect and its first write (the
# client has dropped that connection by then; the next call makes a new one).
FAILURES: tuple[type[Exception], ...] = (redis.RedisError, RuntimeError)

# Deletes a marker only if it is still ours: a marker whose lease ran out may be another's now.
_CLEAR_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLink:
    """The clients of one Redis URL, made when first used."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._blocking: redis.Redis | None = None
        self._by_loop: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}
        self._lock = threading.Lock()

    def blocking(self) -> redis.Redis:
        """The blocking client (the worker, the command line, tests)."""
        with self._lock:
            if self._blocking is None:
                self._blocking = redis.Redis.from_url(
                    self.url,
                    decode_responses=True,
                    socket_timeout=TIMEOUT_SECONDS,
                    socket_connect_timeout=TIMEOUT_SECONDS,
                )
            return self._blocking

    def client(self) -> aioredis.Redis:
        """The asyncio client of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._by_loop.get(loop)
            if found is None:
                # Clients of loops that have closed go with them (each test's app has its own).
                for old in [old for old in self._by_loop if old.is_closed()]:
                    del self._by_loop[old]
                found = self._by_loop[loop] = aioredis.Redis.from_url(
                    self.url,
                    decode_responses=True,
                    socket_timeout=TIMEOUT_SECONDS,
                    socket_connect_timeout=TIMEOUT_SECONDS,
                )
            return found

    def close(self) -> None:
        """Close the blocking client (asyncio clients close with their loops)."""
        with self._lock:
            if self._blocking is not None:
                self._blocking.close()
                self._blocking = None


def _sha(source: str) -> str:
    found = _SHAS.get(source)
    if found is None:
        found = _SHAS[source] = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis's own name of a script)
    return found


_SHAS: dict[str, str] = {}


async def run_script(client: Any, source: str, *args: Any) -> Any:
    """Run a Lua script by its SHA (sent whole only the first time a Redis meets it: after a
    restart, say), with no keys and ``args`` as its ARGV."""
    try:
        return await client.evalsha(_sha(source), 0, *args)
    except redis.exceptions.NoScriptError:
        return await client.eval(source, 0, *args)


def run_script_blocking(client: Any, source: str, *args: Any) -> Any:
    """:func:`run_script` on the blocking client."""
    try:
        return client.evalsha(_sha(source), 0, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(source, 0, *args)


async def count_in_window(
    link: RedisLink, bucket: str, now: datetime, *, window_seconds: int
) -> tuple[int, datetime] | None:
    """Count one more in ``bucket``'s current fixed window: the count so far, this one
    included, and when the window ends; None when Redis failed (count elsewhere). The window's
    key expires with the window."""
    epoch = int(now.timestamp())
    start = epoch - epoch % window_seconds
    key = f"{PREFIX}limit:{bucket}:{start}"
    try:
        async with link.client().pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds + 1)
            count, _ = await pipe.execute()
    except FAILURES as exc:
        log.warning("Redis failed counting an attempt", extra={"error": str(exc)})
        return None
    ends = datetime.fromtimestamp(start, tz=now.tzinfo) + timedelta(seconds=window_seconds)
    return int(count), ends


async def mark_in_flight(link: RedisLink, name: str, holder: str, lease: timedelta) -> bool:
    """Set the marker ``name`` for ``holder`` for ``lease`` unless another holds it: False when
    taken. A Redis that fails answers True: the database's own claim still decides."""
    lease_ms = max(1, int(lease.total_seconds() * 1000))
    client: Any = link.client()
    try:
        return bool(await client.set(f"{PREFIX}inflight:{name}", holder, nx=True, px=lease_ms))
    except FAILURES as exc:
        log.warning("Redis failed marking a request in flight", extra={"error": str(exc)})
        return True


async def clear_in_flight(link: RedisLink, name: str, holder: str) -> None:
    """Take the marker ``name`` down, if ``holder`` still holds it (else its lease does)."""
    client: Any = link.client()
    try:
        await client.eval(_CLEAR_IF_MINE, 1, f"{PREFIX}inflight:{name}", holder)
    except FAILURES as exc:
        log.warning("Redis failed clearing an in-flight marker", extra={"error": str(exc)})
