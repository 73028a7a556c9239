"""``pintuan growth rollup``: roll up a chosen day on demand, as an operator would."""

from __future__ import annotations

from typing import Any


def test_a_day_is_rolled_up_on_demand_and_again_without_harm(run_cli: Any) -> None:
    first = run_cli("growth", "rollup", "--date", "2026-11-30")
    again = run_cli("growth", "rollup", "--date", "2026-11-30")

    assert first.exit_code == 0, first.output
    assert "Rolled up 2026-11-30" in first.output
    assert again.exit_code == 0


def test_a_date_that_is_not_a_day_is_refused(run_cli: Any) -> None:
    refused = run_cli("growth", "rollup", "--date", "yesterday")

    assert refused.exit_code == 1
    assert "YYYY-MM-DD" in refused.output
