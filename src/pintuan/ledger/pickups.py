"""The journal of a pickup point leader's commission: written in the transaction that hands the
order over (``pickups/service.py``), keyed ``<seat id>:pickup_commission`` so that it can never
be written twice, with the leader's wallet credited beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.kit.rawsql import RawTx
from pintuan.ledger.service import NewJournal, credit_wallets, post


@dataclass(frozen=True, slots=True)
class PickupCommission:
    """What a hand-over pays: ``amount`` of ``currency`` from the merchant to the leader."""

    seat_id: str
    merchant_id: str
    leader_id: str
    amount: int
    currency: str


def pickup_journal_id(seat_id: str) -> str:
    return f"{seat_id}:{JournalKind.PICKUP_COMMISSION.value}"


def pay_pickup_commission(tx: RawTx, commission: PickupCommission, now: datetime) -> None:
    """Move the leader's commission from the merchant's payable to the leader's wallet."""
    if commission.amount <= 0:
        return
    credit_wallets(tx, [(commission.leader_id, commission.currency, commission.amount)], now)
    post(
        tx,
        [
            NewJournal(
                id=pickup_journal_id(commission.seat_id),
                kind=JournalKind.PICKUP_COMMISSION,
                status=JournalStatus.POSTED,
                currency=commission.currency,
                amount=commission.amount,
                entries=rules.pickup_commission(
                    commission.merchant_id, commission.leader_id, commission.amount
                ),
                merchant_id=commission.merchant_id,
                user_id=commission.leader_id,
            )
        ],
        now,
    )
