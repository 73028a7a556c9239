"""Reads that may be a little stale, served by a PostgreSQL streaming replica when one is
configured (``PINTUAN_DATABASE_REPLICA_URL``) and fresh enough.

Which reads: only those a caller asks for with ``Database.read_stale`` (and its report and
blocking forms): the feed's snapshot, deal lists, growth reports, consoles' lists. Everything else
reads the primary, and so does every read inside a request that writes, and every read of a
caller who wrote a moment ago (see :class:`ReadYourWritesMiddleware`).

How fresh is "fresh enough" is measured here, off the request path: every
``PINTUAN_REPLICA_SAMPLE_SECONDS`` a task of the server notes the primary's WAL position and the
instant it asked, then asks the replica how far it has replayed. The replica then holds every
commit acknowledged before the newest noted instant whose position it has replayed: that instant
is ``fresh_through``, and ``now - fresh_through`` bounds how stale a read from it can be, on this
process's own clock (no comparison of two servers' clocks, no false alarm when the primary is
idle, unlike ``now() - pg_last_xact_replay_timestamp()``). Reads go to the replica only while
that bound is under ``PINTUAN_REPLICA_MAX_LAG_SECONDS``, and the replica answers; a replica that
is down, paused or behind loses its reads to the primary until a sample finds it caught up.

Read-your-writes follows from the same bound. Every successful write answer sets a cookie,
``pintuan_read_primary_until``, an instant ``PINTUAN_REPLICA_MAX_LAG_SECONDS`` ahead; until then
that caller's reads go to the primary. Afterwards a replica read is only served while the replica
holds everything committed before ``now - max_lag``, which is after the write: the caller sees it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pintuan.kit.metrics import REPLICA_LAG_BYTES, REPLICA_LAG_SECONDS, REPLICA_SERVING, STALE_READS

T = TypeVar("T")

log = logging.getLogger(__name__)

READ_PRIMARY_COOKIE = "pintuan_read_primary_until"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ReplicaStatus = Literal["unknown", "streaming", "lagging", "down", "not_a_replica"]

# True while this request (or task) must read the primary: it writes, or its caller just wrote.
_read_primary: ContextVar[bool] = ContextVar("pintuan_read_primary", default=False)
_SERVED_BY_REPLICA = STALE_READS.labels(served_by="replica")
_SERVED_BY_PRIMARY = STALE_READS.labels(served_by="primary")


@contextmanager
def reading_primary() -> Iterator[None]:
    """Within this block every stale-tolerant read of this task reads the primary."""
    token = _read_primary.set(True)
    try:
        yield
    finally:
        _read_primary.reset(token)


class ReplicaUnavailable(Exception):
    """The replica did not answer a read (down, restarting, or a recovery conflict)."""


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    """What the last sample found; ``lag_seconds`` is the staleness bound now."""

    status: ReplicaStatus
    lag_seconds: float | None
    lag_bytes: int | None
    serving: bool

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "lag_bytes": self.lag_bytes,
            "reads": "replica" if self.serving else "primary",
        }


_PRIMARY_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
_REPLICA_POSITION = (
    "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
)


class Replica:
    """A streaming replica: its connection pool, its measured lag and the routing decision."""

    def __init__(
        self,
        engine: Engine,
        primary: Engine,
        *,
        max_lag_seconds: float,
        sample_seconds: float,
        pool_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_lag_seconds = max_lag_seconds
        self.sample_seconds = sample_seconds
        self._primary = primary
        self._clock = clock
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        self.limiter = anyio.CapacityLimiter(pool_size)
        # (instant asked, primary's WAL position then): enough to cover twice the lag allowed.
        self._seen: deque[tuple[float, int]] = deque(
            maxlen=max(16, int(4 * max_lag_seconds / sample_seconds) + 4)
        )
        self._status: ReplicaStatus = "unknown"
        self._fresh_through: float | None = None
        self._lag_bytes: int | None = None
        self._estimate: float | None = None

    # ------------------------------------------------------------------ routing

    def serves_now(self) -> bool:
        """Whether a stale-tolerant read of this task goes to the replica now."""
        return not _read_primary.get() and self._fresh_enough()

    @staticmethod
    def served_by_primary() -> None:
        """Count a stale-tolerant read that the primary answered instead."""
        _SERVED_BY_PRIMARY.inc()

    def _fresh_enough(self) -> bool:
        fresh = self._fresh_through
        return (
            self._status == "streaming"
            and fresh is not None
            and self._clock() - fresh < self.max_lag_seconds
        )

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in one read-only transaction on the replica."""
        try:
            with self._reader() as session, session.begin():
                result = fn(session, *args)
        except DBAPIError as exc:
            if not isinstance(exc.orig, psycopg.OperationalError):
                raise
            # Down, restarting, or a query the replay cancelled: the primary answers instead.
            # A lost connection also stops the replica's reads until a sample finds it well.
            if exc.connection_invalidated:
                self._status = "down"
                self.engine.dispose()
            raise ReplicaUnavailable() from exc
        _SERVED_BY_REPLICA.inc()
        return result

    # ------------------------------------------------------------------ measuring

    def health(self) -> ReplicaHealth:
        """The last sample's findings, with the staleness bound as of now."""
        fresh = self._fresh_through
        if self._status in ("down", "not_a_replica", "unknown"):
            lag = None
        elif fresh is not None:
            lag = max(0.0, self._clock() - fresh)
        else:
            lag = self._estimate
        return ReplicaHealth(self._status, lag, self._lag_bytes, self._fresh_enough())

    def sample(self) -> None:
        """Ask the primary for its WAL position, then the replica how far it has replayed
        (blocking: the server runs it in a thread, between requests' work)."""
        asked = self._clock()
        try:
            with self._primary.connect() as conn:
                position = int(conn.exec_driver_sql(_PRIMARY_POSITION).scalar_one())
        except Exception:
            # Without the primary's position nothing is known about the lag: read the primary
            # (whose own failure the requests will report).
            log.warning("could not read the primary's WAL position", exc_info=True)
            self._record("unknown", None, None, None)
            return
        self._seen.append((asked, position))
        try:
            with self.engine.connect() as conn:
                recovering, replayed, estimate = conn.exec_driver_sql(_REPLICA_POSITION).one()
        except Exception:
            log.warning("the replica does not answer; reads go to the primary", exc_info=True)
            self.engine.dispose()
            self._record("down", None, None, None)
            return
        if not recovering:
            # Promoted, or pointed at a primary: it no longer follows this primary.
            self._record("not_a_replica", None, None, None)
            return
        replayed = int(replayed)
        fresh = next((at for at, lsn in reversed(self._seen) if lsn <= replayed), None)
        lag = None if fresh is None else max(0.0, self._clock() - fresh)
        if lag is None:
            oldest = self._seen[0][0]
            lag = max(self._clock() - oldest, float(estimate or 0.0))
        status: ReplicaStatus = "streaming" if lag < self.max_lag_seconds else "lagging"
        self._record(status, fresh, max(0, position - replayed), lag)

    def _record(
        self,
        status: ReplicaStatus,
        fresh_through: float | None,
        lag_bytes: int | None,
        lag: float | None,
    ) -> None:
        self._status, self._fresh_through = status, fresh_through
        self._lag_bytes, self._estimate = lag_bytes, lag
        # Unknown lag is exported as -1: a gauge has no "absent", and -1 cannot be a lag.
        REPLICA_LAG_SECONDS.set(-1 if lag is None else lag)
        REPLICA_LAG_BYTES.set(-1 if lag_bytes is None else lag_bytes)
        REPLICA_SERVING.set(1 if self._fresh_enough() else 0)

    async def watch(self, stop: asyncio.Event) -> None:
        """Sample the lag every ``sample_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            await anyio.to_thread.run_sync(self.sample)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.sample_seconds)

    def dispose(self) -> None:
        self.engine.dispose()


class ReadYourWritesMiddleware:
    """Marks which requests must read the primary, and remembers a writer for a while.

    A request that writes (any method but GET, HEAD and OPTIONS) reads the primary throughout;
    when it succeeds, its answer sets ``pintuan_read_primary_until`` (unix seconds) ``window``
    seconds ahead. A request carrying that cookie, still in the future, reads the primary too.
    A cookie rather than a header so that browsers carry it without help and API clients that
    keep cookies do too; it names an instant rather than a WAL position, so that no write pays
    a query for its position, and any API process can judge it with nothing but its clock."""

    def __init__(
        self, app: ASGIApp, *, window: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.window = window
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writes = scope["method"] not in _SAFE_METHODS
        if not writes and not self._marked(scope):
            await self.app(scope, receive, send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                until = self.clock() + self.window
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"set-cookie", self._cookie(until).encode("latin-1")),
                ]
            await send(message)

        with reading_primary():
            await self.app(scope, receive, remember if writes else send)

    def _marked(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"cookie" and READ_PRIMARY_COOKIE.encode() in value:
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                    until = float(jar[READ_PRIMARY_COOKIE].value)
                except (KeyError, ValueError, CookieError):
                    return False
                return until > self.clock()
        return False

    def _cookie(self, until: float) -> str:
        # Max-Age a little past the instant, so the browser drops it soon after it stops counting.
        return (
            f"{READ_PRIMARY_COOKIE}={until:.3f}; Max-Age={int(self.window) + 1}; Path=/; "
            "HttpOnly; SameSite=Lax"
        )
