"""The hot path's way to the database: plain SQL on the driver's own connection.

An ORM session costs about twenty times a bare transaction on SQLite, and building a Core statement
costs more than running it. The few statements on the request hot path (authenticating a token,
joining a team, claiming an idempotency key) are therefore written once as SQL with ``:name``
parameters and run straight on the DB-API cursor, inside the same transaction an ORM session
would use. Everything else stays on the ORM.

Values cross the boundary in the forms the ORM also stores: instants as aware UTC in
PostgreSQL and as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text in SQLite, booleans as 0/1 in SQLite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_IN_LIST = re.compile(r"IN_LIST\(:(\w+)\)")
_SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"


class Sql:
    """One statement, written once with ``:name`` parameters, rendered per driver on first use.

    ``column IN_LIST(:ids)`` takes a whole Python list as one parameter (a JSON array that
    SQLite unpacks with ``json_each``, an array for PostgreSQL's ``= ANY``), so a batch of a
    thousand ids is one bound value instead of a thousand.
    """

    __slots__ = ("_pyformat", "_sqlite", "text")

    def __init__(self, text: str) -> None:
        self.text = " ".join(text.split())
        self._sqlite = _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\1))", self.text)
        self._pyformat: str | None = None

    def for_driver(self, sqlite: bool) -> str:
        if sqlite:
            return self._sqlite  # sqlite3 understands :name itself
        if self._pyformat is None:
            any_of = _IN_LIST.sub(r"= ANY(:\1)", self.text)
            self._pyformat = _PARAM.sub(r"%(\1)s", any_of.replace("%", "%%"))
        return self._pyformat


class RawTx:
    """Statements inside an open transaction on one driver connection."""

    __slots__ = ("_conn", "sqlite")

    def __init__(self, driver_connection: Any, *, sqlite: bool) -> None:
        self._conn = driver_connection
        self.sqlite = sqlite

    def execute(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        cursor = self._conn.cursor()
        if self.sqlite and params:
            params = {k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()}
        cursor.execute(sql.for_driver(self.sqlite), params or {})
        return cursor

    def one(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    def many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._conn.cursor().executemany(sql.for_driver(self.sqlite), rows)

    def instant(self, value: datetime) -> Any:
        """An aware datetime as this driver stores it."""
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None).strftime(_SQLITE_INSTANT) if self.sqlite else utc

    def read_instant(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def raw_tx(session: Session) -> RawTx:
    """The raw side of a session's transaction (same connection, same transaction)."""
    connection = session.connection()
    return RawTx(
        connection.connection.driver_connection, sqlite=connection.dialect.name == "sqlite"
    )
