"""Journals of vouchers that settle on redemption: the merchant's part released when a voucher
is redeemed or refunded, and held back again when a redemption is undone.

The part is deferred when the seat's money is earned (``ledger.service._defer_unredeemed``). How
much of a voucher's money waits is read from its own journals, never kept in a copy: the
balance of ``merchant_unredeemed`` over the journals of the seat's payments. The caller holds
the voucher's row lock (its conditional write), so no earning of the same seat runs meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger.service import (
    COUNT_VOUCHER_MOVE,
    PAYMENT_MONEY,
    PaymentMoney,
    post,
    voucher_journal,
)

# A voucher's money moving between the merchant's accounts, as many times as it is redeemed and
# undone (the audit checks these on their own).
VOUCHER_KINDS = (JournalKind.VOUCHER_DEFERRED.value, JournalKind.VOUCHER_RELEASED.value)
WAITING = Sql(
    """
    SELECT j.payment_id, COALESCE(-SUM(e.amount), 0) AS waiting
    FROM ledger_journals j JOIN ledger_entries e ON e.journal_id = j.id
    WHERE j.payment_id IN (SELECT id FROM payments WHERE seat_id = :seat_id)
      AND j.kind IN (:deferred, :released) AND e.account = :account
    GROUP BY j.payment_id
""",
    deferred=VOUCHER_KINDS[0],
    released=VOUCHER_KINDS[1],
)
LAST_RELEASED = Sql(
    """
    SELECT j.payment_id, j.amount FROM ledger_journals j
    WHERE j.id LIKE :prefix AND j.kind = :released
      AND j.payment_id IN (SELECT id FROM payments WHERE seat_id = :seat_id)
    ORDER BY j.created_at DESC, j.id DESC LIMIT 1
""",
    released=VOUCHER_KINDS[1],
)


@dataclass(frozen=True, slots=True)
class VoucherMoney:
    """Which voucher, of which seat and merchant."""

    id: str
    seat_id: str
    merchant_id: str


def _move(
    tx: RawTx, voucher: VoucherMoney, kind: JournalKind, payment_id: str, amount: int, now: datetime
) -> None:
    payment = tx.one_as(PaymentMoney, PAYMENT_MONEY, {"id": payment_id})
    assert payment is not None  # its journals name it
    move = int(tx.scalar(COUNT_VOUCHER_MOVE, {"id": voucher.id}))
    post(tx, [voucher_journal(voucher.id, move, kind, payment, voucher.merchant_id, amount)], now)


def release_waiting(
    tx: RawTx, voucher: VoucherMoney, now: datetime, at_most: int | None = None
) -> int:
    """Move what of the voucher's money waits (or ``at_most`` of it) to the merchant's payable;
    returns how much."""
    account = rules.MERCHANT_UNREDEEMED.format(merchant_id=voucher.merchant_id)
    released = 0
    for payment_id, waiting in tx.all(WAITING, {"seat_id": voucher.seat_id, "account": account}):
        amount = int(waiting) if at_most is None else min(int(waiting), at_most - released)
        if amount > 0:
            _move(tx, voucher, JournalKind.VOUCHER_RELEASED, payment_id, amount, now)
            released += amount
    return released


VOUCHER_OF_SEAT = Sql("SELECT id, seat_id, merchant_id FROM vouchers WHERE seat_id = :seat_id")


def release_for_refund(tx: RawTx, seat_id: str, merchant_part: int, now: datetime) -> None:
    """A refund after success of a seat whose voucher's money waits takes the merchant's part
    back from the payable: so much of what waits is released to it first."""
    voucher = tx.one_as(VoucherMoney, VOUCHER_OF_SEAT, {"seat_id": seat_id})
    if voucher is not None and merchant_part > 0:
        release_waiting(tx, voucher, now, at_most=merchant_part)


def hold_back_again(tx: RawTx, voucher: VoucherMoney, now: datetime) -> int:
    """A redemption was undone: what its release moved waits again; returns how much."""
    last = tx.all(LAST_RELEASED, {"prefix": f"{voucher.id}:%", "seat_id": voucher.seat_id})
    if not last:
        return 0
    payment_id, amount = last[0]
    _move(tx, voucher, JournalKind.VOUCHER_DEFERRED, payment_id, int(amount), now)
    return int(amount)
