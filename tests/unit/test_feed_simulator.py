"""The feed simulator: over a fixed seed the LinUCB bandit earns clearly more clicks than the
random and the popularity policy, and every policy keeps the verticals' minimum share."""

from __future__ import annotations

from pintuan.domain.feed import VERTICALS, Rules
from pintuan.domain.feed_simulator import SimulationSettings, simulate

SETTINGS = SimulationSettings(
    visits=500,
    shoppers=100,
    catalogue=150,
    pool=30,
    slots=6,
    seed=7,
    rules=Rules(exploration=0.1, min_share=dict.fromkeys(VERTICALS, 0.1)),
)
MARGIN = 1.25  # the bandit's clicks over the better of the other two


def test_the_bandit_beats_random_and_popularity_on_cumulative_reward() -> None:
    result = simulate(SETTINGS)

    clicks = {name: run.cumulative_reward for name, run in result.runs.items()}
    print(f"cumulative clicks over {SETTINGS.visits} visits: {clicks}")
    assert clicks["linucb"] >= MARGIN * max(clicks["random"], clicks["popularity"]), clicks
    regret = {name: run.cumulative_regret for name, run in result.runs.items()}
    assert regret["linucb"] < min(regret["random"], regret["popularity"])


def test_a_simulation_is_the_same_for_the_same_seed() -> None:
    small = SimulationSettings(visits=60, shoppers=20, catalogue=60, pool=15, slots=4, seed=3)

    first, again = simulate(small), simulate(small)

    assert first.summary() == again.summary()
    assert {name: run.clicks for name, run in first.runs.items()} == {
        name: run.clicks for name, run in again.runs.items()
    }
