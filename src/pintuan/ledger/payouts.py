"""Payouts with a lifecycle: ``pending → sent → paid | failed | returned``.

A payout goes to a merchant, or is a shopper's withdrawal from their wallet to their own bank or
payment account. Either leaves the payable (or the wallet) when it is created (its journal is
posted then, and a wallet is debited by its conditional write, so two payouts can never spend
the same balance); a payout that failed or came back from the bank puts the money back through a
reversing journal. Journals are never changed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.roles import Principal
from pintuan.errors import Conflict, InvalidInput, NotFound
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
    # Read afresh under the lock: a caller may hold the payout from a read before it, and the
    # status another operator's move committed meanwhile is the one to decide by.
    payout = session.scalar(
        select(Payout)
        .where(Payout.id == payout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
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
        payout.return_journal_id = _give_back(session, payout, now)
    payout.status = to.value
    payout.reference = reference or payout.reference
    payout.reason = reason or payout.reason
    payout.updated_at = now
    session.flush()
    return payout


def _give_back(session: Session, payout: Payout, now: datetime) -> str:
    """Post the journal that puts a failed or returned payout's money back where it left."""
    tx = raw_tx(session)
    if payout.user_id is not None:
        kind = JournalKind.WITHDRAWAL_RETURN
        entries = rules.withdrawal_return(payout.user_id, payout.amount)
        ledger.credit_wallets(tx, [(payout.user_id, payout.currency, payout.amount)], now)
    else:
        assert payout.merchant_id is not None  # a payout has exactly one payee
        kind = JournalKind.PAYOUT_RETURN
        entries = rules.payout_return(payout.merchant_id, payout.amount)
    journal_id = f"{payout.id}:{kind.value}"
    ledger.post(
        tx,
        [
            ledger.NewJournal(
                id=journal_id,
                kind=kind,
                status=JournalStatus.POSTED,
                currency=payout.currency,
                amount=payout.amount,
                entries=entries,
                merchant_id=payout.merchant_id,
                user_id=payout.user_id,
            )
        ],
        now,
    )
    return journal_id


MAX_DESTINATION = 200


def create_withdrawal(
    session: Session, user_id: str, amount: int, currency: str, destination: str, now: datetime
) -> Payout:
    """A shopper withdraws from their wallet to their own account: the wallet is debited now
    (never below zero: ``withdrawal_exceeds_balance``) and operators send it like a payout."""
    destination = " ".join(destination.split())
    if not destination or len(destination) > MAX_DESTINATION:
        raise InvalidInput(
            "Say where the money goes: your bank or payment account, in at most "
            f"{MAX_DESTINATION} characters.",
            extra={"errors": [{"field": "destination", "message": "must not be empty"}]},
        )
    tx = raw_tx(session)
    try:
        ledger.debit_wallet(tx, user_id, currency, amount, now)
    except Conflict as short:
        raise Conflict(
            "Your wallet holds less than that in this currency.",
            code="withdrawal_exceeds_balance",
        ) from short
    payout_id = new_id("po")
    journal = ledger.NewJournal(
        id=f"{payout_id}:{JournalKind.WITHDRAWAL.value}",
        kind=JournalKind.WITHDRAWAL,
        status=JournalStatus.POSTED,
        currency=currency,
        amount=amount,
        entries=rules.withdrawal(user_id, amount),
        user_id=user_id,
    )
    ledger.post(tx, [journal], now)
    payout = Payout(
        id=payout_id,
        user_id=user_id,
        destination=destination,
        amount=amount,
        currency=currency,
        status=PayoutStatus.PENDING.value,
        journal_id=journal.id,
        created_by=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(payout)
    session.flush()
    return payout


def list_withdrawals(
    session: Session,
    user_id: str | None,
    *,
    status: PayoutStatus | None,
    cursor: str | None,
    limit: int,
) -> list[Payout]:
    """Withdrawals newest first: one shopper's, or (``user_id`` None, for operators) everyone's,
    of one status if asked."""
    query = (
        select(Payout)
        .where(Payout.user_id.is_not(None))
        .order_by(Payout.id.desc())
        .limit(limit + 1)
    )
    if user_id is not None:
        query = query.where(Payout.user_id == user_id)
    if status is not None:
        query = query.where(Payout.status == status.value)
    if cursor is not None:
        query = query.where(Payout.id < decode_cursor(cursor))
    return list(session.scalars(query))


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
