"""Reconciliation on a schedule, with its findings kept until an operator deals with them.

Each provider's statement day is reconciled once it is over (plus a margin), by the worker;
every difference is stored as a finding, ``open`` until an operator marks it ``explained`` or
``fixed``. A movement that one side dated a day and the other the next (a capture just before
the provider's midnight, its record just after) is only a difference of timing: when the next
day's run finds its twin, the earlier finding is marked explained by the match and the new one
is not stored. Holds are reconciled too: the provider's uncaptured holds against the payments
we believe are held.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain.payments import PaymentProvider, ProviderRecord
from pintuan.domain.reconciliation import Difference, Finding
from pintuan.domain.roles import Principal
from pintuan.errors import Conflict, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.time import zone
from pintuan.ledger.models import ReconciliationDay, ReconciliationFinding
from pintuan.ledger.reconcile import reconcile_day
from pintuan.ledger.settlement import day_bounds
from pintuan.merchants.service import require_operator
from pintuan.payments.models import Payment

log = logging.getLogger(__name__)

# A provider's statement for a day is asked for this long after the day ends there.
STATEMENT_MARGIN = timedelta(hours=2)
HOLD = "hold"


class FindingState(StrEnum):
    OPEN = "open"
    EXPLAINED = "explained"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """One hold the provider still keeps uncaptured (its list of open authorisations)."""

    provider_ref: str
    amount: int
    currency: str


def _key(provider: str, day: date, difference: str, kind: str, ref: str, a: str, b: str) -> str:
    return "|".join((provider, day.isoformat(), difference, kind, ref, a, b))[:400]


_OPPOSITE = {
    Difference.EXTRA.value: Difference.MISSING.value,
    Difference.MISSING.value: Difference.EXTRA.value,
}


def _timing_twin(
    session: Session, provider: str, day: date, finding: Finding
) -> ReconciliationFinding | None:
    """An open finding of the day before or after that this one cancels: the same movement,
    seen by the other side on a neighbouring day."""
    amount = (finding.ours or finding.theirs).amount  # type: ignore[union-attr]
    opposite = _OPPOSITE[finding.difference.value]
    amount_column = (
        ReconciliationFinding.theirs_amount
        if finding.difference is Difference.EXTRA
        else ReconciliationFinding.ours_amount
    )
    return session.scalars(
        select(ReconciliationFinding)
        .where(
            ReconciliationFinding.provider == provider,
            ReconciliationFinding.state == FindingState.OPEN.value,
            ReconciliationFinding.difference == opposite,
            ReconciliationFinding.kind == finding.kind.value,
            ReconciliationFinding.provider_ref == finding.provider_ref,
            amount_column == amount,
            ReconciliationFinding.day.in_((day - timedelta(days=1), day + timedelta(days=1))),
        )
        .order_by(ReconciliationFinding.id)
        .limit(1)
    ).first()


def keep_findings(
    session: Session, provider: str, day: date, findings: Sequence[Finding], now: datetime
) -> int:
    """Store the day's findings (a rerun stores nothing twice); those that only differ in
    timing from an open one of a neighbouring day explain it instead. Returns how many are new."""
    stored = 0
    for finding in findings:
        if finding.difference in (Difference.EXTRA, Difference.MISSING):
            twin = _timing_twin(session, provider, day, finding)
            if twin is not None:
                twin.state = FindingState.EXPLAINED.value
                twin.note = f"timing: the other side has it on {day.isoformat()}"
                twin.updated_at = now
                continue
        ours, theirs = finding.ours, finding.theirs
        key = _key(
            provider,
            day,
            finding.difference.value,
            finding.kind.value,
            finding.provider_ref,
            ours.source_id if ours else "",
            theirs.source_id if theirs else "",
        )
        if session.scalar(select(ReconciliationFinding.id).where(ReconciliationFinding.key == key)):
            continue
        session.add(
            ReconciliationFinding(
                id=new_id("rcf"),
                key=key,
                provider=provider,
                day=day,
                difference=finding.difference.value,
                kind=finding.kind.value,
                provider_ref=finding.provider_ref,
                ours_id=ours.source_id if ours else None,
                ours_amount=ours.amount if ours else None,
                theirs_id=theirs.source_id if theirs else None,
                theirs_amount=theirs.amount if theirs else None,
                currency=(ours or theirs).currency,  # type: ignore[union-attr]
                state=FindingState.OPEN.value,
                found_at=now,
                updated_at=now,
            )
        )
        stored += 1
    session.flush()
    return stored


# Our payments that hold money at a provider: its reference -> (amount, currency).
Held = Mapping[str, tuple[int, str]]


def held_by_us(session: Session, provider: str) -> Held:
    """The payments we believe hold money at ``provider``. It passes over every payment (no
    index serves it: one would cost every hold's authorisation and capture a write), so the
    worker reads it in a read-only transaction, without SQLite's write lock."""
    return {
        str(ref): (int(amount), str(currency))
        for ref, amount, currency in session.execute(
            select(Payment.provider_ref, Payment.amount, Payment.currency).where(
                Payment.provider == provider,
                Payment.style == "hold",
                Payment.status == "authorized",
                Payment.provider_ref.is_not(None),
            )
        )
    }


def keep_hold_findings(
    session: Session,
    provider: str,
    day: date,
    holds: Sequence[HoldRecord],
    ours: Held,
    now: datetime,
) -> int:
    """The provider's uncaptured holds against the payments we believe are held (``ours``, from
    ``held_by_us``): a hold only one side knows of, or of another amount, is a finding."""
    theirs = {h.provider_ref: (h.amount, h.currency) for h in holds}
    stored = 0
    for ref in sorted(set(ours) | set(theirs)):
        if ours.get(ref) == theirs.get(ref):
            continue
        mine, other = ours.get(ref), theirs.get(ref)
        key = _key(provider, day, HOLD, HOLD, ref, str(mine), str(other))
        if session.scalar(select(ReconciliationFinding.id).where(ReconciliationFinding.key == key)):
            continue
        session.add(
            ReconciliationFinding(
                id=new_id("rcf"),
                key=key,
                provider=provider,
                day=day,
                difference=HOLD,
                kind=HOLD,
                provider_ref=ref,
                ours_amount=mine[0] if mine else None,
                theirs_amount=other[0] if other else None,
                currency=(mine or other)[1],  # type: ignore[index]
                state=FindingState.OPEN.value,
                found_at=now,
                updated_at=now,
            )
        )
        stored += 1
    session.flush()
    return stored


def due_day(provider: PaymentProvider, now: datetime) -> date:
    """The provider's latest statement day that is over (plus the margin) at ``now``."""
    local = (now - STATEMENT_MARGIN).astimezone(zone(provider.capabilities.bill_time_zone))
    return local.date() - timedelta(days=1)


def reconciled(session: Session, provider: str, day: date) -> bool:
    return session.get(ReconciliationDay, (provider, day)) is not None


def reconcile_and_keep(
    session: Session,
    provider: PaymentProvider,
    day: date,
    records: list[ProviderRecord],
    holds: tuple[list[HoldRecord], Held] | None,
    now: datetime,
) -> ReconciliationDay:
    """Reconcile one statement day, keep its findings and note the day as done; ``holds`` are
    the provider's open holds and ours (``held_by_us``), when the provider lists its holds."""
    end = day_bounds(day, provider.capabilities.bill_time_zone)[1]
    assert end <= now, "a day not yet over has no statement"
    result = reconcile_day(session, provider, day, records)
    stored = keep_findings(session, provider.name, day, result.findings, now)
    if holds is not None:
        stored += keep_hold_findings(session, provider.name, day, *holds, now)
    done = session.get(ReconciliationDay, (provider.name, day))
    if done is None:
        done = ReconciliationDay(provider=provider.name, day=day, matched=0, findings=0, ran_at=now)
        session.add(done)
    done.matched, done.findings, done.ran_at = result.matched, stored, now
    session.flush()
    return done


def list_findings(
    session: Session,
    principal: Principal,
    *,
    state: FindingState | None,
    cursor: str | None,
    limit: int,
) -> list[ReconciliationFinding]:
    """Reconciliation findings newest first, optionally of one state (operators only)."""
    require_operator(principal)
    query = select(ReconciliationFinding).order_by(ReconciliationFinding.id.desc()).limit(limit + 1)
    if state is not None:
        query = query.where(ReconciliationFinding.state == state.value)
    if cursor is not None:
        query = query.where(ReconciliationFinding.id < decode_cursor(cursor))
    return list(session.scalars(query))


def decide_finding(
    session: Session,
    principal: Principal,
    finding_id: str,
    state: FindingState,
    note: str,
    now: datetime,
) -> ReconciliationFinding:
    """An operator explains or fixes a finding, with a note saying how (operators only)."""
    require_operator(principal)
    finding = session.get(ReconciliationFinding, finding_id)
    if finding is None:
        raise NotFound(f"No reconciliation finding {finding_id}.", code="finding_not_found")
    if state is FindingState.OPEN:
        raise Conflict(
            "A finding is explained or fixed, never opened again.", code="finding_state_invalid"
        )
    if finding.state == state.value and finding.note == note:
        return finding
    if finding.state != FindingState.OPEN.value:
        raise Conflict(f"The finding is already {finding.state}.", code="finding_state_invalid")
    finding.state, finding.note = state.value, note
    finding.decided_by, finding.updated_at = principal.user_id, now
    session.flush()
    return finding
