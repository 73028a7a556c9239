"""Counting a request's round trips to PostgreSQL: libpq's own trace of every connection the
engine checks out while the block runs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import pq
from sqlalchemy import event

from pintuan.services import Services


def round_trips(trace: str) -> int:
    """Round trips in a libpq trace: each time the client, having sent, reads an answer."""
    sides = [line.split("\t")[1] for line in trace.splitlines() if line.count("\t") >= 2]
    return sum(1 for sent, read in itertools.pairwise(sides) if (sent, read) == ("F", "B"))


@contextmanager
def counted(services: Services, trace: Path) -> Iterator[list[int]]:
    """Trace the block's connections into ``trace``; the list yielded holds, after the block,
    the round trips they made."""

    def traced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        pgconn = dbapi_conn.pgconn
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        pgconn.trace(out.fileno())

    def untraced(dbapi_conn: Any, _record: Any) -> None:
        if dbapi_conn is not None:
            dbapi_conn.pgconn.untrace()

    found: list[int] = []
    with trace.open("w") as out:
        event.listen(services.db.engine, "checkout", traced)
        event.listen(services.db.engine, "checkin", untraced)
        try:
            yield found
        finally:
            event.remove(services.db.engine, "checkout", traced)
            event.remove(services.db.engine, "checkin", untraced)
    found.append(round_trips(trace.read_text()))
