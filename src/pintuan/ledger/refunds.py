"""Journals of refunds after success and of disputes, written in the same transaction as the
refund's or dispute's own change. Their ids are ``<refund id>:<kind>`` and
``<dispute id>:<kind>``, so a payment may have many and none can be written twice.

The ledger only records; whether a refund or a dispute's end moves money is decided in
payments/refunds.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.kit.rawsql import RawTx
from pintuan.ledger.service import NewJournal, credit_wallets, post


@dataclass(frozen=True, slots=True)
class RefundMoney:
    """What a refund's journals need."""

    id: str
    payment_id: str
    merchant_id: str
    user_id: str  # the payer
    provider: str
    provider_ref: str | None  # the payment's at its provider
    amount: int
    currency: str
    merchant_part: int
    fee_part: int


@dataclass(frozen=True, slots=True)
class DisputeMoney:
    id: str
    payment_id: str
    merchant_id: str | None
    user_id: str
    provider: str
    provider_ref: str | None
    amount: int
    currency: str


def _journal(
    subject_id: str,
    kind: JournalKind,
    amount: int,
    currency: str,
    entries: list[rules.Entry],
    *,
    payment_id: str,
    merchant_id: str | None,
    user_id: str,
    provider: str,
    provider_ref: str | None,
) -> NewJournal:
    return NewJournal(
        id=f"{subject_id}:{kind.value}",
        kind=kind,
        status=JournalStatus.POSTED,
        currency=currency,
        amount=amount,
        entries=entries,
        payment_id=payment_id,
        merchant_id=merchant_id,
        user_id=user_id,
        provider=provider,
        provider_ref=provider_ref,
    )


def _of_refund(refund: RefundMoney, kind: JournalKind, entries: list[rules.Entry]) -> NewJournal:
    return _journal(
        refund.id,
        kind,
        refund.amount,
        refund.currency,
        entries,
        payment_id=refund.payment_id,
        merchant_id=refund.merchant_id,
        user_id=refund.user_id,
        provider=refund.provider,
        provider_ref=refund.provider_ref,
    )


def record_refund_owed(tx: RawTx, refund: RefundMoney, now: datetime) -> None:
    """A refund after success was granted: its amount is taken back from the merchant's payable
    and the platform's fee, and owed to the payer until it is paid back."""
    entries = rules.refund_owed(refund.merchant_id, refund.merchant_part, refund.fee_part)
    post(tx, [_of_refund(refund, JournalKind.REFUND_OWED, entries)], now)


def record_refund_paid(tx: RawTx, refund: RefundMoney, now: datetime) -> None:
    """The provider paid the refund back to the payer."""
    entries = rules.refund(refund.provider, refund.user_id, refund.amount)
    post(tx, [_of_refund(refund, JournalKind.REFUND_PAID, entries)], now)


def record_refund_repaid(tx: RawTx, refund: RefundMoney, now: datetime) -> None:
    """A refund owed again after its money came back was paid back to the payer by another
    of the provider's refunds."""
    entries = rules.refund(refund.provider, refund.user_id, refund.amount)
    post(tx, [_of_refund(refund, JournalKind.REFUND_REPAID, entries)], now)


def record_refund_returned(tx: RawTx, refund: RefundMoney, now: datetime) -> None:
    """A paid refund came back to the provider's balance (a closed card): the money is ours
    again and owed to the payer once more."""
    entries = rules.refund_reversed(refund.provider, refund.user_id, refund.amount)
    post(tx, [_of_refund(refund, JournalKind.REFUND_RETURNED, entries)], now)


def record_refund_to_wallet(tx: RawTx, refund: RefundMoney, now: datetime) -> None:
    """The refund went into the payer's wallet at once, with no provider call."""
    credit_wallets(tx, [(refund.user_id, refund.currency, refund.amount)], now)
    entries = rules.wallet_refund(refund.user_id, refund.amount)
    post(tx, [_of_refund(refund, JournalKind.REFUND_WALLET, entries)], now)


def _of_dispute(dispute: DisputeMoney, kind: JournalKind, entries: list[rules.Entry]) -> NewJournal:
    return _journal(
        dispute.id,
        kind,
        dispute.amount,
        dispute.currency,
        entries,
        payment_id=dispute.payment_id,
        merchant_id=dispute.merchant_id,
        user_id=dispute.user_id,
        provider=dispute.provider,
        provider_ref=dispute.provider_ref,
    )


def record_dispute_opened(tx: RawTx, dispute: DisputeMoney, now: datetime) -> None:
    """The provider took the disputed amount back from us until the dispute is decided."""
    entries = rules.dispute_opened(dispute.provider, dispute.user_id, dispute.amount)
    post(tx, [_of_dispute(dispute, JournalKind.DISPUTE_OPENED, entries)], now)


def record_dispute_decided(tx: RawTx, dispute: DisputeMoney, won: bool, now: datetime) -> None:
    """Won: the provider gave the money back. Lost: the merchant that earned the payment bears
    it (or the platform, when none did)."""
    if won:
        entries = rules.dispute_won(dispute.provider, dispute.user_id, dispute.amount)
        kind = JournalKind.DISPUTE_WON
    else:
        entries = rules.dispute_lost(dispute.merchant_id, dispute.amount)
        kind = JournalKind.DISPUTE_LOST
    post(tx, [_of_dispute(dispute, kind, entries)], now)
