"""How the application reaches its database: one small interface, :class:`Database`.

A unit of work is a plain synchronous function ``fn(session) -> T`` run inside one transaction,
which ``Database`` commits when ``fn`` returns and rolls back when it raises. Services never commit.

Where the unit of work runs is the one decision that matters for throughput, and it is made here:

* **SQLite** has one writer. A thread hop costs more than the short transaction itself, so the
  whole unit of work runs synchronously on the event loop: no hop, no per-statement awaits, and
  requests in one process never contend for the write lock. Writes open with ``BEGIN IMMEDIATE``
  so that a transaction takes the write lock up front instead of failing on upgrade. The raw
  path's writes (joins, payments arriving, sweeps) that reach the loop in the same turn are
  committed together, each in a savepoint of its own (:class:`_GroupCommit`).
* **PostgreSQL** gains from real concurrency, so each unit of work makes exactly one hop to a
  worker thread with its own pooled connection (never one hop per statement).

Checkpoints never run inside a request or a sweep either. In WAL mode SQLite copies the log back
into the database file every thousand pages, and by default the commit that crosses the line
does it, with its fsyncs, while every other request waits behind it on the event loop. A file
database's connections turn that off; a thread of the process's own (:class:`_Checkpointer`)
does it instead, woken every so many commits, while the loop goes on serving and the worker goes
on sweeping (SQLite lets a passive checkpoint run beside a writer). The worker's and the CLI's
commits count as the loop's do: a sweep's batch of a thousand teams, which writes a few hundred
pages, spent a sixth of its time in the checkpoints it crossed.

The event loop's connections also keep their savepoints' journal in memory. A savepoint keeps a
copy of each page it changes, and SQLite writes those copies to a temporary file past 64 KiB: a
payment confirmation changes about 24 pages, so each one of a group commit wrote some fifty
pages to a file, a tenth of its CPU. Their transactions are a few requests' worth, so the copies
stay small; the blocking connections, whose sweeps and reports can be large, keep SQLite's
default.

Contention never stalls the server. Another process (``pintuan settle``, a second worker, a
backup) may hold SQLite's write lock: the event loop's own connections wait only a few
milliseconds in SQLite's busy handler, and ``run``/``run_raw`` retry ``BEGIN IMMEDIATE`` with
awaits in between, up to ``request_wait_ms``; reads in WAL mode never wait for a writer. The
blocking ``*_sync`` calls (the CLI, the worker) keep the long busy timeout: they may block.
PostgreSQL connections carry a statement and a lock timeout. Whichever gives up first, the caller
gets :class:`~pintuan.errors.DatabaseBusy` (503 with ``Retry-After``), never a driver error.

On PostgreSQL a streaming replica may take reads that can be a little stale: ``read_stale``,
``report_stale`` and ``read_stale_sync`` go to it when one is configured and fresh enough
(:mod:`pintuan.kit.replica` decides), to the primary otherwise; every other call reads the primary.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import select
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import sessionmaker

from pintuan.errors import DatabaseBusy
from pintuan.kit.metrics import GROUP_COMMIT_WRITES
from pintuan.kit.rawsql import RawTx
from pintuan.kit.replica import Replica, ReplicaUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

_IMMEDIATE = "pintuan_begin_immediate"
# The event loop's SQLite connections block at most this long per attempt at the write lock.
_LOOP_BUSY_TIMEOUT_MS = 5
# Pauses between attempts, in seconds: short first (most writers finish in milliseconds).
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.1
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# The event loop's commits between two checkpoints (a join writes about ten pages, so about
# SQLite's own thousand-page interval), and the longest wait between them while commits come.
_CHECKPOINT_EVERY_COMMITS = 100
_CHECKPOINT_INTERVAL_SECONDS = 1.0
_REPLICA_CONNECT_TIMEOUT_SECONDS = 2


class _WriteLockNotTaken(Exception):
    """BEGIN IMMEDIATE found the write lock taken: nothing ran yet, so trying again is safe."""


class _Lane:
    """One way into a SQLite file: an engine for sessions and one raw connection per thread,
    all with the same busy timeout. PostgreSQL has one lane. The event loop's lane is
    ``serving``: its savepoints are journalled in memory. A lane of a file database never
    checkpoints (``checkpoints=False``): the database's checkpoint thread does (see the module's
    docstring)."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        busy_timeout_ms: int,
        *,
        serving: bool = False,
        checkpoints: bool = True,
    ) -> None:
        self.engine = engine
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.serving = serving
        self.checkpoints = checkpoints
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
            conn = self._local.conn = _sqlite_connection(
                self.url, self.busy_timeout_ms, serving=self.serving, checkpoints=self.checkpoints
            )
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
        replica_url: str | None = None,
        replica_max_lag_seconds: float = 5.0,
        replica_sample_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._request_wait = request_wait_ms / 1000
        # The reports' lanes on SQLite (see ``report``): the lists' and the long passes'.
        self._report_limiters: dict[bool, anyio.CapacityLimiter] = {}
        if self.is_sqlite:
            # An in-memory database exists once per connection pool: it cannot be shared, nor
            # locked by another process, so it needs no lane of its own; nor has it a WAL.
            in_memory = make_url(url).database in (None, "", ":memory:")
            self.engine = _sqlite_engine(url, busy_timeout_ms, checkpoints=in_memory)
            self._blocking = _Lane(self.engine, url, busy_timeout_ms, checkpoints=in_memory)
            self._loop = (
                self._blocking
                if in_memory
                else _Lane(
                    _sqlite_engine(url, _LOOP_BUSY_TIMEOUT_MS, serving=True, checkpoints=False),
                    url,
                    _LOOP_BUSY_TIMEOUT_MS,
                    serving=True,
                    checkpoints=False,
                )
            )
            self._checkpointer = None if in_memory else _Checkpointer(url, busy_timeout_ms)
            self._group = _GroupCommit(self._loop, self._checkpointer, self._request_wait)
            self._workers: _Workers | None = None
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                # No ping before each unit of work (a round trip each): a connection the server
                # closed is noticed on its socket at checkout (_drop_if_closed_by_server), and one
                # that dies in use fails its request with 503 and renews the pool.
                pool_pre_ping=False,
                connect_args=_postgres_timeouts(statement_timeout_ms, lock_timeout_ms),
            )
            event.listen(self.engine, "checkout", _drop_if_closed_by_server)
            self._blocking = self._loop = _Lane(self.engine, url, 0)
            self._checkpointer = None
            self._workers = _Workers(pool_size)
        self.replica: Replica | None = None
        if replica_url:
            if self.is_sqlite:
                raise ValueError("a read replica needs a PostgreSQL primary")
            self.replica = Replica(
                create_engine(
                    replica_url,
                    pool_size=pool_size,
                    max_overflow=0,
                    pool_pre_ping=False,
                    # A replica that is down is noticed in seconds, not at the OS's TCP timeout.
                    connect_args={
                        **_postgres_timeouts(statement_timeout_ms, lock_timeout_ms),
                        "connect_timeout": _REPLICA_CONNECT_TIMEOUT_SECONDS,
                    },
                ),
                self.engine,
                max_lag_seconds=replica_max_lag_seconds,
                sample_seconds=replica_sample_seconds,
                pool_size=pool_size,
            )
            event.listen(self.replica.engine, "checkout", _drop_if_closed_by_server)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def run_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(session, *args)`` in one transaction, blocking while the database is busy."""
        return self._unit(self._run_session, self._blocking, fn, args, write)

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(session, *args)`` in one transaction, where this database runs it best."""
        if self._workers is None:
            return await self._on_the_loop(self._run_session, fn, args, write)
        return await self._workers.run(lambda: self.run_sync(fn, *args, write=write))

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.run(fn, *args, write=False)

    async def read_stale(self, fn: Callable[..., T], *args: Any) -> T:
        """A read that may be a little stale (lists, the feed, reports): from the replica when
        one is configured, fresh enough, and this request need not see its own writes; else
        :meth:`read`. Never for a read that a write depends on."""
        replica = self.replica
        if replica is not None and replica.serves_now():
            try:
                return await anyio.to_thread.run_sync(
                    lambda: replica.run_sync(fn, *args), limiter=replica.limiter
                )
            except ReplicaUnavailable:
                pass
        if replica is not None:
            replica.served_by_primary()
        return await self.read(fn, *args)

    async def report_stale(self, fn: Callable[..., T], *args: Any, long: bool = False) -> T:
        """Like :meth:`report` (a long read off the event loop), from the replica when it
        may serve (see :meth:`read_stale`)."""
        if self.replica is not None:
            # On PostgreSQL a read already runs in a worker thread: a report is a read.
            return await self.read_stale(fn, *args)
        return await self.report(fn, *args, long=long)

    def read_stale_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """The blocking form of :meth:`read_stale` (the feed's background rebuilds)."""
        replica = self.replica
        if replica is not None and replica.serves_now():
            try:
                return replica.run_sync(fn, *args)
            except ReplicaUnavailable:
                pass
        if replica is not None:
            replica.served_by_primary()
        return self.run_sync(fn, *args, write=False)

    async def report(self, fn: Callable[..., T], *args: Any, long: bool = False) -> T:
        """A long read (growth, dashboards, settlements, CSV exports), never on the event loop.

        On SQLite, where :meth:`read` runs on the loop, a report runs in a worker thread with
        that thread's own connection, one report at a time per process: in WAL mode it neither
        waits for the joins nor holds them up, and the loop keeps serving them meanwhile. A
        ``long`` one, a pass over whole tables (the audit, the ledger check: seconds on a big
        database), runs in a lane of its own, one at a time beside the others, so that the
        lists and pages run as reports do not wait for it. On PostgreSQL every read already
        runs in a worker thread."""
        if self._workers is not None or self._loop is self._blocking:
            return await self.read(fn, *args)
        limiter = self._report_limiters.get(long)
        if limiter is None:
            limiter = self._report_limiters[long] = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(
            lambda: self.run_sync(fn, *args, write=False), limiter=limiter
        )

    def run_raw_sync(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(tx, *args)`` with a :class:`RawTx` in one transaction (the hot path)."""
        if self.is_sqlite:
            return self._unit(self._run_raw_sqlite, self._blocking, fn, args, write)
        return _refusing_when_busy(self._run_raw_postgres, self._blocking, fn, args, write)

    async def run_raw(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Like :meth:`run`, with plain SQL instead of an ORM session. On SQLite a write is
        committed with the others that reach the event loop in the same turn."""
        if self._workers is None:
            if write:
                return await self._group.submit(fn, args)
            return await self._on_the_loop(self._run_raw_sqlite, fn, args, write)
        return await self._workers.run(lambda: self.run_raw_sync(fn, *args, write=write))

    def _unit(
        self,
        attempt: Callable[[_Lane, Callable[..., T], tuple[Any, ...], bool], T],
        lane: _Lane,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        write: bool,
    ) -> T:
        """One unit of work on ``lane``; a write that committed counts towards the next
        checkpoint (SQLite files: no connection checkpoints inside its own commit)."""
        result = _refusing_when_busy(attempt, lane, fn, args, write)
        if write and self._checkpointer is not None:
            self._checkpointer.committed()
        return result

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
                return self._unit(attempt, self._loop, fn, args, write)
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
        self, _lane: _Lane, fn: Callable[..., T], args: tuple[Any, ...], write: bool
    ) -> T:
        pooled = self.engine.raw_connection()
        conn: Any = pooled.driver_connection
        # In autocommit mode psycopg sends no BEGIN of its own. A read (the token lookup every
        # request makes, the worker's probe) then needs no BEGIN and COMMIT round trips: each of
        # its statements runs on its own, seeing what is committed. A write is the RawTx's own
        # transaction, whose BEGIN and COMMIT go out with its statements (see RawTx).
        conn.autocommit = True
        try:
            tx = RawTx(conn, sqlite=False, deferring=write)
            result = fn(tx, *args)
            if write:
                tx.commit()
            return result
        except BaseException:
            if conn.broken:
                # The server went away (a restart, a failover): so did the pool's other
                # connections. Start a fresh pool rather than fail one request per dead one.
                pooled.invalidate()
                self.engine.dispose()
            elif write:
                conn.rollback()
            raise
        finally:
            if not conn.broken:
                conn.autocommit = False
            pooled.close()

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._blocking.dispose()
        if self._loop is not self._blocking:
            self._loop.dispose()


