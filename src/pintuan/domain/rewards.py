"""Leader rewards (团长免单 / a leader's rebate): a deal may pay the leader of each of its teams
that succeeds part of their seat back, funded by the merchant.

The reward is a fixed amount, a share of what the leader paid (basis points), or the whole seat
(``free``); never more than was paid. It is paid after success, once the leader's payment is
the merchant's (a hold captured, a charge earned), as a refund after success of the leader's
seat: to the original method or the wallet as the leader chose when paying, taken back from the
merchant's payable and the platform's fee in proportion, so the fee is charged only on what the
merchant kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pintuan.domain.deals import FieldProblem

BASIS_POINTS = 10_000


class RewardKind(StrEnum):
    FIXED = "fixed"
    PERCENT = "percent"
    FREE = "free"


@dataclass(frozen=True, slots=True)
class LeaderReward:
    kind: RewardKind
    # Minor units for ``fixed``, basis points for ``percent``, nothing for ``free``.
    value: int | None = None

    def amount(self, paid: int) -> int:
        """What the leader gets back of ``paid`` minor units (rounded half up, at most paid)."""
        if self.kind is RewardKind.FREE:
            return paid
        value = self.value or 0
        if self.kind is RewardKind.FIXED:
            return min(value, paid)
        return min((paid * value + BASIS_POINTS // 2) // BASIS_POINTS, paid)


def reward_problems(reward: LeaderReward) -> list[FieldProblem]:
    """What is wrong with a deal's leader reward, each naming its field."""
    if reward.kind is RewardKind.FREE:
        return (
            []
            if reward.value is None
            else [FieldProblem("leader_reward", "a free seat takes no value")]
        )
    if reward.kind is RewardKind.FIXED and not (reward.value and reward.value >= 1):
        return [FieldProblem("leader_reward.amount", "must be at least 1 minor unit")]
    if reward.kind is RewardKind.PERCENT and not (reward.value and 1 <= reward.value <= 10_000):
        return [FieldProblem("leader_reward.basis_points", "must be 1 to 10000")]
    return []
