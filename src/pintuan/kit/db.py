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
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from pintuan.kit.rawsql import RawTx

T = TypeVar("T")

_IMMEDIATE = "pintuan_begin_immediate"


class Database:
    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, busy_timeout_ms)
            self._limiter: anyio.CapacityLimiter | None = None
        else:
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True
            )
            self._limiter = anyio.CapacityLimiter(pool_size)
        self._writer = self.engine.execution_options(**{_IMMEDIATE: True})
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=self._writer, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on exit, rolled back on an exception."""
        factory = self._write_sessions if write else self._sessions
        with factory() as session, session.begin():
            yield session

    def run_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        with self.transaction(write=write) as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(session, *args)`` in one transaction, where this database runs it best."""
        if self._limiter is None:
            return self.run_sync(fn, *args, write=write)
        return await anyio.to_thread.run_sync(
            lambda: self.run_sync(fn, *args, write=write), limiter=self._limiter
        )

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.run(fn, *args, write=False)

    def run_raw_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(tx, *args)`` with a :class:`RawTx` in one transaction (the hot path)."""
        if self.is_sqlite:
            return self._run_raw_sqlite(fn, args, write)
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

    def _run_raw_sqlite(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        # One connection per thread, kept: in a server that is the event loop's one connection,
        # as the bare reference has, with no pool checkout and reset around every request.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _sqlite_connection(self.url, self._busy_timeout_ms)
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = fn(RawTx(conn, sqlite=True), *args)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run_raw(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Like :meth:`run`, with plain SQL instead of an ORM session."""
        if self._limiter is None:
            return self.run_raw_sync(fn, *args, write=write)
        return await anyio.to_thread.run_sync(
            lambda: self.run_raw_sync(fn, *args, write=write), limiter=self._limiter
        )

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.engine.dispose()


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
