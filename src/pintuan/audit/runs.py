"""Audit runs kept for the operator console: each run of the invariant checks is recorded, so
the latest result can be read without scanning the database again.

The checks themselves only read, and run in their own read transaction; recording the result
is a second, short write. On SQLite that keeps the write lock free while the checks scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.audit.models import AuditRun
from pintuan.audit.service import Breach
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.merchants.service import require_operator

# A run that finds more breaches keeps the first ones and the total count.
KEPT_BREACHES = 500


class AuditSource(StrEnum):
    CONSOLE = "console"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class AuditRunView:
    id: str
    source: str
    ran_by: str | None
    ran_by_name: str | None
    started_at: datetime
    finished_at: datetime
    breach_count: int
    breaches: list[Breach]

    @property
    def passed(self) -> bool:
        return self.breach_count == 0

    @property
    def duration_ms(self) -> int:
        return round((self.finished_at - self.started_at).total_seconds() * 1000)


def record_audit_run(
    session: Session,
    breaches: Sequence[Breach],
    *,
    started_at: datetime,
    finished_at: datetime,
    source: AuditSource,
    ran_by: str | None = None,
) -> AuditRun:
    """Keep the result of one audit (the breaches found, in invariant order)."""
    run = AuditRun(
        id=new_id("aud"),
        source=source.value,
        ran_by=ran_by,
        started_at=started_at,
        finished_at=finished_at,
        breach_count=len(breaches),
        breaches=[{"invariant": b.invariant, "detail": b.detail} for b in breaches][:KEPT_BREACHES],
    )
    session.add(run)
    session.flush()
    return run


def _views(session: Session, runs: Sequence[AuditRun]) -> list[AuditRunView]:
    ids = {r.ran_by for r in runs if r.ran_by}
    names: dict[str, str] = {}
    if ids:
        for user_id, name in session.execute(
            select(User.id, User.display_name).where(User.id.in_(ids))
        ):
            names[user_id] = name
    return [
        AuditRunView(
            id=r.id,
            source=r.source,
            ran_by=r.ran_by,
            ran_by_name=names.get(r.ran_by) if r.ran_by else None,
            started_at=r.started_at,
            finished_at=r.finished_at,
            breach_count=r.breach_count,
            breaches=[Breach(b["invariant"], b["detail"]) for b in r.breaches],
        )
        for r in runs
    ]


def list_audit_runs(
    session: Session, principal: Principal, *, cursor: str | None, limit: int
) -> list[AuditRunView]:
    """Audit runs newest first (operators only), ``limit + 1`` rows for the next cursor."""
    require_operator(principal)
    query = select(AuditRun).order_by(AuditRun.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(AuditRun.id < decode_cursor(cursor))
    return _views(session, list(session.scalars(query)))


def latest_audit_run(session: Session, principal: Principal) -> AuditRunView | None:
    """The most recent audit run (operators only), or None when none has run yet."""
    runs = list_audit_runs(session, principal, cursor=None, limit=1)
    return runs[0] if runs else None


def audit_run(session: Session, principal: Principal, run_id: str) -> AuditRunView:
    """One audit run (operators only)."""
    require_operator(principal)
    run = session.get(AuditRun, run_id)
    if run is None:
        raise NotFound(f"No audit run {run_id}.", code="audit_run_not_found")
    return _views(session, [run])[0]
