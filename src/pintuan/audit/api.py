"""HTTP endpoints of audit runs: operators check the invariants on demand and read the results."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.audit import runs
from pintuan.audit.ledger import LedgerReport, check_ledger
from pintuan.audit.runs import AuditRunView, AuditSource
from pintuan.audit.service import Breach, audit_database
from pintuan.domain.roles import Principal
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.merchants.service import require_operator
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1/audit/runs", tags=["audit"])


class BreachOut(BaseModel):
    invariant: str
    detail: str


class RunnerOut(BaseModel):
    user_id: str
    display_name: str | None


class AuditRunOut(BaseModel):
    id: str
    source: str
    ran_by: RunnerOut | None
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    passed: bool
    breach_count: int
    breaches: list[BreachOut]

    @classmethod
    def of(cls, run: AuditRunView) -> AuditRunOut:
        return cls(
            id=run.id,
            source=run.source,
            ran_by=RunnerOut(user_id=run.ran_by, display_name=run.ran_by_name)
            if run.ran_by
            else None,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_ms=run.duration_ms,
            passed=run.passed,
            breach_count=run.breach_count,
            breaches=[BreachOut(invariant=b.invariant, detail=b.detail) for b in run.breaches],
        )


async def audit_now(services: Services, principal: Principal) -> list[Breach]:
    """Check the invariants in one read transaction (the write lock stays free meanwhile), as
    a report: it reads every table whole, so on SQLite it runs off the event loop."""
    require_operator(principal)
    return await services.db.report(audit_database, long=True)


@router.post("", status_code=201, response_model=AuditRunOut)
async def run_audit(
    request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Check every invariant now and keep the result (operators)."""
    started_at = utc_now()
    breaches = await audit_now(services, principal)
    finished_at = utc_now()

    def work(session: Session) -> AuditRunOut:
        run = runs.record_audit_run(
            session,
            breaches,
            started_at=started_at,
            finished_at=finished_at,
            source=AuditSource.CONSOLE,
            ran_by=principal.user_id,
        )
        return AuditRunOut.of(runs.audit_run(session, principal, run.id))

    return await run_write(request, services, principal, work, status_code=201)


@router.get("", response_model=Page[AuditRunOut])
async def list_runs(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[AuditRunOut]:
    """Audit runs newest first, from the console and from ``pintuan audit`` (operators)."""
    rows = await services.db.read(
        lambda s: runs.list_audit_runs(s, principal, cursor=cursor, limit=limit)
    )
    return page_of(rows, limit, AuditRunOut.of)


ledger_router = Router(tags=["audit"])


class LedgerCheckOut(BaseModel):
    sound: bool
    journals: int
    totals: dict[str, dict[str, int]]
    breaches: list[BreachOut]

    @classmethod
    def of(cls, report: LedgerReport) -> LedgerCheckOut:
        return cls(
            sound=not report.breaches,
            journals=report.journals,
            totals=report.totals,
            breaches=[BreachOut(invariant=b.invariant, detail=b.detail) for b in report.breaches],
        )


@ledger_router.get("/v1/ops/ledger/check", response_model=LedgerCheckOut)
async def ledger_check(principal: CurrentPrincipal, services: ServicesDep) -> LedgerCheckOut:
    """Verify the whole ledger now (operators only): journals balance, payments match their
    journals, merchants and wallets are owed what was paid."""
    require_operator(principal)
    return LedgerCheckOut.of(await services.db.report(check_ledger, long=True))
