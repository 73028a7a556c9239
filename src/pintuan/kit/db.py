"""How the application reaches its database: one small interface, :class:`Database`.

A unit of work is a plain synchronous function ``fn(session) -> T`` run inside one transaction,
which ``Database`` commits when ``fn`` returns and rolls back when it raises. Services never commit.

Where the unit of work runs is the one decision that matters for throughput, and it is made here:

* **SQLite** has one writer. A thread hop costs more than the short transaction itself, so the
  whole unit of work runs synchronously on the event loop: no hop, no per-statement awaits, and
  requests in one process never contend for the write lock. Writes open with ``BEGIN IMMEDIATE``
  so that a transaction takes the write lock up front instead of failing on upgrade.
* **PostgreSQL** gains from real concurrency, so each unit of work makes exactly one hop to a
  worker thread with its own pooled connection (never one hop per statement).

Contention never stalls the server. Another process (``pintuan settle``, a second worker, a
backup) may hold SQLite's write lock: the event loop's own connections wait only a few
milliseconds in SQLite's busy handler, and ``run``/``run_raw`` retry ``BEGIN IMMEDIATE`` with
awaits in between, up to ``request_wait_ms``; reads in WAL mode never wait for a writer. The
blocking ``*_sync`` calls (the CLI, the worker) keep the long busy timeout: they may block.
PostgreSQL connections carry a statement and a lock timeout. Whichever gives up first, the caller
gets :class:`~pintuan.errors.DatabaseBusy` (503 with ``Retry-After``), never a driver error.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from pintuan.errors import DatabaseBusy
from pintuan.kit.rawsql import RawTx

T = TypeVar("T")

_IMMEDIATE = "pintuan_begin_immediate"
# The event loop's SQLite connections block at most this long per attempt at the write lock.
_LOOP_BUSY_TIMEOUT_MS = 5
# Pauses between attempts, in seconds: short first (most writers finish in milliseconds).
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.1
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class _WriteLockNotTaken(Exception):
    """BEGIN IMMEDIATE found the write lock taken: nothing ran yet, so trying again is safe."""


class _Lane:
    """One way into a SQLite file: an engine for sessions and one raw connection per thread,
    all with the same busy timeout. PostgreSQL has one lane."""

    def __init__(self, engine: Engine, url: str, busy_timeout_ms: int) -> None:
        self.engine = engine
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.reader = sessionmaker(bind=engine, expire_on_commit=False)
        self.writer = sessionmaker(
            bind=engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )
        self._local = threading.local()

    def sqlite_connection(self) -> sqlite3.Connection:
        # One connection per thread, kept: in a server that is the event loop's one connection,
        # as the bare reference has, with no pool checkout and reset around every request.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _sqlite_connection(self.url, self.busy_timeout_ms)
        return conn

    def dispose(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.engine.dispose()


class Database:
    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 5000,
        request_wait_ms: int = 5000,
        pool_size: int = 10,
        statement_timeout_ms: int = 30000,
        lock_timeout_ms: int = 5000,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._request_wait = request_wait_ms / 1000
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, busy_timeout_ms)
            self._blocking = _Lane(self.engine, url, busy_timeout_ms)
            # An in-memory database exists once per connection pool: it cannot be shared, nor
            # locked by another process, so it needs no lane of its own.
            in_memory = make_url(url).database in (None, "", ":memory:")
            self._loop = (
                self._blocking
                if in_memory
                else _Lane(_sqlite_engine(url, _LOOP_BUSY_TIMEOUT_MS), url, _LOOP_BUSY_TIMEOUT_MS)
            )
            self._limiter: anyio.CapacityLimiter | None = None
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args=_postgres_timeouts(statement_timeout_ms, lock_timeout_ms),
            )
            self._blocking = self._loop = _Lane(self.engine, url, 0)
            self._limiter = anyio.CapacityLimiter(pool_size)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def run_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(session, *args)`` in one transaction, blocking while the database is busy."""
        return _refusing_when_busy(self._run_session, self._blocking, fn, args, write)

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(session, *args)`` in one transaction, where this database runs it best."""
        if self._limiter is None:
            return await self._on_the_loop(self._run_session, fn, args, write)
        return await anyio.to_thread.run_sync(
            lambda: self.run_sync(fn, *args, write=write), limiter=self._limiter
        )

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.run(fn, *args, write=False)

    def run_raw_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(tx, *args)`` with a :class:`RawTx` in one transaction (the hot path)."""
        if self.is_sqlite:
            return _refusing_when_busy(self._run_raw_sqlite, self._blocking, fn, args, write)
        return _refusing_when_busy(self._run_raw_postgres, self._blocking, fn, args, write)

    async def run_raw(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Like :meth:`run`, with plain SQL instead of an ORM session."""
        if self._limiter is None:
            return await self._on_the_loop(self._run_raw_sqlite, fn, args, write)
        return await anyio.to_thread.run_sync(
            lambda: self.run_raw_sync(fn, *args, write=write), limiter=self._limiter
        )

    async def _on_the_loop(
        self,
        attempt: Callable[[_Lane, Callable[..., T], tuple[Any, ...], bool], T],
        fn: Callable[..., T],
        args: tuple[Any, ...],
        write: bool,
    ) -> T:
        # SQLite on the event loop: each attempt blocks for a few milliseconds at most; between
        # attempts the loop serves other requests. Uncontended, this is one plain call.
        waited = 0.0
        pause = _FIRST_PAUSE
        while True:
            try:
                return _refusing_when_busy(attempt, self._loop, fn, args, write)
            except DatabaseBusy as exc:
                if (
                    not isinstance(exc.__cause__, _WriteLockNotTaken)
                    or waited >= self._request_wait
                ):
                    raise
            await anyio.sleep(pause)
            waited += pause
            pause = min(pause * 2, _LONGEST_PAUSE)

    @staticmethod
    def _run_session(lane: _Lane, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        factory = lane.writer if write else lane.reader
        with factory() as session, session.begin():
            try:
                # Open the transaction now, so that a taken write lock is met before fn runs.
                session.connection()
            except DBAPIError as exc:
                if write and _is_busy(exc.orig):
                    raise _WriteLockNotTaken from exc
                raise
            return fn(session, *args)

    @staticmethod
    def _run_raw_sqlite(lane: _Lane, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        conn = lane.sqlite_connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as exc:
            if write and _is_busy(exc):
                raise _WriteLockNotTaken from exc
            raise
        try:
            result = fn(RawTx(conn, sqlite=True), *args)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _run_raw_postgres(
        self, _lane: _Lane, fn: Callable[..., T], args: tuple[Any, ...], _write: bool
    ) -> T:
        pooled = self.engine.raw_connection()
        conn: Any = pooled.driver_connection
        try:
            result = fn(RawTx(conn, sqlite=False), *args)
            conn.commit()
            return result
        except BaseException:
            conn.rollback()
            raise
        finally:
            pooled.close()

    def dispose(self) -> None:
        self._blocking.dispose()
        if self._loop is not self._blocking:
            self._loop.dispose()


def _refusing_when_busy(
    attempt: Callable[[_Lane, Callable[..., T], tuple[Any, ...], bool], T],
    lane: _Lane,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    write: bool,
) -> T:
    """Run one attempt; a lock or timeout the driver gave up on becomes :class:`DatabaseBusy`."""
    try:
        return attempt(lane, fn, args, write)
    except _WriteLockNotTaken as exc:
        raise DatabaseBusy() from exc
    except DBAPIError as exc:
        if _is_busy(exc.orig):
            raise DatabaseBusy() from exc
        raise
    except (sqlite3.OperationalError, psycopg.OperationalError) as exc:
        if _is_busy(exc):
            raise DatabaseBusy() from exc
        raise


def _is_busy(error: BaseException | None) -> bool:
    """The driver gave up waiting for a lock (or a statement ran past its timeout)."""
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF in _SQLITE_BUSY_CODES
    return isinstance(error, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled)


def _postgres_timeouts(statement_timeout_ms: int, lock_timeout_ms: int) -> dict[str, str]:
    # Set once when a connection opens, so no unit of work pays a SET statement.
    return {
        "options": f"-c statement_timeout={int(statement_timeout_ms)} "
        f"-c lock_timeout={int(lock_timeout_ms)}"
    }


def _prepare_sqlite(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    # Take over transaction control from the driver so BEGIN can be IMMEDIATE.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_connection(url: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(make_url(url).database or ":memory:", check_same_thread=False)
    _prepare_sqlite(conn, busy_timeout_ms)
    return conn


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _prepare_sqlite(dbapi_conn, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
