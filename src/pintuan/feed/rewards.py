"""What a slot's reward is worth: the events that followed it, each weighted.

The weights are operators' settings (``PINTUAN_FEED_REWARD_*``); this module takes them as
arguments so that every reader (the worker's learning, offline evaluation) weighs alike.
"""

from __future__ import annotations

from collections.abc import Iterable

REWARD_EVENTS = ("click", "join", "pay", "team_success")


def slot_reward(
    events: Iterable[str], *, click: float, join: float, pay: float, team_success: float
) -> float:
    """The reward of one slot: the weight of each distinct event logged against it, summed."""
    weights = {"click": click, "join": join, "pay": pay, "team_success": team_success}
    return sum(weights.get(event, 0.0) for event in set(events))
