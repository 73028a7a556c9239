"""The in-process benchmark (``bench/cpu.py``) runs end to end on a small seed and reports a
figure for every path it measures, the join against the reference's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_joins_are_measured_against_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    command = [sys.executable, "-m", "bench.cpu", "--only=joins", "--teams=4", "--shoppers=60"]
    command += ["--requests=32", "--rounds=1", "--batch=4", f"--json={out}"]
    done = subprocess.run(  # noqa: S603 - the project's own module, fixed arguments
        command, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr

    rows = {(r["process"], r["path"]): r for r in json.loads(out.read_text())["rows"]}
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
    assert "POST join, no key" in done.stdout


def test_the_confirmations_are_measured_against_the_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    command = [sys.executable, "-m", "bench.cpu", "--only=payments", "--statements"]
    command += ["--requests=32", "--rounds=1", "--batch=4", f"--json={out}"]
    done = subprocess.run(  # noqa: S603 - the project's own module, fixed arguments
        command, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr

    found = json.loads(out.read_text())
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
    assert "raw statements" in done.stdout
