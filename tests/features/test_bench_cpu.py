"""The in-process benchmark (``bench/cpu.py``) runs end to end on a small seed and reports a
figure for every path it measures, the join against the reference's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL, own_postgres_database

ROOT = Path(__file__).resolve().parents[2]


def bench_cpu(
    *args: str, env: Mapping[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m bench.cpu`` with ``args``, from the project's root (in this environment, or
    in ``env``)."""
    return subprocess.run(  # noqa: S603 - the project's own module, fixed arguments
        [sys.executable, "-m", "bench.cpu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def measured(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """``bench_cpu(*args)`` run to its end, with the figures it wrote and what it printed."""
    out = tmp_path / "cpu.json"
    done = bench_cpu(*args, f"--json={out}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout


def by_process(found: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The figures' rows by process and path."""
    return {(r["process"], r["path"]): r for r in found["rows"]}


def with_postgres_bench(name: str) -> dict[str, str]:
    """This environment with ``PINTUAN_BENCH_POSTGRES_URL`` naming a database of its own
    (``name``), which the benchmark empties; without PostgreSQL the test is skipped."""
    if not POSTGRES_URL:
        pytest.skip("PINTUAN_TEST_POSTGRES_URL is not set (see scripts/postgres-up.sh)")
    url = own_postgres_database(POSTGRES_URL, name=name)
    return {**os.environ, "PINTUAN_BENCH_POSTGRES_URL": str(url)}


def test_the_joins_are_measured_against_the_reference(tmp_path: Path) -> None:
    found, printed = measured(
        tmp_path,
        "--only=joins", "--teams=4", "--shoppers=60", "--requests=32", "--rounds=1", "--batch=4",
    )  # fmt: skip

    rows = by_process(found)
    assert set(rows) == {
        ("joins", "GET /healthz"),
        ("joins", "POST join, Idempotency-Key"),
        ("joins", "POST join, no key"),
        ("reference", "reference GET /healthz"),
        ("reference", "reference POST join"),
    }
    assert all(r["us_a_request"] > 0 for r in rows.values())
    keyed = rows["joins", "POST join, Idempotency-Key"]
    reference = rows["reference", "reference POST join"]["us_a_request"]
    # The ratio is of the unrounded figures; the row's are rounded to a tenth of a µs.
    assert keyed["reference_over_this"] == pytest.approx(
        reference / keyed["us_a_request"], abs=0.01
    )
    assert rows["joins", "GET /healthz"]["x_healthz"] == 1.0
    assert "POST join, no key" in printed


def test_the_confirmations_are_measured_against_the_duplicates(tmp_path: Path) -> None:
    found, printed = measured(
        tmp_path, "--only=payments", "--statements", "--requests=32", "--rounds=1", "--batch=4"
    )
    rows = {r["path"]: r for r in found["rows"]}
    assert set(rows) == {"GET /healthz", "POST webhook, duplicate", "POST webhook, authorized"}
    assert all(r["process"] == "payments" and r["us_a_request"] > 0 for r in rows.values())
    confirmed = rows["POST webhook, authorized"]
    duplicate = rows["POST webhook, duplicate"]["us_a_request"]
    assert confirmed["duplicate_over_this"] == pytest.approx(
        duplicate / confirmed["us_a_request"], abs=0.01
    )
    assert duplicate > rows["GET /healthz"]["us_a_request"]
    # with --statements, each path's raw statements: a duplicate runs the inbox's insert once
    # (refused by its key), a confirmation also authorises its payment once
    statements = {r["name"]: r["statements"] for r in found["raw"][0]["results"][1:]}
    inbox = [s for s in statements["POST webhook, duplicate"] if "webhook_events" in s["sql"]]
    assert [s["a_request"] for s in inbox] == [1.0]
    confirming = statements["POST webhook, authorized"]
    authorise = [s for s in confirming if s["sql"].startswith("UPDATE payments SET status")]
    assert [s["a_request"] for s in authorise] == [1.0]
    assert "raw statements" in printed


@pytest.mark.postgres
def test_on_postgresql_the_backends_cpu_counts_in_the_confirmations_ratio(tmp_path: Path) -> None:
    found, printed = measured(
        tmp_path, "--only=payments", "--postgres", "--requests=64", "--rounds=1", "--batch=4",
        env=with_postgres_bench("pintuan_bench_cpu"),
    )  # fmt: skip

    rows = by_process(found)
    assert {process for process, _ in rows} == {"payments", "payments-postgres"}
    on_sqlite = rows["payments", "POST webhook, authorized"]
    assert on_sqlite["postgres_us"] is None
    confirmed = rows["payments-postgres", "POST webhook, authorized"]
    duplicate = rows["payments-postgres", "POST webhook, duplicate"]
    # PostgreSQL ran on this machine: its backends worked, more for a confirmation than for a
    # duplicate (whose few milliseconds in all may read as no clock tick of the kernel's).
    assert confirmed["postgres_us"] > 0
    assert confirmed["postgres_us"] > duplicate["postgres_us"] >= 0
    both = duplicate["us_a_request"] + duplicate["postgres_us"]
    assert confirmed["duplicate_over_this"] == pytest.approx(
        both / (confirmed["us_a_request"] + confirmed["postgres_us"]), abs=0.02
    )
    assert "payments-postgres" in printed


@pytest.mark.postgres
def test_on_postgresql_a_join_is_measured_with_the_backends_cpu(tmp_path: Path) -> None:
    # Enough joins for the backends' CPU to pass a clock tick of the kernel's (10 ms).
    found, printed = measured(
        tmp_path, "--only=joins", "--postgres", "--teams=4", "--shoppers=240", "--requests=96",
        "--rounds=1", "--batch=4", env=with_postgres_bench("pintuan_bench_cpu_joins"),
    )  # fmt: skip

    rows = by_process(found)
    assert {process for process, _ in rows} == {"joins", "reference", "joins-postgres"}
    keyed = rows["joins-postgres", "POST join, Idempotency-Key"]
    plain = rows["joins-postgres", "POST join, no key"]
    # Its backends worked for every join; the SQLite reference is no measure of it.
    assert keyed["postgres_us"] > 0
    assert plain["postgres_us"] > 0
    assert keyed["reference_over_this"] is None
    assert rows["joins", "POST join, no key"]["postgres_us"] is None
    assert "joins-postgres" in printed


def test_postgres_needs_its_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PINTUAN_BENCH_POSTGRES_URL"}
    done = bench_cpu("--only=payments", "--postgres", env=env, timeout=60)
    assert done.returncode == 2
    assert "PINTUAN_BENCH_POSTGRES_URL" in done.stderr
