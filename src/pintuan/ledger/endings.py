"""The journals of payments that leave their usual course: a hold that lapsed, money the
provider took in another amount than asked, a refund that came back, a write-off.

Like ledger/service.py these only record, on the raw path, guarded by the payment's own state
change that calls them; what happens is decided in payments/endings.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger.service import DECIDE_AUTHORIZATION, PaymentMoney, journal_id, post


def record_hold_lapsed(tx: RawTx, payment_id: str, now: datetime) -> None:
    """A hold ended without its capture: its pending authorisation is voided."""
    tx.execute(
        DECIDE_AUTHORIZATION,
        {
            "id": journal_id(payment_id, JournalKind.AUTHORIZE),
            "status": JournalStatus.VOIDED.value,
            "now": tx.instant(now),
        },
    )


@dataclass(frozen=True, slots=True)
class SeatEarning:
    merchant_id: str
    commission_bps: int


SEAT_EARNING = Sql("""
    SELECT d.merchant_id, m.commission_bps FROM payments p
    JOIN seats s ON s.id = p.seat_id
    JOIN deals d ON d.id = s.deal_id
    JOIN merchants m ON m.id = d.merchant_id
    WHERE p.id = :id
""")


def record_write_off(tx: RawTx, payment: PaymentMoney, now: datetime) -> None:
    """The platform pays the merchant, less its fee, for a seat whose money never arrived."""
    earning = tx.one_as(SeatEarning, SEAT_EARNING, {"id": payment.id})
    assert earning is not None  # only a seat's payment is written off
    fee = rules.fee_for(payment.amount, earning.commission_bps)
    journal = payment.journal(
        JournalKind.WRITE_OFF,
        rules.write_off(earning.merchant_id, payment.amount, fee),
        merchant_id=earning.merchant_id,
    )
    post(tx, [journal], now)


def record_refund_reversed(tx: RawTx, payment: PaymentMoney, now: datetime) -> None:
    """A refund the provider had confirmed came back to us: owed to the payer again."""
    post(
        tx,
        [
            payment.journal(
                JournalKind.REFUND_REVERSED,
                rules.refund_reversed(payment.provider, payment.user_id, payment.amount),
            )
        ],
        now,
    )
