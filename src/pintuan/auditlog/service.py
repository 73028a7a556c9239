"""Recording and reading the audit log.

The services that change a merchant's or a deal's state write the entry in the same
transaction as the change, so the log never says something happened that was rolled back.
Entries are never changed or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.auditlog.models import AuditEntry
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound, field_error
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.time import utc_now

MAX_REASON = 500
# Actions that stop selling or take money back: people must say why before they do them.
ACTIONS_NEEDING_A_REASON = frozenset({"suspend", "pause", "moderate", "end", "reject", "refund"})


class TargetKind(StrEnum):
    MERCHANT = "merchant"
    DEAL = "deal"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """An entry as pages and the API show it, with the actor's name."""

    id: str
    actor_id: str
    actor_name: str
    action: str
    target_kind: str
    target_id: str
    merchant_id: str | None
    reason: str | None
    created_at: datetime


def clean_reason(action: str, reason: str | None) -> str | None:
    """The reason as stored: trimmed, None when blank. Refuses a blank reason for an action
    in ``ACTIONS_NEEDING_A_REASON`` (422 ``reason_required``) and an over-long one."""
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise field_error("reason", f"must be at most {MAX_REASON} characters")
    if not text and action in ACTIONS_NEEDING_A_REASON:
        raise field_error("reason", "say why before you do this", code="reason_required")
    return text or None


def record_action(
    session: Session,
    principal: Principal,
    *,
    action: str,
    target_kind: TargetKind,
    target_id: str,
    merchant_id: str | None,
    reason: str | None,
) -> AuditEntry:
    """Keep that ``principal`` did ``action`` to the target, and why (in the caller's
    transaction)."""
    entry = AuditEntry(
        id=new_id("act"),
        actor_id=principal.user_id,
        action=action,
        target_kind=target_kind.value,
        target_id=target_id,
        merchant_id=merchant_id,
        reason=" ".join(reason.split())[:MAX_REASON] if reason else None,
        created_at=utc_now(),
    )
    session.add(entry)
    session.flush()
    return entry


def list_actions(
    session: Session,
    principal: Principal,
    merchant_id: str,
    *,
    target_id: str | None = None,
    cursor: str | None,
    limit: int,
) -> list[AuditRow]:
    """What was done to the merchant and its deals, newest first (its staff and operators)."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    query = (
        select(AuditEntry, User.display_name)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.merchant_id == merchant_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit + 1)
    )
    if target_id is not None:
        query = query.where(AuditEntry.target_id == target_id)
    if cursor is not None:
        query = query.where(AuditEntry.id < decode_cursor(cursor))
    return [_row(entry, name) for entry, name in session.execute(query)]


def list_actions_on(session: Session, target_id: str, *, limit: int) -> list[AuditRow]:
    """What was done to one target, newest first; the caller has checked who may see it."""
    query = (
        select(AuditEntry, User.display_name)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.target_id == target_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return [_row(entry, name) for entry, name in session.execute(query)]


def _row(entry: AuditEntry, actor_name: str | None) -> AuditRow:
    return AuditRow(
        id=entry.id,
        actor_id=entry.actor_id,
        actor_name=actor_name or entry.actor_id,
        action=entry.action,
        target_kind=entry.target_kind,
        target_id=entry.target_id,
        merchant_id=entry.merchant_id,
        reason=entry.reason,
        created_at=entry.created_at,
    )
