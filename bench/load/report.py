"""The report: the table, the issue's targets, the payments' check and the JSON document."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load.generators import Measurement
from bench.load.harness import CONNECTIONS, REPO
from bench.load.scenarios import (
    PAYMENT_DEALS,
    WEBHOOK_DUPLICATE,
    WEBHOOK_FIRST,
    WEBHOOK_PATH,
    Scenario,
)

# Issue targets, checked and printed at the end.
SQLITE_MIN_VS_REFERENCE = 0.8
SQLITE_AIM_VS_REFERENCE = 1.0
SQLITE_MAX_P99_VS_REFERENCE = 2.0
POSTGRES_MIN_SPREAD_RPS = 3_000
# Above this relative change between the first and last /healthz, the machine's load changed
# during the run by more than the ratios can absorb.
DRIFT_TOLERANCE = 0.15


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    target_label: str
    measurement: Measurement
    ratio: float
    vs_reference: float | None = None
    p99_vs_reference: float | None = None
    cpu_us: float | None = None
    database_cpu_us: float | None = None
    cpu_vs_reference: float | None = None


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--short"))}


def _failures(m: Measurement) -> str:
    if not m.non_2xx:
        return "0"
    detail = ", ".join(f"{status}x{count}" for status, count in sorted(m.statuses.items()))
    return f"{m.non_2xx} ({detail})" if detail else str(m.non_2xx)


def _ratio(value: float | None, digits: int = 2) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def render(rows: Sequence[Row]) -> str:
    header = (
        "target",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "errors",
        "vs healthz",
        "vs ref",
        "p99 vs ref",
        "cpu us/req",
        "cpu vs ref",
        "pg cpu us/req",
    )
    cells = [header] + [
        (
            row.target_label,
            row.scenario.name,
            f"{row.measurement.rps:,.0f}",
            f"{row.measurement.p50_ms:.1f}",
            f"{row.measurement.p99_ms:.1f}",
            _failures(row.measurement),
            str(row.measurement.errors),
            f"{row.ratio:.2f}",
            _ratio(row.vs_reference),
            _ratio(row.p99_vs_reference),
            _ratio(row.cpu_us, 0),
            _ratio(row.cpu_vs_reference),
            _ratio(row.database_cpu_us, 0),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    )


@dataclass(frozen=True)
class GoalCheck:
    what: str
    value: str
    goal: str
    met: bool


def check_goals(rows: Sequence[Row]) -> list[GoalCheck]:
    checks = []
    for row in rows:
        m = row.measurement
        if row.scenario.goal == "vs-reference" and row.vs_reference is not None:
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs reference",
                    f"{row.vs_reference:.2f}x",
                    f"≥ {SQLITE_MIN_VS_REFERENCE:.1f}x (aim {SQLITE_AIM_VS_REFERENCE:.1f}x)",
                    row.vs_reference >= SQLITE_MIN_VS_REFERENCE,
                )
            )
            if row.p99_vs_reference is not None:
                checks.append(
                    GoalCheck(
                        f"{row.target_label} {row.scenario.name}: p99 vs reference",
                        f"{row.p99_vs_reference:.2f}x",
                        f"< {SQLITE_MAX_P99_VS_REFERENCE:.1f}x",
                        row.p99_vs_reference < SQLITE_MAX_P99_VS_REFERENCE,
                    )
                )
        if row.scenario.goal == "postgres-rps":
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s",
                    f"{m.rps:,.0f}",
                    f"≥ {POSTGRES_MIN_SPREAD_RPS:,}",
                    m.rps >= POSTGRES_MIN_SPREAD_RPS,
                )
            )
    return checks


@dataclass(frozen=True)
class PaymentReport:
    """One payments target: its two scenarios and what the check after them found."""

    key: str
    label: str
    confirm: Row | None
    duplicate: Row | None
    found: Mapping[str, Any]
    # 2xx answers the load generator counted in the confirmation runs (warm-up included), and
    # how many more notifications can have been sent without their answer being counted.
    counted: int
    in_flight: int
    problems: list[str]

    @property
    def new(self) -> int:
        """Notifications taken as new during the confirmation runs."""
        return int(self.found["delivered"]) - int(self.found["predelivered"])


def payment_report(
    key: str,
    label: str,
    rows: Sequence[Row],
    warmups: Mapping[int, Measurement],
    found: Mapping[str, Any],
) -> PaymentReport:
    confirm = duplicate = None
    counted = in_flight = 0
    problems: list[str] = []
    for i, row in enumerate(rows):
        if row.scenario.target != key:
            continue
        if row.scenario.name == WEBHOOK_DUPLICATE:
            duplicate = row
        elif row.scenario.name == WEBHOOK_FIRST:
            confirm = row
            for run in (warmups.get(i), row.measurement):
                if run is None:
                    continue
                counted += run.requests - run.non_2xx
                in_flight += CONNECTIONS + run.errors
                if run.wrapped and not any("its pool" in p for p in problems):
                    problems.append("wrk ran through its pool: some notifications were sent twice")
    new = int(found["delivered"]) - int(found["predelivered"])
    if new < counted:
        problems.append(
            f"{counted:,} confirmations were counted but only {new:,} notifications were new: "
            "requests repeated (raise PAYMENT_RATE_CEILING)"
        )
    elif new > counted + in_flight:
        problems.append(
            f"{new:,} notifications were taken as new, more than the {counted:,} counted plus "
            f"{in_flight:,} that can have been in flight"
        )
    problems += found["problems_shown"]
    hidden = int(found["problems"]) - len(found["problems_shown"])
    if hidden > 0:
        problems.append(f"... and {hidden:,} more")
    return PaymentReport(key, label, confirm, duplicate, found, counted, in_flight, problems)


def render_payments(report: PaymentReport) -> str:
    found = report.found
    lines = [
        f"payment confirmations through POST {WEBHOOK_PATH} on {report.label}: "
        f"{found['seeded_payments']:,} held seats (teams of {found['team_size']} over "
        f"{PAYMENT_DEALS} deals), each with an open sandbox payment; every request is a "
        "different payment's notification, signed right before its run"
    ]
    confirm, duplicate = report.confirm, report.duplicate
    if confirm is not None:
        m = confirm.measurement
        line = (
            f"  {m.rps:,.0f} confirmations/s, p50 {m.p50_ms:,.1f} ms, p99 {m.p99_ms:,.1f} ms; "
            f"{confirm.ratio:.2f}x /healthz"
        )
        if duplicate is not None and duplicate.measurement.rps:
            d = duplicate.measurement
            line += (
                f"; {m.rps / d.rps:.2f}x the duplicate delivery ({d.rps:,.0f}/s, "
                f"p99 {d.p99_ms:,.1f} ms)"
            )
            if confirm.cpu_us and duplicate.cpu_us:
                line += (
                    f"; server CPU {confirm.cpu_us:,.0f} us a confirmation, "
                    f"{duplicate.cpu_us:,.0f} us a duplicate"
                )
        lines.append(line)
    lines.append(
        f"  check: {found['delivered']:,} notifications taken as new ({found['predelivered']:,} "
        f"before the clocks; the load generator counted {report.counted:,} confirmations and "
        f"{max(report.new - report.counted, 0):,} more were in flight when it stopped); "
        f"{found['authorized_once']:,} payments authorized with exactly one journal and one "
        f"event; {found['seats_paid'] + found['seats_confirmed']:,} seats paid "
        f"({found['seats_confirmed']:,} confirmed: {found['teams_succeeded']:,} of "
        f"{found['teams_full']:,} full teams succeeded); {found['not_delivered']:,} payments "
        f"still open with their seats held; ledger check: {found['ledger_breaches']} breaches "
        f"in {found['journals']:,} journals"
    )
    if report.problems:
        lines.append("  PROBLEMS:")
        lines += [f"    {problem}" for problem in report.problems]
    else:
        lines.append("  sound: every delivered payment authorized once, nothing else changed")
    return "\n".join(lines)


def payment_json(report: PaymentReport) -> dict[str, Any]:
    confirm, duplicate = report.confirm, report.duplicate
    m = confirm.measurement if confirm else None
    d = duplicate.measurement if duplicate else None
    return {
        "target": report.key,
        "confirmations_per_s": round(m.rps, 1) if m else None,
        "p50_ms": round(m.p50_ms, 2) if m else None,
        "p99_ms": round(m.p99_ms, 2) if m else None,
        "vs_healthz": round(confirm.ratio, 3) if confirm else None,
        "duplicates_per_s": round(d.rps, 1) if d else None,
        "vs_duplicate": round(m.rps / d.rps, 3) if m and d and d.rps else None,
        "counted": report.counted,
        "check": dict(report.found),
        "problems": report.problems,
        "sound": not report.problems,
    }


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)
