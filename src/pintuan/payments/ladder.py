"""Giving a ladder team's members the difference to the tier their team reached
(``domain/ladder.py``).

A ladder team records, in the transaction in which it succeeds, the price of the tier it reached
and whether any member paid more (``ladder_refunds_due``). The worker refunds each such member
``price paid - tier price`` once their payment is the merchant's (a hold captured, a charge
earned): a refund after success of ``source = 'ladder'`` (one per seat, by a unique index), to
the original method or the wallet as the payer chose, taken from the merchant and the fee in
proportion like every refund. When no member waits any more, the team owes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain.ladder import refund_for
from pintuan.domain.refunds import RefundSource
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.refunds import LEFT_TO_REFUND, PAYMENT_EARNED, refund_seat

REASON = "Ladder team: your team reached a cheaper tier; the difference comes back."

_OWED = """
    SELECT s.id AS seat_id, p.id AS payment_id, s.price_amount AS price, t.ladder_price AS tier
    FROM seats s JOIN teams t ON t.id = s.team_id JOIN payments p ON p.seat_id = s.id
    WHERE s.team_id = {team} AND s.status = 'confirmed' AND s.price_amount > t.ladder_price
      AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.seat_id = s.id AND r.source = 'ladder')
"""
# Teams owing differences, with at least one member whose money is the merchant's now.
DUE = Sql(
    f"""
    WITH picked AS MATERIALIZED (
        SELECT t.id FROM teams t
        WHERE t.ladder_refunds_due
          AND EXISTS ({_OWED.format(team="t.id")} AND {PAYMENT_EARNED})
        ORDER BY t.id LIMIT :limit SKIP_LOCKED
    )
    SELECT id FROM picked
"""  # noqa: S608 - constant text
)
OWED_EARNED = Sql(_OWED.format(team=":team_id") + f" AND {PAYMENT_EARNED} ORDER BY s.id")
# Members whose money is not the merchant's yet (a capture on its way): the team waits for them.
OWED_PENDING = Sql(
    "SELECT COUNT(*) FROM ("  # noqa: S608 - constant text
    + _OWED.format(team=":team_id")
    + f" AND NOT {PAYMENT_EARNED}) pending"
)
SETTLED = Sql("UPDATE teams SET ladder_refunds_due = FALSE WHERE id = :id")


@dataclass(frozen=True, slots=True)
class _Owed:
    seat_id: str
    payment_id: str
    price: int
    tier: int


def refund_differences(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund the members of up to ``limit`` ladder teams whose money has been earned the
    difference to their tier; returns how many seats were refunded."""
    refunded = 0
    for (team_id,) in tx.all(DUE, {"limit": limit}):
        seen: set[str] = set()
        for owed in tx.all_as(_Owed, OWED_EARNED, {"team_id": team_id}):
            if owed.seat_id in seen:
                continue  # a seat paid again: its first earned payment is refunded
            seen.add(owed.seat_id)
            left = int(tx.scalar(LEFT_TO_REFUND, {"id": owed.payment_id}) or 0)
            amount = min(refund_for(int(owed.price), int(owed.tier)), left)
            if amount > 0:
                refund_seat(tx, owed.seat_id, amount, REASON, None, now, source=RefundSource.LADDER)
                refunded += 1
        if not tx.scalar(OWED_PENDING, {"team_id": team_id}):
            tx.execute(SETTLED, {"id": team_id})
    return refunded
