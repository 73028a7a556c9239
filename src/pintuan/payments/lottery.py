"""Refunding a lottery team's losers, and revealing a lottery's seed (``domain/lottery.py``).

A lottery team that succeeded owes each seat that was not drawn its money back in full, once
the seat's payment is the merchant's (a hold captured, a charge earned): a refund after success
of ``source = 'lottery'`` (one per seat, by a unique index), to the original method or the
wallet as the payer chose. When every loser has one, the team owes nothing more. A deal's seed
is revealed once it has ended and none of its teams is still forming: no draw remains to be
made with it.
"""

from __future__ import annotations

from datetime import datetime

from pintuan.domain.refunds import RefundSource
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.team_refunds import TeamRefunds, refund_owed

REASON = "Lottery team: this seat was not drawn; refunded in full."
# A loser is owed what they paid, in full (less any refund made already).
LOSERS = TeamRefunds(
    flag="lottery_refunds_due",
    source=RefundSource.LOTTERY,
    reason=REASON,
    owed="""
        SELECT s.id AS seat_id, p.id AS payment_id, p.amount
        FROM seats s JOIN payments p ON p.seat_id = s.id
        WHERE s.team_id = {team} AND s.lottery_won = FALSE AND s.status = 'confirmed'
          AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.seat_id = s.id AND r.source = 'lottery')
    """,
    amount=lambda columns: int(columns[0]),
)
REVEAL = Sql("""
    UPDATE deals SET lottery_revealed_at = :now
    WHERE lottery_seed IS NOT NULL AND lottery_revealed_at IS NULL AND status = 'ended'
      AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.deal_id = deals.id AND t.status = 'forming')
    RETURNING id
""")


def refund_losers(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund the losers of up to ``limit`` lottery teams whose money has been earned; returns
    how many seats were refunded."""
    return refund_owed(tx, LOSERS, now, limit)


def reveal_seeds(tx: RawTx, now: datetime) -> int:
    """Reveal the seeds of lottery deals that ended with no team still forming."""
    return len(tx.all(REVEAL, {"now": tx.instant(now)}))
