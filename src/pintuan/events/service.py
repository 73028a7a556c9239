"""Record domain events in the outbox, in the transaction of the change they describe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pintuan.kit.jsontext import dumps
from pintuan.kit.rawsql import RawTx, Sql

INSERT_EVENT = Sql(
    "INSERT INTO outbox_events (type, subject_id, payload, created_at) "
    "VALUES (:type, :subject_id, :payload, :created_at)"
)


def record_event(tx: RawTx, type_: str, subject_id: str, **payload: Any) -> None:
    """One event about ``subject_id``, with ``payload`` as its JSON body."""
    record_events(tx, [(type_, subject_id, payload)])


def record_events(tx: RawTx, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Several events: (type, subject id, payload) each."""
    if not events:
        return
    at = tx.moment()  # a transaction's events happen together, at its commit
    rows = [
        {"type": t, "subject_id": s, "payload": dumps(p), "created_at": at} for t, s, p in events
    ]
    tx.send_many(INSERT_EVENT, rows)
