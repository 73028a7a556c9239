"""HTTP endpoint of the audit log: what was done to a merchant and its deals, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.auditlog import service
from pintuan.auditlog.service import AuditRow
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.services import ServicesDep

router = Router(tags=["audit log"])


class AuditActor(BaseModel):
    id: str
    name: str


class AuditTarget(BaseModel):
    kind: str = Field(description="merchant, deal or application")
    id: str


class AuditEntryOut(BaseModel):
    id: str
    actor: AuditActor
    action: str = Field(description="e.g. suspend, approve, pause, end, moderate, reject")
    target: AuditTarget
    reason: str | None = Field(
        description="Why, as the person wrote it (asked for by the "
        "consoles before suspend, pause, stop, end and reject)"
    )
    created_at: datetime

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntryOut:
        return cls(
            id=row.id,
            actor=AuditActor(id=row.actor_id, name=row.actor_name),
            action=row.action,
            target=AuditTarget(kind=row.target_kind, id=row.target_id),
            reason=row.reason,
            created_at=row.created_at,
        )


@router.get("/v1/merchants/{merchant_id}/audit-log", response_model=Page[AuditEntryOut])
async def merchant_audit_log(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    target_id: Annotated[
        str | None, Query(max_length=40, description="Only actions on this deal or merchant")
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[AuditEntryOut]:
    """Who did what to the merchant and its deals, and why, newest first (its staff and
    operators)."""
    rows = await services.db.read(
        lambda s: service.list_actions(
            s, principal, merchant_id, target_id=target_id, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, AuditEntryOut.of)
