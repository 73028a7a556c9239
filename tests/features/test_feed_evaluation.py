"""``pintuan feed evaluate`` and ``pintuan feed simulate``: a policy judged on logged slates,
and the simulator's chart and CSV files."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pintuan.cli import app
from pintuan.config import get_settings
from pintuan.domain.feed_policies import PopularityPolicy
from pintuan.errors import InvalidInput, NotFound
from pintuan.feed.evaluation import RewardWeights, evaluate_policy
from pintuan.feed.models import FeedModel
from pintuan.kit.db import Database
from pintuan.services import Services
from tests.features.feed_logs import log_slates, pool_of

DAY = date(2026, 11, 20)
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CLICKS_ONLY = RewardWeights(click=1.0, join=0.0, pay=0.0, team_success=0.0)


@pytest.fixture
def run(database_url: str, services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PINTUAN_DATABASE_URL", database_url)
    monkeypatch.setenv("PINTUAN_ENV", "test")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


def estimate_line(output: str, label: str) -> tuple[float, float, float]:
    found = re.search(rf"{re.escape(label)}\s+(-?[\d.]+)\s+\[(-?[\d.]+), (-?[\d.]+)\]", output)
    assert found, output
    value, low, high = (float(g) for g in found.groups())
    return value, low, high


def store_travel_lover(session: Session) -> None:
    """A popularity policy that has learnt travel pays: it ranks every travel item first."""
    policy = PopularityPolicy("travel-first")
    import random

    for item in pool_of(random.Random(1)):
        for _ in range(50):
            policy.learn(None, item, 1.0 if item.vertical == "travel" else 0.0)  # type: ignore[arg-type]
    session.add(FeedModel(policy="travel-first", state=policy.state(), version=1, updated_at=START))


def test_the_logging_policy_judged_on_its_own_slates_scores_what_was_logged(
    run: Any, db: Database
) -> None:
    logged = db.run_sync(lambda s: log_slates(s, slates=300, start=START))

    result = run(
        "feed", "evaluate", "--policy", "random", "--from", "2026-11-20", "--to", "2026-11-20"
    )

    assert result.exit_code == 0, result.output
    value, low, high = estimate_line(result.output, "logged (actual)")
    # Every slot's weight defaults to a click's: 1.
    assert value == pytest.approx(logged, abs=1e-4)
    assert low < value < high
    for label in ("IPS", "SNIPS", "DR"):
        estimate, _, _ = estimate_line(result.output, label)
        assert estimate == pytest.approx(value, abs=0.05 if label == "DR" else 1e-4), label
    assert "300 slates" in result.output
    assert "Replayed 300 of 300 slates" in result.output


def test_a_policy_that_ranks_what_shoppers_want_first_is_judged_better(db: Database) -> None:
    db.run_sync(lambda s: log_slates(s, slates=600, start=START, seed=2))
    db.run_sync(store_travel_lover)

    report = db.run_sync(
        lambda s: evaluate_policy(s, "travel-first", {}, DAY, DAY, CLICKS_ONLY, rounds=300)
    )

    result = report.evaluation
    assert report.logged_policies == {"random": 600}
    assert result.slates == 600
    # The travel-first policy shows travel (clicked at 0.6, the rest at 0.1 or less) on top.
    assert result.snips.low > result.logged.high
    assert result.dr is not None
    assert result.dr.low > result.logged.high
    assert result.unsupported == 0


def test_slates_logged_with_whole_pools_are_judged_as_those_logged_by_id(db: Database) -> None:
    """The pools of slates logged before ``feed_candidates`` held each candidate whole: the same
    slates logged either way get the same estimates."""
    db.run_sync(lambda s: log_slates(s, slates=120, start=START, seed=4))
    later = START.replace(day=21)
    db.run_sync(lambda s: log_slates(s, slates=120, start=later, seed=4, whole_pools=True))
    db.run_sync(store_travel_lover)

    def judge(day: date) -> Any:
        return db.run_sync(
            lambda s: evaluate_policy(s, "travel-first", {}, day, day, CLICKS_ONLY, rounds=50)
        )

    by_id, whole = judge(DAY), judge(later.date())
    assert by_id.skipped == whole.skipped == 0
    assert by_id.evaluation == whole.evaluation


def test_the_latest_slates_only_when_limited(db: Database) -> None:
    db.run_sync(lambda s: log_slates(s, slates=50, start=START, seed=3))

    report = db.run_sync(
        lambda s: evaluate_policy(s, "random", {}, DAY, DAY, CLICKS_ONLY, rounds=100, limit=20)
    )

    assert report.evaluation.slates == 20


def test_unknown_policies_empty_ranges_and_bad_input_are_refused(run: Any, db: Database) -> None:
    db.run_sync(lambda s: log_slates(s, slates=10, start=START))

    unknown = run(
        "feed", "evaluate", "--policy", "oracle", "--from", "2026-11-20", "--to", "2026-11-20"
    )
    empty = run(
        "feed", "evaluate", "--policy", "random", "--from", "2026-10-01", "--to", "2026-10-02"
    )
    backwards = run(
        "feed", "evaluate", "--policy", "random", "--from", "2026-11-21", "--to", "2026-11-20"
    )
    not_a_day = run(
        "feed", "evaluate", "--policy", "random", "--from", "monday", "--to", "2026-11-20"
    )
    bad_param = run(
        "feed",
        "evaluate",
        "--policy",
        "linucb",
        "--param",
        "alpha",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-20",
    )
    foreign_param = run(
        "feed",
        "evaluate",
        "--policy",
        "random",
        "--param",
        "alpha=1",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-20",
    )

    assert unknown.exit_code == 1
    assert "No feed policy 'oracle'" in unknown.output
    assert empty.exit_code == 1
    assert "No feed slates were served from 2026-10-01 through 2026-10-02" in empty.output
    assert backwards.exit_code == 1
    assert "ends (2026-11-20) before it starts" in backwards.output
    assert not_a_day.exit_code == 2
    assert bad_param.exit_code == 2
    assert foreign_param.exit_code == 1
    assert "no parameter alpha" in foreign_param.output


def test_the_service_refuses_with_stable_codes(db: Database) -> None:
    with pytest.raises(NotFound) as unknown:
        db.run_sync(lambda s: evaluate_policy(s, "nobody", {}, DAY, DAY, CLICKS_ONLY))
    with pytest.raises(NotFound) as empty:
        db.run_sync(lambda s: evaluate_policy(s, "random", {}, DAY, DAY, CLICKS_ONLY))
    with pytest.raises(InvalidInput) as param:
        db.run_sync(lambda s: evaluate_policy(s, "linucb", {"beta": 1.0}, DAY, DAY, CLICKS_ONLY))

    assert unknown.value.code == "feed_policy_not_found"
    assert empty.value.code == "feed_empty_range"
    assert param.value.code == "feed_policy_parameter"


def test_the_simulator_writes_a_chart_and_csv_files(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "sim"

    result = runner.invoke(
        app,
        [
            "feed",
            "simulate",
            "--out",
            str(out),
            "--visits",
            "120",
            "--slots",
            "4",
            "--pool",
            "20",
            "--shoppers",
            "30",
        ],
    )

    assert result.exit_code == 0, result.output
    with Image.open(out / "chart.png") as chart:
        assert chart.format == "PNG"
        assert chart.size == (1200, 520)
        assert len(chart.getcolors(1_000_000) or []) > 3  # lines and bars, not a blank
    with (out / "regret.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 120 * 3
    assert {r["policy"] for r in rows} == {"random", "popularity", "linucb"}
    assert [int(r["visit"]) for r in rows[:3]] == [1, 2, 3]
    with (out / "shares.csv").open(encoding="utf-8") as file:
        shares = list(csv.DictReader(file))
    for policy in ("random", "popularity", "linucb"):
        total = sum(float(r["share"]) for r in shares if r["policy"] == policy)
        assert total == pytest.approx(1.0, abs=1e-3)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["policies"]) == {"random", "popularity", "linucb"}
    assert "linucb" in result.output
