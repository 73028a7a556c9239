"""Refunding a lottery team's losers, and revealing a lottery's seed (``domain/lottery.py``).

A lottery team that succeeded owes each seat that was not drawn its money back in full, once
the seat's payment is the merchant's (a hold captured, a charge earned): a refund after success
of ``source = 'lottery'`` (one per seat, by a unique index), to the original method or the
wallet as the payer chose. When every loser has one, the team owes nothing more. A deal's seed
is revealed once it has ended and none of its teams is still forming: no draw remains to be
made with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain.refunds import RefundSource
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.refunds import LEFT_TO_REFUND, PAYMENT_EARNED, refund_seat

REASON = "Lottery team: this seat was not drawn; refunded in full."

_LOSERS_WAITING = """
    SELECT s.id AS seat_id, p.id AS payment_id FROM seats s JOIN payments p ON p.seat_id = s.id
    WHERE s.team_id = {team} AND s.lottery_won = FALSE AND s.status = 'confirmed'
      AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.seat_id = s.id AND r.source = 'lottery')
"""
# Teams owing their losers, with at least one loser whose money is the merchant's now.
DUE = Sql(
    f"""
    WITH picked AS MATERIALIZED (
        SELECT t.id FROM teams t
        WHERE t.lottery_refunds_due
          AND EXISTS ({_LOSERS_WAITING.format(team="t.id")} AND {PAYMENT_EARNED})
        ORDER BY t.id LIMIT :limit SKIP_LOCKED
    )
    SELECT id FROM picked
"""  # noqa: S608 - constant text
)
LOSERS_EARNED = Sql(
    _LOSERS_WAITING.format(team=":team_id") + f" AND {PAYMENT_EARNED} ORDER BY s.id"
)
# Losers whose money is not the merchant's yet (a capture on its way): the team waits for them.
LOSERS_PENDING = Sql(
    "SELECT COUNT(*) FROM ("  # noqa: S608 - constant text
    + _LOSERS_WAITING.format(team=":team_id")
    + f" AND NOT {PAYMENT_EARNED}) pending"
)
SETTLED = Sql("UPDATE teams SET lottery_refunds_due = FALSE WHERE id = :id")
REVEAL = Sql("""
    UPDATE deals SET lottery_revealed_at = :now
    WHERE lottery_seed IS NOT NULL AND lottery_revealed_at IS NULL AND status = 'ended'
      AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.deal_id = deals.id AND t.status = 'forming')
    RETURNING id
""")


@dataclass(frozen=True, slots=True)
class _Loser:
    seat_id: str
    payment_id: str


def refund_losers(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund the losers of up to ``limit`` lottery teams whose money has been earned; returns
    how many seats were refunded."""
    refunded = 0
    for (team_id,) in tx.all(DUE, {"limit": limit}):
        seen: set[str] = set()
        for loser in tx.all_as(_Loser, LOSERS_EARNED, {"team_id": team_id}):
            if loser.seat_id in seen:
                continue  # a seat paid again: its first earned payment is refunded
            seen.add(loser.seat_id)
            left = int(tx.scalar(LEFT_TO_REFUND, {"id": loser.payment_id}) or 0)
            if left > 0:
                refund_seat(tx, loser.seat_id, left, REASON, None, now, source=RefundSource.LOTTERY)
                refunded += 1
        # Every loser refunded (one with nothing left to refund is done too).
        if not tx.scalar(LOSERS_PENDING, {"team_id": team_id}):
            tx.execute(SETTLED, {"id": team_id})
    return refunded


def reveal_seeds(tx: RawTx, now: datetime) -> int:
    """Reveal the seeds of lottery deals that ended with no team still forming."""
    return len(tx.all(REVEAL, {"now": tx.instant(now)}))
