"""Refunds after success that a team owes some of its members on its own (a lottery's losers, a
ladder's differences), paid by the worker in one way for every such kind.

A team that owes them is marked by a column of its own (``lottery_refunds_due``,
``ladder_refunds_due``) in the transaction in which it succeeds. The worker picks marked teams
with at least one owed member whose payment is the merchant's now (a hold captured, a charge
earned), or with none left whose money may still come, passing over teams another worker holds
(``SKIP_LOCKED``), and refunds each such member what they are owed, never more than is left of
their payment: a refund after success of the kind's ``source`` (one per seat by a unique
index), to the original method or the wallet as the payer chose. When no owed member is left
whose money may still come (a checkout open, a hold not yet captured, a payment waiting in the
operators' queue), the team owes nothing more: a member whose hold was given back instead paid
nothing, and is owed nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pintuan.domain.refunds import RefundSource
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.refunds import LEFT_TO_REFUND, PAYMENT_EARNED, refund_seat

# A payment ``p`` whose money may still become its merchant's: a checkout not yet paid, a hold
# not yet captured, or one waiting for an operator (who may retry it or charge again).
_MAY_STILL_COME = """(p.status IN ('requires_action', 'authorized')
    OR (p.queued_at IS NOT NULL AND p.resolved_at IS NULL))"""


class TeamRefunds:
    """One kind of refund a team owes its members.

    ``owed`` selects ``seat_id, payment_id`` and then the columns ``amount`` reads, of the
    members of team ``{team}`` owed one and not yet refunded by this ``source``; ``amount``
    says what a member is owed from those columns. ``flag`` is the teams' column that marks a
    team owing them."""

    def __init__(
        self,
        *,
        flag: str,
        source: RefundSource,
        reason: str,
        owed: str,
        amount: Callable[[Sequence[Any]], int],
    ) -> None:
        self.source, self.reason, self.amount = source, reason, amount
        self.due = Sql(
            f"""
            WITH picked AS MATERIALIZED (
                SELECT t.id FROM teams t
                WHERE t.{flag}
                  AND (EXISTS ({owed.format(team="t.id")} AND {PAYMENT_EARNED})
                       OR NOT EXISTS ({owed.format(team="t.id")} AND {_MAY_STILL_COME}))
                ORDER BY t.id LIMIT :limit SKIP_LOCKED
            )
            SELECT id FROM picked
        """  # noqa: S608 - constant text
        )
        self.earned = Sql(owed.format(team=":team_id") + f" AND {PAYMENT_EARNED} ORDER BY s.id")
        # Owed members whose money may still become the merchant's: the team waits for them.
        self.pending = Sql(
            "SELECT COUNT(*) FROM ("  # noqa: S608 - constant text
            + owed.format(team=":team_id")
            + f" AND {_MAY_STILL_COME}) pending"
        )
        self.settled = Sql(f"UPDATE teams SET {flag} = FALSE WHERE id = :id")  # noqa: S608


def refund_owed(tx: RawTx, kind: TeamRefunds, now: datetime, limit: int) -> int:
    """Refund the owed members of up to ``limit`` teams whose money has been earned; returns how
    many seats were refunded."""
    refunded = 0
    for (team_id,) in tx.all(kind.due, {"limit": limit}):
        seen: set[str] = set()
        for seat_id, payment_id, *columns in tx.all(kind.earned, {"team_id": team_id}):
            if seat_id in seen:
                continue  # a seat paid again: its first earned payment is refunded
            seen.add(seat_id)
            left = int(tx.scalar(LEFT_TO_REFUND, {"id": payment_id}) or 0)
            amount = min(kind.amount(columns), left)
            if amount > 0:
                refund_seat(tx, seat_id, amount, kind.reason, None, now, source=kind.source)
                refunded += 1
        # Every owed member refunded (one with nothing left to refund is done too).
        if not tx.scalar(kind.pending, {"team_id": team_id}):
            tx.execute(kind.settled, {"id": team_id})
    return refunded
