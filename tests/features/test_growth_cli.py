"""``pintuan growth rollup``: roll up a chosen day on demand, as an operator would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from pintuan.cli import app
from pintuan.config import get_settings


@pytest.fixture
def run(tmp_sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PINTUAN_DATABASE_URL", tmp_sqlite_url)
    monkeypatch.setenv("PINTUAN_ENV", "test")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    assert invoke("migrate").exit_code == 0
    yield invoke
    get_settings.cache_clear()


def test_a_day_is_rolled_up_on_demand_and_again_without_harm(run: Any) -> None:
    first = run("growth", "rollup", "--date", "2026-11-30")
    again = run("growth", "rollup", "--date", "2026-11-30")

    assert first.exit_code == 0, first.output
    assert "Rolled up 2026-11-30" in first.output
    assert again.exit_code == 0


def test_a_date_that_is_not_a_day_is_refused(run: Any) -> None:
    refused = run("growth", "rollup", "--date", "yesterday")

    assert refused.exit_code == 1
    assert "YYYY-MM-DD" in refused.output
