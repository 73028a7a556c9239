"""HTTP endpoints of in-app notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.routing import Router
from pintuan.notifications import service
from pintuan.notifications.models import Notification
from pintuan.services import ServicesDep

router = Router(prefix="/v1/me/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: str
    kind: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(id=n.id, kind=n.kind, data=n.data, created_at=n.created_at, read_at=n.read_at)


@router.get("", response_model=Page[NotificationOut])
async def list_notifications(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[NotificationOut]:
    """Your notifications (team success, failure, refunds), newest first."""
    cursor_id = decode_cursor(cursor) if cursor else None
    rows = await services.db.read(
        lambda s: service.list_notifications(s, principal.user_id, cursor_id, limit)
    )
    return page_of(rows, limit, NotificationOut.of)


@router.post("/{notification_id}/read", response_model=NotificationOut)
async def mark_read(
    notification_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    def work(session: Session) -> NotificationOut:
        return NotificationOut.of(service.mark_read(session, principal.user_id, notification_id))

    return await run_write(request, services, principal, work)