class _Workers:
    """The threads PostgreSQL's work runs in, as many as the pool has connections.

    Each transaction makes one hop from the event loop to a thread and back. Through anyio's
    ``to_thread`` with a capacity limiter a hop cost about 70 µs of CPU under load (120 one at a
    time), through a plain executor about 25 (95): a tenth of a duplicate notification's cost
    on PostgreSQL. The caller's context variables go with the call, as anyio's do. A caller
    cancelled before its call started leaves it out; one cancelled while it runs stops
    waiting, and the call ends as it would have (its transaction commits or rolls back). The
    threads outlive ``Database.dispose`` (a disposed pool opens connections again when used);
    idle ones end with their ``Database``."""

    def __init__(self, size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="pintuan-db")

    async def run(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, contextvars.copy_context().run, call)


@dataclass(slots=True, eq=False)
class _Unit:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    since: float  # the loop's clock when it was submitted


class _Turn:
    """The writes queued on one event loop for its next turn (or its next try at the lock)."""

    __slots__ = ("loop", "pause", "pending", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[_Unit] = []
        self.scheduled = False
        self.pause = _FIRST_PAUSE


class _GroupCommit:
    """The raw path's writes on SQLite's event-loop connection, committed together.

    Under load many requests reach their write in the same turn of the event loop, and each
    committed alone: ``BEGIN IMMEDIATE``, its statements, ``COMMIT``, every page it changed
    written to the WAL again though the writes just before had written the same index and table
    pages (a join changes about 14 pages, a payment confirmation about 24). Now a write is
    queued, and at the loop's next turn the queued writes run in one transaction, in the order
    they came, each inside a savepoint of its own: one that raises is rolled back to its
    savepoint and gets its error while the others go on, and each caller has its result only
    once the shared ``COMMIT`` is done. Eight joins together write 3 pages each instead of 14
    and cost a quarter less. A write alone in its turn runs as before, without a savepoint; a
    caller gone before its turn (a cancelled request) is left out. The write lock held by
    another process is waited for as :meth:`Database.run` waits, by pausing the batch. Each
    thread's event loop has its queue (and, through the lane, its connection) of its own."""

    def __init__(
        self, lane: _Lane, checkpointer: _Checkpointer | None, request_wait: float
    ) -> None:
        self._lane = lane
        self._checkpointer = checkpointer
        self._request_wait = request_wait
        self._local = threading.local()

    def submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        turn: _Turn | None = getattr(self._local, "turn", None)
        if turn is None or turn.loop is not loop:
            # This thread's first loop, or a new one (the last one's queue went with it).
            turn = self._local.turn = _Turn(loop)
        future: asyncio.Future[T] = loop.create_future()
        turn.pending.append(_Unit(fn, args, future, loop.time()))
        if not turn.scheduled:
            turn.scheduled = True
            loop.call_soon(self._run, turn)
        return future

    def _schedule(self, turn: _Turn, delay: float) -> None:
        if turn.pending and not turn.scheduled:
            turn.scheduled = True
            turn.loop.call_later(delay, self._run, turn)

    def _run(self, turn: _Turn) -> None:
        turn.scheduled = False
        units = [unit for unit in turn.pending if not unit.future.done()]
        turn.pending = []
        if not units:
            return
        loop = turn.loop
        conn = self._lane.sqlite_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                _fail(units, exc)
                return
            # Another process holds the write lock: nothing ran, so wait and try again, up to
            # each caller's patience.
            now = loop.time()
            for unit in units:
                if now - unit.since >= self._request_wait:
                    _fail([unit], _busy_or(_WriteLockNotTaken()))
            turn.pending[:0] = [unit for unit in units if not unit.future.done()]
            self._schedule(turn, turn.pause)
            turn.pause = min(turn.pause * 2, _LONGEST_PAUSE)
            return
        turn.pause = _FIRST_PAUSE
        alone = len(units) == 1
        outcomes: list[tuple[_Unit, Any, Exception | None]] = []
        try:
            for index, unit in enumerate(units):
                if not alone:
                    conn.execute("SAVEPOINT unit")
                try:
                    result = unit.fn(RawTx(conn, sqlite=True), *unit.args)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, say): this
                        # one fails, as do those that failed before it, and the others run
                        # again at the next turn (nothing of theirs was committed).
                        _fail([unit], _busy_or(exc))
                        for failed, _, error in outcomes:
                            if error is not None:
                                _fail([failed], _busy_or(error))
                        again = [u for u, _, error in outcomes if error is None]
                        turn.pending[:0] = again + units[index + 1 :]
                        self._schedule(turn, 0)
                        return
                    conn.execute("ROLLBACK" if alone else "ROLLBACK TO unit")
                    if not alone:
                        conn.execute("RELEASE unit")
                    outcomes.append((unit, None, exc))
                else:
                    if not alone:
                        conn.execute("RELEASE unit")
                    outcomes.append((unit, result, None))
            if conn.in_transaction:
                conn.execute("COMMIT")
                GROUP_COMMIT_WRITES.observe(len(units))
                if self._checkpointer is not None:
                    self._checkpointer.committed()
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _fail(units, _busy_or(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for unit, result, error in outcomes:
            if unit.future.done():
                continue
            if error is None:
                unit.future.set_result(result)
            else:
                unit.future.set_exception(_busy_or(error))


def _busy_or(error: BaseException) -> BaseException:
    """The error a caller gets: the write lock not taken, or a lock or timeout the driver gave
    up on, is :class:`DatabaseBusy` (caused by ``error``); anything else is ``error`` itself."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(error, _WriteLockNotTaken) or _is_busy(cause):
        busy = DatabaseBusy()
        busy.__cause__ = error
        return busy
    return error


def _fail(units: list[_Unit], error: BaseException) -> None:
    for unit in units:
        if not unit.future.done():
            unit.future.set_exception(error)


class _Checkpointer:
    """Checkpoints a SQLite file's WAL from a thread of its own, on its own connection: woken
    once the process has committed ``_CHECKPOINT_EVERY_COMMITS`` times (on the event loop or
    in a blocking call: the worker, the CLI), or a second after the first commit since the last
    checkpoint. Started by the first commit, so a process that never writes has no thread."""

    def __init__(self, url: str, busy_timeout_ms: int) -> None:
        self._url = url
        self._busy_timeout_ms = busy_timeout_ms
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """One more commit, from any thread (a lock taken once a commit, which on the event
        loop is once a group of writes)."""
        with self._lock:
            self._commits += 1
            due = self._commits >= _CHECKPOINT_EVERY_COMMITS
            start = self._thread is None and not self._stopping
        if start:
            self._start()
        if due:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        conn = _sqlite_connection(self._url, self._busy_timeout_ms)
        try:
            while not self._stopping:
                self._wake.wait(_CHECKPOINT_INTERVAL_SECONDS)
                self._wake.clear()
                with self._lock:
                    commits, self._commits = self._commits, 0
                if commits == 0 or self._stopping:
                    continue
                try:
                    # PASSIVE copies what no reader still needs and never waits for the writer.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("WAL checkpoint failed; the next one will retry", exc_info=True)
        finally:
            conn.close()

    def stop(self) -> None:
        """Run no more checkpoints; wait for one under way to finish."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()


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
    except (
        _WriteLockNotTaken,
        DBAPIError,
        sqlite3.OperationalError,
        psycopg.OperationalError,
    ) as exc:
        refusal = _busy_or(exc)
        if refusal is exc:
            raise
        raise refusal from exc


def _is_busy(error: BaseException | None) -> bool:
    """The driver gave up waiting for a lock (or a statement ran past its timeout)."""
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF in _SQLITE_BUSY_CODES
    return isinstance(error, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled)


def _drop_if_closed_by_server(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a failover) is replaced before use.

    This costs no round trip, unlike a ping: an idle connection has nothing to read unless the
    server went away, which leaves end-of-file or its parting message on the socket.
    """
    if dbapi_conn.broken or dbapi_conn.closed:
        raise DisconnectionError()
    readable, _, _ = select.select([dbapi_conn.pgconn.socket], [], [], 0)
    if readable:
        raise DisconnectionError()


def _postgres_timeouts(statement_timeout_ms: int, lock_timeout_ms: int) -> dict[str, str]:
    # Set once when a connection opens, so no unit of work pays a SET statement.
    return {
        "options": f"-c statement_timeout={int(statement_timeout_ms)} "
        f"-c lock_timeout={int(lock_timeout_ms)}"
    }


def _prepare_sqlite(
    dbapi_conn: Any, busy_timeout_ms: int, *, serving: bool = False, checkpoints: bool = True
) -> None:
    # Take over transaction control from the driver so BEGIN can be IMMEDIATE.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if not checkpoints:
        # Its commits never checkpoint; the process's checkpoint thread does (see above).
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    if serving:
        # Its savepoints' page copies stay in memory instead of a temporary file (see above).
        cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_connection(
    url: str, busy_timeout_ms: int, *, serving: bool = False, checkpoints: bool = True
) -> sqlite3.Connection:
    conn = sqlite3.connect(make_url(url).database or ":memory:", check_same_thread=False)
    _prepare_sqlite(conn, busy_timeout_ms, serving=serving, checkpoints=checkpoints)
    return conn


def _sqlite_engine(
    url: str, busy_timeout_ms: int, *, serving: bool = False, checkpoints: bool = True
) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _prepare_sqlite(dbapi_conn, busy_timeout_ms, serving=serving, checkpoints=checkpoints)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
