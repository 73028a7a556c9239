"""Giving a ladder team's members the difference to the tier their team reached
(``domain/ladder.py``).

A ladder team records, in the transaction in which it succeeds, the price of the tier it reached
and whether any member paid more (``ladder_refunds_due``). The worker refunds each such member
``price paid - tier price`` once their payment is the merchant's, as every refund a team owes
its members (``payments/team_refunds.py``): of ``source = 'ladder'``, one per seat, taken from
the merchant and the fee in proportion like every refund.
"""

from __future__ import annotations

from datetime import datetime

from pintuan.domain.ladder import refund_for
from pintuan.domain.refunds import RefundSource
from pintuan.kit.rawsql import RawTx
from pintuan.payments.team_refunds import TeamRefunds, refund_owed

REASON = "Ladder team: your team reached a cheaper tier; the difference comes back."
DIFFERENCES = TeamRefunds(
    flag="ladder_refunds_due",
    source=RefundSource.LADDER,
    reason=REASON,
    owed="""
        SELECT s.id AS seat_id, p.id AS payment_id, s.price_amount AS price,
               t.ladder_price AS tier
        FROM seats s JOIN teams t ON t.id = s.team_id JOIN payments p ON p.seat_id = s.id
        WHERE s.team_id = {team} AND s.status = 'confirmed' AND s.price_amount > t.ladder_price
          AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.seat_id = s.id AND r.source = 'ladder')
    """,
    amount=lambda columns: refund_for(int(columns[0]), int(columns[1])),
)


def refund_differences(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund the members of up to ``limit`` ladder teams whose money has been earned the
    difference to their tier; returns how many seats were refunded."""
    return refund_owed(tx, DIFFERENCES, now, limit)
