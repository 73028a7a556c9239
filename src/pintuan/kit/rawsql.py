"""The engine's way to the database: plain SQL on the driver's own connection.

An ORM session costs about twenty times a bare transaction on SQLite, and building a Core statement
costs more than running it. The rule: a statement is raw SQL when it runs inside one of the
engine's transactions, the ones that change who holds a seat and what money is owed, and in the
lookups every request makes before them. That is joining and cancelling a seat, payments arriving
(webhooks, polls, the wallet), seats ending and teams failing or succeeding (the sweeps included),
the provider calls a payment is owed, their journals and wallet moves, the outbox events written
with them, the API token lookup, the idempotency keys and the worker's probe for due work. Such a
function takes a :class:`RawTx`, its statements written once with ``:name`` parameters, and runs
either as a whole unit of work (``Database.run_raw``) or inside an ORM unit of work on the same
connection and transaction (:func:`raw_tx`: a provider's result, a payout, a seat cancelled from a
page). Everything else is ORM: catalogue, accounts, consoles and reports, audit, settlement,
growth, and the worker's leasing and retrying of provider calls. Rows are read by column name into
typed records (:meth:`RawTx.one_as`, :meth:`RawTx.all_as`, :meth:`RawTx.scalar`), status words
come from the domain's enums, and a driver's integrity error surfaces as
:class:`IntegrityViolation`.

A status word given at definition (``Sql("... WHERE status = :held", held=SeatStatus.HELD)``) is
written into the statement's text as a literal, not bound at each run. SQLite compiles a
statement again at every run whose bound value it had compared with a partial index's predicate
(``seats.status = :confirmed`` against ``WHERE status = 'held'``), even when the index is not the
one used: the compile cost four times the query (23 µs against 4). A prepared PostgreSQL plan,
for its part, never matches a bound value against a partial index's predicate.

Values cross the boundary in the forms the ORM also stores: instants as aware UTC in
PostgreSQL and as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text in SQLite, booleans as 0/1 in SQLite.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

import psycopg
from sqlalchemy.orm import Session

from pintuan.kit.jsontext import dumps
from pintuan.kit.time import utc_now

R = TypeVar("R")

_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_IN_LIST = re.compile(r"IN_LIST\(:(\w+)\)")
# A statement waiting for the next round trip, as the driver takes it, and the read waiting for
# its cursor (None for a statement nobody reads).
_Waiting = tuple[str, "Mapping[str, Any] | Sequence[Any]", "Later | None"]
# A deferring transaction's first statement, waiting with whatever comes next.
_OPENING: _Waiting = ("BEGIN", {}, None)
_COMMIT: _Waiting = ("COMMIT", {}, None)
# Undo what the transaction did and begin it again (RawTx.start_over).
_STARTING_OVER: tuple[_Waiting, ...] = (("ROLLBACK", {}, None), _OPENING)
# A fixed value written into a statement as a literal: a word that cannot hide a parameter or
# end its quotes, or a whole number.
_WORD = re.compile(r"[A-Za-z0-9_.\-]*")


def _literal(value: object) -> str | None:
    """``value`` as a SQL literal both databases read alike, or None to bind it."""
    if isinstance(value, str) and _WORD.fullmatch(value):
        return f"'{value}'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class IntegrityViolation(Exception):
    """A statement broke a unique, foreign-key or check constraint (either driver's error);
    ``constraint`` names it where the driver tells (PostgreSQL)."""

    def __init__(self, message: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


def _violation(exc: sqlite3.IntegrityError | psycopg.IntegrityError) -> IntegrityViolation:
    constraint = exc.diag.constraint_name if isinstance(exc, psycopg.Error) else None
    return IntegrityViolation(str(exc), constraint)


class Sql:
    """One statement, written once with ``:name`` parameters, rendered per driver on first use.

    ``column IN_LIST(:ids)`` takes a whole Python list as one parameter (a JSON array that
    SQLite unpacks with ``json_each``, an array for PostgreSQL's ``= ANY``), so a batch of a
    thousand ids is one bound value instead of a thousand.

    ``SKIP_LOCKED`` at the end of a query's ``SELECT`` is PostgreSQL's ``FOR UPDATE SKIP
    LOCKED`` (rows another transaction holds are passed over, not waited for) and nothing on
    SQLite, whose one writer already runs a claim whole (see ``kit.claims``).

    Keyword arguments fix parameters once, at definition: status words come from the enums
    (``Sql("... WHERE status = :held", held=SeatStatus.HELD)``). A fixed word or whole number is
    written into the text as a literal (see the module's docstring); any other fixed value is
    bound at each run. ``text`` is the statement as written, with every ``:name``.
    """

    __slots__ = (
        "_lists",
        "_names",
        "_pg_rows",
        "_pyformat",
        "_rows",
        "_sqlite",
        "_written",
        "bound",
        "inlined",
        "text",
    )

    def __init__(self, text: str, **bound: object) -> None:
        self.text = " ".join(text.split())
        fixed = {
            name: value.value if isinstance(value, Enum) else value for name, value in bound.items()
        }
        literals = {name: _literal(value) for name, value in fixed.items()}
        inline = {name: literal for name, literal in literals.items() if literal is not None}
        # The names written out, which a caller's parameters may not name again.
        self.inlined = frozenset(inline)
        self.bound: dict[str, object] = {n: v for n, v in fixed.items() if n not in inline}
        written = _PARAM.sub(lambda m: inline.get(m[1], m[0]), self.text) if inline else self.text
        self._sqlite = _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\1))", written).replace(
            " SKIP_LOCKED", ""
        )
        self._pyformat: str | None = None
        self._rows = _RowsForm.of(self._sqlite)
        # The parameters that take a whole list (SQLite's are sent as JSON text).
        self._lists = frozenset(_IN_LIST.findall(self.text))
        # The answer's column names by driver (PostgreSQL's, then SQLite's), once read.
        self._names: list[tuple[str, ...] | None] = [None, None]
        # PostgreSQL refuses a statement whose DO UPDATE meets one key twice, where a statement
        # a row did not: an upsert keeps a statement a row there.
        upsert = " DO UPDATE " in self.text.upper()
        self._pg_rows = None if upsert else _RowsForm.of(written, placeholder="%s")
        self._written = written

    def rows_form(self, sqlite: bool = True) -> _RowsForm | None:
        """An ``INSERT ... VALUES (...)`` statement's parts for writing many rows in one
        statement on SQLite, or on PostgreSQL (None for any other statement, and for an upsert
        on PostgreSQL)."""
        return self._rows if sqlite else self._pg_rows

    def refuse_fixed(self, given: Mapping[str, Any]) -> None:
        """Refuse parameters that name a value written into the text at definition: the text
        would silently keep the fixed one."""
        if self.inlined and not self.inlined.isdisjoint(given):
            raise ValueError(f"fixed at definition, not given again: {self.inlined & set(given)}")

    def names(self, cursor: Any, sqlite: bool) -> tuple[str, ...]:
        """The columns of this statement's answer, read from the first cursor that ran it: a
        statement's text fixes them, and the driver builds its description anew each time."""
        known = self._names[sqlite]
        if known is None:
            known = self._names[sqlite] = _column_names(cursor)
        return known

    def for_driver(self, sqlite: bool) -> str:
        if sqlite:
            return self._sqlite  # sqlite3 understands :name itself
        if self._pyformat is None:
            any_of = _IN_LIST.sub(r"= ANY(:\1)", self._written).replace(
                "SKIP_LOCKED", "FOR UPDATE SKIP LOCKED"
            )
            self._pyformat = _PARAM.sub(r"%(\1)s", any_of.replace("%", "%%"))
        return self._pyformat


class RawTx:
    """Statements inside an open transaction on one driver connection.

    The engine's own PostgreSQL writes (``deferring``: ``Database.run_raw`` gives one on a
    connection in autocommit mode, and commits it with :meth:`commit`) are this object's own
    transactions: its ``BEGIN``, any statement given to :meth:`send` and its ``COMMIT`` wait to
    go out with the next statement that is read, in one round trip (psycopg's pipeline mode). So
    a transaction of two statements read in turn is two round trips, not four; rows given to
    :meth:`send_many` wait the same way, and :meth:`together` reads several statements in one
    round trip. Everywhere else :meth:`send` and :meth:`send_many` write at once."""

    __slots__ = ("_conn", "_ended", "_instant_texts", "_may_end", "_moment", "_pending", "sqlite")

    def __init__(self, driver_connection: Any, *, sqlite: bool, deferring: bool = False) -> None:
        self._conn = driver_connection
        self.sqlite = sqlite
        self._instant_texts: dict[datetime, str] = {}
        self._moment: Any = None
        # Statements waiting for the next round trip, as the driver takes them (None: nothing
        # waits, each statement goes out as it comes).
        self._pending: list[_Waiting] | None = [_OPENING] if deferring and not sqlite else None
        # Whether a statement may end this transaction (ends_with_last), and whether one did.
        self._may_end = False
        self._ended = False

    def _params(self, sql: Sql, params: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if params:
            sql.refuse_fixed(params)
        if sql.bound:
            params = {**sql.bound, **params} if params else sql.bound
        if self.sqlite and sql._lists and params:
            params = {k: dumps(v) if k in sql._lists else v for k, v in params.items()}
        return params or {}

    def execute(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        """Run one statement; the driver's cursor is returned for reading its rows."""
        try:
            return self._run(sql.for_driver(self.sqlite), self._params(sql, params))
        except (sqlite3.IntegrityError, psycopg.IntegrityError) as exc:
            raise _violation(exc) from exc

    def ends_with_last(self) -> None:
        """Let the work's last statement (:meth:`last_one_as`) end this deferring transaction
        (PostgreSQL): its caller runs nothing in it after the work and commits it as usual,
        which then has nothing left to do."""
        self._may_end = self._pending is not None

    def one_as_outside(
        self, into: Callable[..., R], sql: Sql, params: Mapping[str, Any] | None = None
    ) -> R | None:
        """:meth:`one_as` for a read that needs nothing of the transaction: a ``SELECT`` that
        locks nothing, of rows the transaction has not written. As a deferring transaction's
        first statement (PostgreSQL) it goes out alone, and the ``BEGIN`` waits for the next
        one: under READ COMMITTED a statement sees what is committed when it starts, inside a
        transaction or not, and a round trip of its own costs less without the pipeline that
        would carry the ``BEGIN``."""
        if self._pending != [_OPENING]:
            return self.one_as(into, sql, params)
        self._pending = []
        try:
            return self.one_as(into, sql, params)
        finally:
            self._pending = [_OPENING]

    def last_one_as(
        self, into: Callable[..., R], sql: Sql, params: Mapping[str, Any] | None = None
    ) -> R | None:
        """:meth:`one_as` for the work's last statement. Where the transaction may end with it
        (:meth:`ends_with_last`), its ``COMMIT`` goes out in the same round trip, after it and
        whatever waits; with nothing sent before it, it goes out alone instead, a transaction
        of its own (autocommit) without ``BEGIN`` or ``COMMIT``. Either way the transaction has
        ended, and nothing more may run in it: what the work does after it (building its answer)
        can no longer undo it, so it must be what cannot fail. Elsewhere this is
        :meth:`one_as`."""
        if not self._may_end:
            return self.one_as(into, sql, params)
        pending = self._pending
        assert pending is not None  # only a deferring transaction may end early
        last = Later(self, sql, None)
        statement: _Waiting = (sql.for_driver(False), self._params(sql, params), last)
        if pending == [_OPENING]:
            self._pending = [statement]  # alone: no BEGIN, so no COMMIT either
        else:
            pending += [statement, _COMMIT]
        self._may_end, self._ended = False, True
        self.flush()
        return last.one_as(into)

    def _open(self) -> None:
        if self._ended:
            raise RuntimeError("this transaction ended with its last statement")

    def _run(self, text: str, values: Any, *, many: bool = False) -> Any:
        """``text`` with ``values`` (each of them, with ``many``) on a new cursor, after what
        waits to go out; the cursor is returned."""
        self._open()
        cursor = self._conn.cursor()
        run = cursor.executemany if many else cursor.execute
        if self._pending:
            # What waits goes out in the same round trip, the BEGIN first if it waits.
            with self._conn.pipeline():
                self._send_pending()
                run(text, values)
        else:
            run(text, values)
        return cursor

    def send(self, sql: Sql, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement whose answer nobody reads and that nothing refuses (a savepoint, a
        last-used time, the delete of what has expired): in the engine's PostgreSQL writes it
        goes out with the next statement or the commit, saving its own round trip; elsewhere it
        runs now. An error of its own would be raised by that next one."""
        if self._pending is None:
            self.execute(sql, params)
            return
        self._defer(sql.for_driver(False), self._params(sql, params))

    def later(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Later:
        """A read whose answer is not needed before the next statement: in the engine's
        PostgreSQL writes it goes out with that statement (or the commit), saving its own round
        trip, and its rows are there once that one has gone, even when that one failed;
        elsewhere it runs now."""
        if self._pending is None:
            return Later(self, sql, self.execute(sql, params))
        later = Later(self, sql, None)
        self._defer(sql.for_driver(False), self._params(sql, params), later=later)
        return later

    def start_over(self) -> None:
        """Undo everything this deferring transaction did (PostgreSQL), a failed statement
        included, and begin it again: the ROLLBACK and the new BEGIN go out with the next
        statement, and what waited to go out is dropped."""
        if self._pending is None:
            raise RuntimeError("only a deferring transaction starts over")
        self._pending = list(_STARTING_OVER)

    def flush(self) -> None:
        """Send what waits to go out (a deferring transaction's) now, in one round trip; a
        statement sent without its answer that broke a constraint is refused here."""
        pending = self._pending
        if not pending:
            return
        try:
            if len(pending) == 1:
                # One statement is one round trip either way, and costs less outside a pipeline
                # (a COMMIT after the last statement read, say).
                self._send_pending()
                return
            with self._conn.pipeline():
                self._send_pending()
        except psycopg.IntegrityError as exc:
            raise _violation(exc) from exc

    def commit(self) -> None:
        """End a deferring transaction (PostgreSQL): its COMMIT goes out with whatever still
        waits. One in which nothing ran has nothing to end."""
        pending = self._pending
        if pending is None:
            raise RuntimeError("only a deferring transaction commits itself")
        if self._ended:  # its last statement ended it
            return
        if pending == [_OPENING]:  # nothing went out, nor waits to: nothing to end
            self._pending = []
            return
        pending.append(_COMMIT)
        self.flush()

    def _send_pending(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            for text, values, later in pending:
                cursor = self._conn.cursor()
                cursor.execute(text, values)
                if later is not None:
                    later.cursor = cursor

    def together(self, *statements: tuple[Sql, Mapping[str, Any] | None]) -> list[Answer]:
        """Statements none of whose parameters hangs on another's answer, each one's answer
        in order: on PostgreSQL they go out in one round trip (psycopg's pipeline mode), with
        whatever waits to go before them; on SQLite each runs in turn. They run in the order
        given, so a later one sees what an earlier one wrote."""
        if self.sqlite:
            return [Answer.of(self.execute(sql, params), sql, True) for sql, params in statements]
        self._open()
        try:
            with self._conn.pipeline():
                self._send_pending()
                cursors = []
                for sql, params in statements:
                    cursor = self._conn.cursor()
                    cursor.execute(sql.for_driver(False), self._params(sql, params))
                    cursors.append(cursor)
        except psycopg.IntegrityError as exc:
            raise _violation(exc) from exc
        return [
            Answer.of(cursor, sql, False)
            for cursor, (sql, _) in zip(cursors, statements, strict=True)
        ]

    def one(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        """The first row as the driver gives it (a tuple), or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    def scalar(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def one_as(
        self, into: Callable[..., R], sql: Sql, params: Mapping[str, Any] | None = None
    ) -> R | None:
        """The first row built into ``into`` by column name (``into(**row)``), or None."""
        return _first_built(into, sql, self.execute(sql, params), self.sqlite)

    def all_as(
        self, into: Callable[..., R], sql: Sql, params: Mapping[str, Any] | None = None
    ) -> list[R]:
        """Every row built into ``into`` by column name (``into(**row)``)."""
        cursor = self.execute(sql, params)
        return _all_built(into, sql.names(cursor, self.sqlite), cursor.fetchall())

    def column(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The first column of every row (a list of ids, say)."""
        return [row[0] for row in self.execute(sql, params).fetchall()]

    def many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement for each of ``rows``; an ``INSERT ... VALUES`` writes them in a
        few statements of many rows each (see ``_RowsForm``), and one row is one statement
        (psycopg's ``executemany`` pipelines even one row, at twice a statement's cost)."""
        self._many(sql, rows, deferred=False)

    def send_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        """:meth:`many` for rows nobody reads back and nothing refuses (journals, outbox
        events): in the engine's PostgreSQL writes they go out with the next statement or the
        commit, as :meth:`send`'s statement does; elsewhere they are written now."""
        self._many(sql, rows, deferred=self._pending is not None)

    def _many(self, sql: Sql, rows: Sequence[Mapping[str, Any]], *, deferred: bool) -> None:
        if not rows:
            return
        sql.refuse_fixed(rows[0])
        if sql.bound:
            rows = [{**sql.bound, **row} for row in rows]
        write = self._defer if deferred else self._run
        try:
            if len(rows) == 1:
                write(sql.for_driver(self.sqlite), rows[0])
                return
            form = sql.rows_form(self.sqlite)
            if form is None:
                write(sql.for_driver(self.sqlite), rows, many=True)
                return
            names = form.names
            step = max(1, min(_MAX_ROWS_PER_INSERT, _MAX_SQLITE_PARAMETERS // max(1, len(names))))
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                write(form.text(len(chunk)), [row[n] for row in chunk for n in names])
        except (sqlite3.IntegrityError, psycopg.IntegrityError) as exc:
            raise _violation(exc) from exc

    def _defer(
        self, text: str, values: Any, *, many: bool = False, later: Later | None = None
    ) -> None:
        """Keep ``text`` with ``values`` (each of them, with ``many``) for the next round trip,
        its rows for ``later``."""
        assert self._pending is not None
        self._open()
        if many:
            self._pending.extend((text, row, None) for row in values)
        else:
            self._pending.append((text, values, later))

    def instant(self, value: datetime) -> Any:
        """An aware datetime as this driver stores it."""
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        if not self.sqlite:
            return utc
        # A transaction writes its one ``now`` many times (a confirmation, eight), between
        # other instants (each outbox event's own): the instants written are kept with their
        # text, a few at a time.
        texts = self._instant_texts
        text = texts.get(utc)
        if text is None:
            if len(texts) >= _INSTANTS_KEPT:
                texts.clear()
            # YYYY-MM-DD HH:MM:SS.ffffff, as the ORM writes it; twice as fast as strftime.
            text = texts[utc] = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
        return text

    def moment(self) -> Any:
        """The clock read once for this transaction (at the first ask), as the driver stores
        it: the time of what it writes without an instant of its own, such as its outbox
        events, which happen together at its commit."""
        moment = self._moment
        if moment is None:
            moment = self._moment = self.instant(utc_now())
        return moment

    def read_instant(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        text = str(value)
        try:
            # The stored form is naive UTC text: naming its offset in the text parses it aware
            # at a fifth of the cost of parsing it naive and replacing its zone.
            parsed = datetime.fromisoformat(text + "+00:00")
        except ValueError:  # text with an offset of its own
            parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)

    def read_optional_instant(self, value: Any) -> datetime | None:
        """:meth:`read_instant` of a nullable column: None stays None."""
        return None if value is None else self.read_instant(value)


# Rows per statement when many are written at once on SQLite, and the parameters a statement may
# bind (SQLite's own limit is 32,766 since 3.32; Debian's builds allow more).
_MAX_ROWS_PER_INSERT = 1000
_MAX_SQLITE_PARAMETERS = 32_000
# Instants a transaction keeps with their text (RawTx.instant); more start the memo anew.
_INSTANTS_KEPT = 8
_VALUES = " VALUES ("
_QUOTED = re.compile(r"'(?:[^']|'')*'")


@dataclasses.dataclass(frozen=True, slots=True)
class _RowsForm:
    """An ``INSERT INTO t (...) VALUES (<row>) [ON CONFLICT ...]`` statement as the parts that
    write many rows in one statement: ``VALUES (<row>), (<row>), ...`` with positional
    parameters, ``names`` giving each one's name in order.

    Why: SQLite's driver lets go of the interpreter's lock for every statement it steps, and a
    thread that lets go waits for it again behind a busy event loop: about 5 ms, the
    interpreter's switch interval. ``executemany`` steps one statement per row, so a batch of
    18,000 rows written beside a busy loop took over a minute; as 18 statements of 1,000 rows
    it takes what it costs (about 80 ms). On PostgreSQL psycopg's ``executemany`` pipelines
    its rows, and a pipeline costs the client more than the statement: two rows cost 69 µs
    of CPU, as one statement 28 (an upsert excepted, see ``Sql``)."""

    head: str
    row: str
    tail: str
    names: tuple[str, ...]

    @staticmethod
    def of(text: str, placeholder: str = "?") -> _RowsForm | None:
        """The parts of ``text``, a row's parameters written as ``placeholder`` (``?`` for
        SQLite; ``%s`` for psycopg, the statement's own ``%`` then doubled)."""
        if not text.upper().startswith("INSERT INTO "):
            return None
        at = text.upper().find(_VALUES)
        if at < 0:
            return None
        start = at + len(_VALUES) - 1
        depth, end = 0, -1
        for index in range(start, len(text)):
            if text[index] == "(":
                depth += 1
            elif text[index] == ")":
                depth -= 1
                if depth == 0:
                    end = index + 1
                    break
        # Only where the row's values are its parameters' only place (and hold no quoted text
        # that could hide one): positional and named parameters do not mix.
        if end < 0 or _PARAM.search(text[:start] + text[end:]):
            return None
        if any(":" in quoted for quoted in _QUOTED.findall(text, start, end)):
            return None
        row = text[start:end]
        names = tuple(_PARAM.findall(row))
        head, tail = text[: at + len(" VALUES ")], text[end:]
        if placeholder != "?":
            head, row, tail = (part.replace("%", "%%") for part in (head, row, tail))
        return _RowsForm(head, _PARAM.sub(placeholder, row), tail, names)

    def text(self, rows: int) -> str:
        return self.head + ", ".join([self.row] * rows) + self.tail


class Answer:
    """One statement's rows from :meth:`RawTx.together`, read as :class:`RawTx` reads them."""

    __slots__ = ("names", "rows")

    def __init__(self, names: tuple[str, ...], rows: list[Any]) -> None:
        self.names = names
        self.rows = rows

    @staticmethod
    def of(cursor: Any, sql: Sql, sqlite: bool) -> Answer:
        if cursor.description is None:  # a statement that returns no rows
            return Answer((), [])
        return Answer(sql.names(cursor, sqlite), list(cursor.fetchall()))

    def one(self) -> Any:
        """The first row (a tuple), or None."""
        return self.rows[0] if self.rows else None

    def one_as(self, into: Callable[..., R]) -> R | None:
        """The first row built into ``into`` by column name, or None."""
        return _built(into, self.names, self.rows[0]) if self.rows else None

    def all_as(self, into: Callable[..., R]) -> list[R]:
        """Every row built into ``into`` by column name."""
        return _all_built(into, self.names, self.rows)


class Later:
    """A read sent with a later statement (:meth:`RawTx.later`), its rows read when asked."""

    __slots__ = ("_sql", "_tx", "cursor")

    def __init__(self, tx: RawTx, sql: Sql, cursor: Any) -> None:
        self._tx = tx
        self._sql = sql
        self.cursor = cursor  # set once the statement has gone out

    def one_as(self, into: Callable[..., R]) -> R | None:
        """The first row built into ``into`` by column name, or None; sent now if it still
        waits."""
        if self.cursor is None:
            self._tx.flush()
        if self.cursor is None:
            raise RuntimeError(
                "this read never went out: its transaction started over, or a statement sent"
                " before it failed"
            )
        return _first_built(into, self._sql, self.cursor, self._tx.sqlite)


def _first_built(into: Callable[..., R], sql: Sql, cursor: Any, sqlite: bool) -> R | None:
    """The first row of ``sql``'s ``cursor`` built into ``into`` by column name, or None."""
    row = cursor.fetchone()
    return None if row is None else _built(into, sql.names(cursor, sqlite), row)


def _built(into: Callable[..., R], names: tuple[str, ...], row: Any) -> R:
    if _in_field_order(into, names):
        return into(*row)
    return into(**dict(zip(names, row, strict=True)))


def _all_built(into: Callable[..., R], names: tuple[str, ...], rows: Sequence[Any]) -> list[R]:
    if _in_field_order(into, names):  # asked once for all the rows
        return [into(*row) for row in rows]
    return [into(**dict(zip(names, row, strict=True))) for row in rows]


def _column_names(cursor: Any) -> tuple[str, ...]:
    # Both drivers name a column by its alias, so a statement's ``AS`` names the field.
    return tuple(column[0] for column in cursor.description)


# (record, column names) -> whether the columns are the record's fields in order.
_FIELD_ORDER: dict[tuple[Callable[..., Any], tuple[str, ...]], bool] = {}


def _in_field_order(into: Callable[..., Any], names: tuple[str, ...]) -> bool:
    """Whether a row's columns are exactly ``into``'s dataclass fields, in order: then the row
    is passed by position, which costs half of building keyword arguments from a dict. Asked
    once per record and statement shape."""
    key = (into, names)
    known = _FIELD_ORDER.get(key)
    if known is None:
        fields = dataclasses.fields(into) if dataclasses.is_dataclass(into) else ()
        known = bool(fields) and all(f.init and not f.kw_only for f in fields)
        known = known and names == tuple(f.name for f in fields)
        _FIELD_ORDER[key] = known
    return known


def raw_tx(session: Session) -> RawTx:
    """The raw side of a session's transaction (same connection, same transaction)."""
    connection = session.connection()
    return RawTx(
        connection.connection.driver_connection, sqlite=connection.dialect.name == "sqlite"
    )
