"""Turn outbox events into the in-app notifications shoppers read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pintuan.errors import NotFound
from pintuan.events.models import OutboxEvent
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.time import utc_now
from pintuan.notifications.models import Notification

outbox = table_of(OutboxEvent)

# Which events a shopper hears about, as what, and who: the payload key holding the audience.
NOTICES: dict[str, list[tuple[str, str]]] = {
    "team.succeeded": [("team_succeeded", "member_ids")],
    # A failed team tells every member, and those who had paid that their seat is refunded.
    "team.failed": [("team_failed", "member_ids"), ("seat_refunded", "refunded_ids")],
    "seat.refunded": [("seat_refunded", "user_id")],
    "payment.returned": [("money_returned", "user_id")],
    # Fulfilment of goods: the address taken, the parcel on its way, its receipt.
    "seat.address_chosen": [("address_chosen", "user_id")],
    "seat.shipped": [("seat_shipped", "user_id")],
    "seat.received": [("seat_received", "user_id")],
}
_AUDIENCES = frozenset(audience for rules in NOTICES.values() for _, audience in rules)


def dispatch_outbox(session: Session, limit: int) -> int:
    """Deliver up to ``limit`` undelivered events, oldest first; returns how many."""
    rows = session.execute(
        select(outbox.c.id, outbox.c.type, outbox.c.subject_id, outbox.c.payload)
        .where(outbox.c.dispatched_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    now = utc_now()
    notices: list[dict[str, Any]] = []
    for row in rows:
        for kind, audience in NOTICES.get(row.type, []):
            recipients = row.payload.get(audience) or []
            for user_id in recipients if isinstance(recipients, list) else [recipients]:
                notices.append(
                    {
                        "id": new_id("ntf"),
                        "user_id": user_id,
                        "kind": kind,
                        "data": {"subject_id": row.subject_id, **_public(row.payload)},
                        "created_at": now,
                    }
                )
    if notices:
        session.execute(insert(Notification), notices)
    session.execute(
        update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(dispatched_at=now)
    )
    return len(rows)


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    """What of an event a notification may show: never other people's ids."""
    return {k: v for k, v in payload.items() if k not in _AUDIENCES}


def list_notifications(
    session: Session, user_id: str, cursor_id: str | None, limit: int
) -> list[Notification]:
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(limit + 1)
    )
    if cursor_id is not None:
        query = query.where(Notification.id < cursor_id)
    return list(session.scalars(query))


def mark_read(session: Session, user_id: str, notification_id: str) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise NotFound(f"No notification {notification_id}.", code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = utc_now()
        session.flush()
    return notification
