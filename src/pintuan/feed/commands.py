"""``pintuan feed …``: judge a policy on past slates, and run the simulator.

The command line (``pintuan.cli``) hands in how to run work in a transaction and the reward
weights it read from the settings, so that this module reads no configuration itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

import typer
from sqlalchemy.orm import Session

from pintuan.domain.feed import VERTICALS, Rules
from pintuan.domain.feed_estimators import DEFAULT_LEVEL, DEFAULT_ROUNDS, Estimate
from pintuan.domain.feed_simulator import SimulationSettings, simulate
from pintuan.feed.evaluation import EvaluationReport, RewardWeights, evaluate_policy
from pintuan.feed.simulation import write_simulation

T = TypeVar("T")


class Runner(Protocol):
    """Runs ``work`` in one read-only transaction (a replay of the log passes over many slates:
    it must not hold SQLite's write lock); a refusal becomes a clear error and exit code 1."""

    def __call__(self, work: Callable[[Session], T]) -> T: ...


def _day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"must be a calendar day like 2026-11-24, not {value!r}", param_hint=option
        ) from exc


def _params(values: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            found[key.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise typer.BadParameter(
                f"write a parameter as NAME=NUMBER, e.g. alpha=0.3, not {value!r}",
                param_hint="--param",
            )
    return found


def _row(label: str, estimate: Estimate) -> str:
    return f"  {label:<16} {estimate.value:>10.4f}   [{estimate.low:.4f}, {estimate.high:.4f}]"


def print_report(report: EvaluationReport) -> None:
    """The estimates beside the logged value, one per line."""
    result = report.evaluation
    served = ", ".join(f"{name} {count}" for name, count in sorted(report.logged_policies.items()))
    typer.echo(
        f"Policy {report.policy!r} judged on {result.slates} slates served "
        f"{report.first_day} through {report.last_day} (served by {served})."
    )
    if report.skipped:
        typer.echo(f"  {report.skipped} slates of another version of the feed were left out.")
    typer.echo(f"  {'reward per slate':<16} {'value':>10}   {result.level:.0%} interval")
    typer.echo(_row("logged (actual)", result.logged))
    for name, estimate in result.estimates().items():
        typer.echo(_row(name.upper(), estimate))
    typer.echo(
        f"  Effective slates {result.effective_slates:.0f} of {result.slates}"
        + (
            f"; {result.unsupported} slates hold an item the policy could not have shown there."
            if result.unsupported
            else "."
        )
    )


def build_feed_app(
    run: Runner,
    reward_weights: Callable[[], RewardWeights],
    simulation_dir: Callable[[], Path],
) -> typer.Typer:
    """The ``feed`` command group."""
    feed_app = typer.Typer(help="The aggregated homepage feed.", no_args_is_help=True)

    @feed_app.command("evaluate")
    def evaluate(
        policy: Annotated[
            str, typer.Option(help="A stored policy's name, or a kind: random, popularity, linucb")
        ],
        first: Annotated[str, typer.Option("--from", help="First UTC day, YYYY-MM-DD")],
        last: Annotated[str, typer.Option("--to", help="Last UTC day (included), YYYY-MM-DD")],
        param: Annotated[
            list[str] | None, typer.Option(help="A policy parameter NAME=NUMBER (repeatable)")
        ] = None,
        rounds: Annotated[
            int, typer.Option(min=100, max=20000, help="Bootstrap rounds")
        ] = DEFAULT_ROUNDS,
        level: Annotated[
            float, typer.Option(min=0.5, max=0.999, help="The intervals' level")
        ] = DEFAULT_LEVEL,
        seed: Annotated[int, typer.Option(help="Seed of the bootstrap")] = 0,
    ) -> None:
        """Estimate a policy's reward per slate on the slates served from --from to --to (IPS,
        SNIPS and doubly robust, with bootstrap intervals) next to the logged policy's."""
        first_day, last_day = _day("--from", first), _day("--to", last)
        params = _params(param or [])
        weights = reward_weights()

        def progress(done: int, total: int) -> None:
            typer.echo(f"Replayed {done} of {total} slates…", err=True)

        report = run(
            lambda session: evaluate_policy(
                session,
                policy,
                params,
                first_day,
                last_day,
                weights,
                rounds=rounds,
                level=level,
                seed=seed,
                progress=progress,
            )
        )
        print_report(report)

    @feed_app.command("simulate")
    def simulate_command(
        out: Annotated[
            Path | None,
            typer.Option(
                help="Directory for the chart and CSV files [default: PINTUAN_FEED_SIMULATION_DIR]"
            ),
        ] = None,
        visits: Annotated[int, typer.Option(min=10, max=200_000)] = 2000,
        slots: Annotated[int, typer.Option(min=1, max=50)] = 10,
        pool: Annotated[int, typer.Option(min=5, max=1000, help="Candidates per visit")] = 60,
        shoppers: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
        exploration: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.1,
        min_share: Annotated[
            float, typer.Option(min=0.0, max=0.2, help="Least share of slots per vertical")
        ] = 0.1,
        seed: Annotated[int, typer.Option()] = 7,
    ) -> None:
        """Run random, popularity and the LinUCB bandit against synthetic shoppers; write a
        regret curve and per-vertical impression shares (PNG chart, CSV) into --out."""
        settings = SimulationSettings(
            visits=visits,
            shoppers=shoppers,
            catalogue=max(pool * 5, 100),
            pool=pool,
            slots=slots,
            seed=seed,
            rules=Rules(
                exploration=exploration,
                min_share=dict.fromkeys(VERTICALS, min_share) if min_share else {},
            ),
        )
        step = max(100, visits * 3 // 10 // 100 * 100)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                typer.echo(f"Simulated {done} of {total} visits…", err=True)

        result = simulate(settings, progress=progress)
        paths = write_simulation(result, out or simulation_dir())
        for name, policy_run in result.runs.items():
            typer.echo(
                f"{name:<11} {policy_run.cumulative_reward:>8.0f} clicks, "
                f"regret {policy_run.cumulative_regret:>9.1f}"
            )
        typer.echo(f"Wrote {', '.join(str(p) for p in paths.values())}.")

    return feed_app
