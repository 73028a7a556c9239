"""SQLite's plans of statements, read for passes over a whole table.

SQLite plans here without statistics, as it does in production (nothing runs ``ANALYZE``), so a
plan that walks a table on a small test database walks it on a big one too. A pass over a
partial index is not counted: such an index holds only the rows that are due (the sweeps' work,
the queues), which stay few.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, event

_PARAMETER = re.compile(r"(?<!:):(\w+)")
_NAMED = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)
_PASS = re.compile(r"^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?")


def _aliases(text: str) -> dict[str, str]:
    """Each name a table goes by in ``text`` (its own name and its alias) -> the table."""
    named: dict[str, str] = {}
    for table, alias in _NAMED.findall(text):
        named[table] = table
        if alias:
            named.setdefault(alias, table)
    return named


def whole_passes(conn: sqlite3.Connection, text: str) -> list[str]:
    """The plan's full passes over a table or over an index that is not partial, each as
    ``"<table> (<SQLite's line>)"``; ``text`` takes ``:named`` parameters."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    partial = {
        row[0]
        for row in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index'")
        if row[1] and " WHERE " in row[1].upper()
    }
    names = _aliases(text)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN " + text, dict.fromkeys(_PARAMETER.findall(text))
    ).fetchall()
    passes = []
    for *_, detail in plan:
        match = _PASS.match(detail)
        if match is None:
            continue
        table = names.get(match[1], match[1])
        if table in tables and match[2] not in partial:
            passes.append(f"{table} ({detail})")
    return passes


def positional_passes(conn: sqlite3.Connection, text: str) -> list[str]:
    """``whole_passes`` of a statement as the ORM sends it (``?`` parameters)."""
    return whole_passes(conn, re.sub(r"\?", lambda _: ":p", text))


@contextmanager
def statements_sent(url: URL) -> Iterator[list[str]]:
    """The statements the ORM sends to the database at ``url`` meanwhile."""
    sent: list[str] = []

    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if conn.engine.url == url:
            sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)
