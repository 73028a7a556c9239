"""Paying the leaders of successful teams their reward (``domain/rewards.py``).

A team of a deal that rewards its leader is marked ``leader_reward_due`` in the transaction in
which it succeeds. The worker pays the reward once the leader's payment is the merchant's (a
hold's capture confirmed, a charge earned): a refund after success of the leader's seat, of
``source = 'reward'``, so it is journalled, audited and paid back like every refund (to the
original method or the wallet). A partial unique index on refunds allows one reward per seat,
and the claim passes over teams another worker is paying (``SKIP_LOCKED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.domain.refunds import RefundSource
from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.refunds import LEFT_TO_REFUND, PAYMENT_EARNED, refund_seat

REASON = "Leader reward: your team succeeded."

# Teams owed a reward whose leader's payment has been earned (one still on its way waits).
DUE = Sql(
    f"""
    WITH picked AS MATERIALIZED (
        SELECT t.id FROM teams t
        WHERE t.leader_reward_due
          AND EXISTS (SELECT 1 FROM seats s JOIN payments p ON p.seat_id = s.id
                      WHERE s.team_id = t.id AND s.user_id = t.leader_id
                        AND s.status = 'confirmed' AND {PAYMENT_EARNED})
        ORDER BY t.id LIMIT :limit SKIP_LOCKED
    )
    SELECT t.id AS team_id, s.id AS seat_id, p.id AS payment_id, p.amount,
           d.leader_reward_kind AS kind, d.leader_reward_value AS value
    FROM picked JOIN teams t ON t.id = picked.id
    JOIN deals d ON d.id = t.deal_id
    JOIN seats s ON s.team_id = t.id AND s.user_id = t.leader_id AND s.status = 'confirmed'
    JOIN payments p ON p.seat_id = s.id
    WHERE {PAYMENT_EARNED}
"""  # noqa: S608 - constant text
)
PAID = Sql("UPDATE teams SET leader_reward_due = FALSE WHERE id = :id AND leader_reward_due")


@dataclass(frozen=True, slots=True)
class _Due:
    team_id: str
    seat_id: str
    payment_id: str
    amount: int
    kind: str
    value: int | None


def reward_leaders(tx: RawTx, now: datetime, limit: int) -> int:
    """Pay up to ``limit`` leaders their reward; returns how many teams were settled."""
    done: set[str] = set()
    for due in tx.all_as(_Due, DUE, {"limit": limit}):
        if due.team_id in done:
            continue  # a seat paid again (charge_again): its first earned payment is rewarded
        done.add(due.team_id)
        reward = LeaderReward(RewardKind(due.kind), due.value).amount(int(due.amount))
        left = int(tx.scalar(LEFT_TO_REFUND, {"id": due.payment_id}) or 0)
        if min(reward, left) > 0:
            refund_seat(
                tx, due.seat_id, min(reward, left), REASON, None, now, source=RefundSource.REWARD
            )
        tx.execute(PAID, {"id": due.team_id})
    return len(done)
