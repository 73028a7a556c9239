"""Record domain events in the outbox, in the transaction of the change they describe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from pintuan.events.models import OutboxEvent
from pintuan.kit.orm import table_of
from pintuan.kit.time import utc_now

_outbox = table_of(OutboxEvent)


def record_event(session: Session, type_: str, subject_id: str, **payload: Any) -> None:
    session.execute(
        insert(_outbox).values(
            type=type_, subject_id=subject_id, payload=payload, created_at=utc_now()
        )
    )


def record_events(session: Session, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Several events in one statement: (type, subject id, payload) each."""
    if not events:
        return
    now = utc_now()
    session.execute(
        insert(_outbox),
        [{"type": t, "subject_id": s, "payload": p, "created_at": now} for t, s, p in events],
    )
