"""HTTP endpoints of the reconciliation findings the worker keeps (operators only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.kit.time import utc_now
from pintuan.ledger import findings
from pintuan.ledger.models import ReconciliationFinding
from pintuan.services import ServicesDep

router = Router(prefix="/v1/ops/reconciliation/findings", tags=["ledger"])


class KeptFindingOut(BaseModel):
    id: str
    provider: str
    day: date
    difference: str
    kind: str
    provider_ref: str
    ours_id: str | None
    ours: MoneyOut | None
    theirs_id: str | None
    theirs: MoneyOut | None
    state: str
    note: str | None
    decided_by: str | None
    found_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, f: ReconciliationFinding) -> KeptFindingOut:
        return cls(
            id=f.id,
            provider=f.provider,
            day=f.day,
            difference=f.difference,
            kind=f.kind,
            provider_ref=f.provider_ref,
            ours_id=f.ours_id,
            ours=MoneyOut.of(f.ours_amount, f.currency) if f.ours_amount is not None else None,
            theirs_id=f.theirs_id,
            theirs=MoneyOut.of(f.theirs_amount, f.currency)
            if f.theirs_amount is not None
            else None,
            state=f.state,
            note=f.note,
            decided_by=f.decided_by,
            found_at=f.found_at,
            updated_at=f.updated_at,
        )


class FindingDecisionIn(StrictModel):
    state: Literal["explained", "fixed"]
    note: Annotated[str, Field(min_length=1, max_length=500)]


@router.get("", response_model=Page[KeptFindingOut])
async def list_findings(
    principal: CurrentPrincipal,
    services: ServicesDep,
    state: Literal["open", "explained", "fixed"] | None = Query(default=None),
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[KeptFindingOut]:
    """Differences the daily reconciliation found, newest first, optionally of one state."""
    chosen = findings.FindingState(state) if state else None
    rows = await services.db.read(
        lambda s: findings.list_findings(s, principal, state=chosen, cursor=cursor, limit=limit)
    )
    return page_of(rows, limit, KeptFindingOut.of)


@router.post("/{finding_id}", response_model=KeptFindingOut)
async def decide_finding(
    finding_id: str,
    body: FindingDecisionIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Mark an open finding explained or fixed, with a note saying how."""

    def work(session: Session) -> KeptFindingOut:
        return KeptFindingOut.of(
            findings.decide_finding(
                session,
                principal,
                finding_id,
                findings.FindingState(body.state),
                body.note,
                utc_now(),
            )
        )

    return await run_write(request, services, principal, work)
