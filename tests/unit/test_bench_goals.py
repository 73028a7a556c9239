"""The benchmark's report checks every target of the performance issue it measures, the
/healthz against a bare app and the confirmations against duplicates among them."""

from __future__ import annotations

from bench.load.generators import Measurement
from bench.load.report import Row, check_goals
from bench.load.scenarios import (
    BASELINE,
    POSTGRES,
    REFERENCE,
    SQLITE,
    SQLITE_PAYMENTS,
    WEBHOOK_DUPLICATE,
    WEBHOOK_FIRST,
    Scenario,
)


def _row(name: str, target: str, per_second: int, label: str = "Pintuan/SQLite") -> Row:
    measured = Measurement(
        requests=per_second * 10, seconds=10, p50_ms=1, p99_ms=5, non_2xx=0, errors=0
    )
    return Row(Scenario(name, BASELINE.prepare, target), label, measured, ratio=1.0)


def _verdicts(rows: list[Row]) -> dict[str, tuple[str, bool]]:
    return {c.what: (c.value, c.met) for c in check_goals(rows)}


def test_healthz_is_held_to_eight_tenths_of_the_bare_app_from_the_mean_of_its_runs() -> None:
    rows = [
        _row(BASELINE.name, SQLITE, 8_000),
        _row(BASELINE.name, REFERENCE, 10_000, "reference"),
        _row(f"{BASELINE.name} (again)", SQLITE, 9_000),
    ]
    assert _verdicts(rows)["GET /healthz: req/s vs a bare FastAPI app"] == ("0.85x", True)
    rows[2] = _row(f"{BASELINE.name} (again)", SQLITE, 7_000)
    assert _verdicts(rows)["GET /healthz: req/s vs a bare FastAPI app"] == ("0.75x", False)


def test_confirmations_are_held_to_six_tenths_of_duplicates_on_each_database() -> None:
    rows = [
        _row(WEBHOOK_DUPLICATE, SQLITE_PAYMENTS, 3_000),
        _row(WEBHOOK_FIRST, SQLITE_PAYMENTS, 1_800),
        _row(WEBHOOK_DUPLICATE, POSTGRES, 2_000, "Pintuan/PostgreSQL"),
        _row(WEBHOOK_FIRST, POSTGRES, 600, "Pintuan/PostgreSQL"),
    ]
    verdicts = _verdicts(rows)
    assert verdicts["Pintuan/SQLite payment confirmations: req/s vs duplicate deliveries"] == (
        "0.60x",
        True,
    )
    assert verdicts["Pintuan/PostgreSQL payment confirmations: req/s vs duplicate deliveries"] == (
        "0.30x",
        False,
    )


def test_a_target_not_measured_in_the_run_is_not_checked() -> None:
    assert _verdicts([_row(BASELINE.name, SQLITE, 8_000)]) == {}


def test_a_join_on_sqlite_is_held_to_the_bare_reference_itself_and_its_p99() -> None:
    join = "POST join (a)"
    measured = Measurement(requests=9_000, seconds=10, p50_ms=1, p99_ms=5, non_2xx=0, errors=0)
    row = Row(
        Scenario(join, BASELINE.prepare, SQLITE, "joins", join, "vs-reference"),
        "Pintuan/SQLite",
        measured,
        ratio=0.5,
        vs_reference=0.9,
        p99_vs_reference=1.0,
    )
    verdicts = _verdicts([row])
    assert verdicts[f"Pintuan/SQLite {join}: req/s vs reference"] == ("0.90x", False)
    # its p99 may be the reference's, no worse
    assert verdicts[f"Pintuan/SQLite {join}: p99 vs reference"] == ("1.00x", True)
