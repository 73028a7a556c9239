"""Payouts with a lifecycle: ``pending → sent → paid | failed | returned``.

A payout leaves the merchant's payable when it is created (its journal is posted then, so two
payouts can never spend the same balance); a payout that failed or came back from the bank puts
the money back in the payable through a reversing journal. Journals are never changed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.roles import Principal
from pintuan.errors import Conflict, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.ledger import service as ledger
from pintuan.ledger.models import Payout
from pintuan.merchants.service import require_operator


class PayoutStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    PAID = "paid"
    FAILED = "failed"
    RETURNED = "returned"


# Where each status may go next. A payout the bank sends back after it was paid is returned.
NEXT: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING: frozenset({PayoutStatus.SENT, PayoutStatus.FAILED}),
    PayoutStatus.SENT: frozenset({PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED}),
    PayoutStatus.PAID: frozenset({PayoutStatus.RETURNED}),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.RETURNED: frozenset(),
}
GIVES_BACK = frozenset({PayoutStatus.FAILED, PayoutStatus.RETURNED})


def create_payout(
    session: Session,
    principal: Principal,
    merchant_id: str,
    amount: int,
    currency: str,
    now: datetime,
) -> Payout:
    """Start a payout (operators only): the money leaves the payable now, never more than is
    owed (``payout_exceeds_balance``)."""
    require_operator(principal)
    journal = ledger.record_payout(raw_tx(session), merchant_id, amount, currency, now)
    payout = Payout(
        id=new_id("po"),
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        status=PayoutStatus.PENDING.value,
        journal_id=journal.id,
        created_by=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(payout)
    session.flush()
    return payout


def move_payout(
    session: Session,
    principal: Principal,
    payout_id: str,
    to: PayoutStatus,
    now: datetime,
    *,
    reference: str | None = None,
    reason: str | None = None,
) -> Payout:
    """Move a payout along its lifecycle (operators only); a failed or returned one gives the
    money back to the merchant's payable. Moving to where it already is changes nothing."""
    require_operator(principal)
    payout = session.scalar(select(Payout).where(Payout.id == payout_id).with_for_update())
    if payout is None:
        raise NotFound(f"No payout {payout_id}.", code="payout_not_found")
    current = PayoutStatus(payout.status)
    if current is to:
        return payout
    if to not in NEXT[current]:
        raise Conflict(
            f"A {current.value} payout cannot become {to.value}.", code="payout_transition_invalid"
        )
    if to in GIVES_BACK:
        journal_id = f"{payout.id}:{JournalKind.PAYOUT_RETURN.value}"
        ledger.post(
            raw_tx(session),
            [
                ledger.NewJournal(
                    id=journal_id,
                    kind=JournalKind.PAYOUT_RETURN,
                    status=JournalStatus.POSTED,
                    currency=payout.currency,
                    amount=payout.amount,
                    entries=rules.payout_return(payout.merchant_id, payout.amount),
                    merchant_id=payout.merchant_id,
                )
            ],
            now,
        )
        payout.return_journal_id = journal_id
    payout.status = to.value
    payout.reference = reference or payout.reference
    payout.reason = reason or payout.reason
    payout.updated_at = now
    session.flush()
    return payout


def list_payouts(
    session: Session, principal: Principal, merchant_id: str, *, cursor: str | None, limit: int
) -> list[Payout]:
    """A merchant's payouts, newest first (its staff and operators)."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    query = (
        select(Payout)
        .where(Payout.merchant_id == merchant_id)
        .order_by(Payout.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Payout.id < decode_cursor(cursor))
    return list(session.scalars(query))
