"""The report: the table, the issue's targets, the payments' check and the JSON document."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load.generators import Generator, Httpx, Measurement, Wrk
from bench.load.harness import CONNECTIONS, REPO, WRK_THREADS
from bench.load.scenarios import (
    BASELINE,
    PAYMENT_DEALS,
    PAYMENT_RATE_CEILING,
    PAYMENT_TEAM_SIZE,
    REFERENCE,
    SHOPPERS,
    SPREAD_DEALS,
    SQLITE,
    SQLITE_JOINS,
    TEAM_SIZE,
    TEAMS,
    WEBHOOK_DUPLICATE,
    WEBHOOK_FIRST,
    WEBHOOK_PATH,
    Scenario,
)
from bench.load.servers import Target

# Issue targets, checked and printed at the end.
# The join on SQLite: at least as fast as the bare reference, its p99 no worse than its.
SQLITE_MIN_VS_REFERENCE = 1.0
SQLITE_MAX_P99_VS_REFERENCE = 1.0
READS_MIN_VS_HEALTHZ = 0.5
# The aggregated feed (issue 15): half of /healthz, and a p99 within this, at 64 connections.
FEED_MIN_VS_HEALTHZ = 0.5
FEED_MAX_P99_MS = 50.0
POSTGRES_MIN_VS_REFERENCE = 1.0
# Pintuan's /healthz against a bare FastAPI app's (the join reference's own /healthz).
HEALTHZ_MIN_VS_BARE = 0.8
# A payment's confirmation through the webhook path against a duplicate delivery of one.
CONFIRMATION_MIN_VS_DUPLICATE = 0.6
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
    # The reference's own run this row is divided by, and that run's target label.
    reference: Measurement | None = None
    reference_label: str | None = None


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


def _speed(m: Measurement) -> str:
    p99 = f"{m.p99_ms / 1000:.1f} s" if m.p99_ms >= 1000 else f"{m.p99_ms:,.0f} ms"
    failures = f", {m.errors + m.non_2xx:,} failed" if m.failed else ""
    return f"{m.rps:,.0f}/s, p99 {p99}{failures}"


def _compared_runs(rows: Sequence[Row]) -> set[tuple[str, str]]:
    """The reference runs some row is divided by: shown beside that row, not on their own."""
    return {
        (row.scenario.compare_target, row.scenario.compare_with)
        for row in rows
        if row.scenario.compare_with and row.reference is not None
    }


def table_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The issue's table, a row per scenario run (each reference run beside the row it is
    divided by): path, Pintuan, the bare reference of the same run, the ratio."""
    beside = _compared_runs(rows)
    out = []
    for row in rows:
        key = (row.scenario.target, row.scenario.name)
        if key in beside:
            continue
        m, reference = row.measurement, row.reference
        if reference is not None and row.vs_reference is not None:
            ratio = f"{row.vs_reference:.2f}x"
            of = "reference"
        else:
            ratio = f"{row.ratio:.2f}x of Pintuan's own /healthz"
            of = "healthz"
        out.append(
            {
                "path": f"{row.scenario.name}, {row.target_label}",
                "scenario": row.scenario.name,
                "target": row.scenario.target,
                "pintuan": {
                    "rps": round(m.rps, 1),
                    "p99_ms": round(m.p99_ms, 2),
                    "errors": m.errors,
                    "non_2xx": m.non_2xx,
                    "text": _speed(m),
                },
                "reference": None
                if reference is None
                else {
                    "label": row.reference_label,
                    "rps": round(reference.rps, 1),
                    "p99_ms": round(reference.p99_ms, 2),
                    "errors": reference.errors,
                    "non_2xx": reference.non_2xx,
                    "text": _speed(reference),
                },
                "ratio": round(row.vs_reference if of == "reference" else row.ratio, 3)
                if not math.isnan(row.vs_reference if of == "reference" else row.ratio)
                else None,
                "ratio_of": of,
                "ratio_text": ratio,
            }
        )
    return out


def render_table(table: Sequence[Mapping[str, Any]]) -> str:
    """``table_rows`` as the issue prints it (a Markdown table, ready for the README)."""
    lines = [
        "| path | Pintuan | bare reference in the same run | ratio |",
        "|---|---|---|---|",
    ]
    for entry in table:
        reference = entry["reference"]
        beside = f"{reference['text']} ({reference['label']})" if reference else "—"
        lines.append(
            f"| {entry['path']} | {entry['pintuan']['text']} | {beside} | {entry['ratio_text']} |"
        )
    return "\n".join(lines)


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
        if row.scenario.goal == "vs-healthz":
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs /healthz, timeouts",
                    f"{row.ratio:.2f}x, {m.errors} errors, {m.non_2xx} non-2xx",
                    f"≥ {READS_MIN_VS_HEALTHZ:.1f}x with none",
                    row.ratio >= READS_MIN_VS_HEALTHZ and not m.failed,
                )
            )
        if row.scenario.goal == "feed":
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs /healthz, p99",
                    f"{row.ratio:.2f}x, p99 {m.p99_ms:.0f} ms, {m.errors} errors",
                    f"≥ {FEED_MIN_VS_HEALTHZ:.1f}x, p99 ≤ {FEED_MAX_P99_MS:.0f} ms",
                    row.ratio >= FEED_MIN_VS_HEALTHZ
                    and m.p99_ms <= FEED_MAX_P99_MS
                    and not m.failed,
                )
            )
        if row.scenario.goal == "vs-reference" and row.vs_reference is not None:
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs reference",
                    f"{row.vs_reference:.2f}x",
                    f"≥ {SQLITE_MIN_VS_REFERENCE:.1f}x",
                    row.vs_reference >= SQLITE_MIN_VS_REFERENCE,
                )
            )
            if row.p99_vs_reference is not None:
                checks.append(
                    GoalCheck(
                        f"{row.target_label} {row.scenario.name}: p99 vs reference",
                        f"{row.p99_vs_reference:.2f}x",
                        f"≤ {SQLITE_MAX_P99_VS_REFERENCE:.1f}x",
                        row.p99_vs_reference <= SQLITE_MAX_P99_VS_REFERENCE,
                    )
                )
        if row.scenario.goal == "postgres-vs-reference" and row.vs_reference is not None:
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs the psycopg reference",
                    f"{row.vs_reference:.2f}x",
                    f"≥ {POSTGRES_MIN_VS_REFERENCE:.1f}x",
                    row.vs_reference >= POSTGRES_MIN_VS_REFERENCE,
                )
            )
    return checks + _healthz_check(rows) + _confirmation_checks(rows)


def _healthz_check(rows: Sequence[Row]) -> list[GoalCheck]:
    """Pintuan's /healthz (the mean of its baseline runs) over the bare FastAPI app's."""
    ours = [
        r.measurement.rps
        for r in rows
        if r.scenario.target == SQLITE and r.scenario.name.startswith(BASELINE.name)
    ]
    bare = [
        r.measurement.rps
        for r in rows
        if r.scenario.target == REFERENCE and r.scenario.name == BASELINE.name
    ]
    if not ours or not bare or not sum(bare):
        return []
    ratio = (sum(ours) / len(ours)) / (sum(bare) / len(bare))
    return [
        GoalCheck(
            "GET /healthz: req/s vs a bare FastAPI app",
            f"{ratio:.2f}x",
            f"≥ {HEALTHZ_MIN_VS_BARE:.1f}x",
            ratio >= HEALTHZ_MIN_VS_BARE,
        )
    ]


def _confirmation_checks(rows: Sequence[Row]) -> list[GoalCheck]:
    """Each database's payment confirmations over its duplicate deliveries."""
    runs: dict[str, dict[str, Row]] = {}
    for row in rows:
        if row.scenario.name in (WEBHOOK_FIRST, WEBHOOK_DUPLICATE):
            runs.setdefault(row.scenario.target, {})[row.scenario.name] = row
    checks = []
    for pair in runs.values():
        confirm, duplicate = pair.get(WEBHOOK_FIRST), pair.get(WEBHOOK_DUPLICATE)
        if confirm is None or duplicate is None or not duplicate.measurement.rps:
            continue
        ratio = confirm.measurement.rps / duplicate.measurement.rps
        checks.append(
            GoalCheck(
                f"{confirm.target_label} payment confirmations: req/s vs duplicate deliveries",
                f"{ratio:.2f}x",
                f"≥ {CONFIRMATION_MIN_VS_DUPLICATE:.1f}x",
                ratio >= CONFIRMATION_MIN_VS_DUPLICATE,
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


@dataclass
class Runs:
    """What the measured runs gave, each figure by the index of its run (in the order run)."""

    # The scenario, its target and its figures.
    measured: list[tuple[Scenario, str, Measurement]] = field(default_factory=list)
    # The machine's 1-minute load average before each measured run: other work on the machine
    # shows here (the benchmark's own servers are idle between runs).
    loads_before: list[float] = field(default_factory=list)
    # CPU time of the server processes (and of PostgreSQL) per request, in microseconds: what
    # a request costs whatever else runs on the machine.
    cpu: dict[int, float | None] = field(default_factory=dict)
    database_cpu: dict[int, float | None] = field(default_factory=dict)
    # The warm-up runs' figures (the payment check counts the notifications they delivered).
    warmups: dict[int, Measurement] = field(default_factory=dict)
    # What ``bench/seed_payments.py verify`` found on each payments target.
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)


def _reference_of(scenario: Scenario) -> str:
    """The target whose run of ``compare_with`` this scenario is divided by."""
    return scenario.reference if scenario.reference != REFERENCE else scenario.compare_target


def _rows(runs: Runs, labels: Mapping[str, str], baseline: float) -> list[Row]:
    """Each run's figures with its ratios to the /healthz ``baseline`` and to the reference."""
    runs_by = {(key, s.name): i for i, (s, key, _) in enumerate(runs.measured)}
    rows = []
    for i, (scenario, key, m) in enumerate(runs.measured):
        r = (
            runs_by.get((_reference_of(scenario), scenario.compare_with))
            if scenario.compare_with
            else None
        )
        reference = runs.measured[r][2] if r is not None else None
        reference_cpu = runs.cpu[r] if r is not None else None
        own_cpu = runs.cpu[i]
        rows.append(
            Row(
                scenario,
                labels[key],
                m,
                m.rps / baseline if baseline else math.nan,
                m.rps / reference.rps if reference and reference.rps else None,
                m.p99_ms / reference.p99_ms if reference and reference.p99_ms else None,
                own_cpu,
                runs.database_cpu[i],
                own_cpu / reference_cpu if own_cpu and reference_cpu else None,
                reference,
                labels[runs.measured[r][1]] if r is not None else None,
            )
        )
    return rows


def summarise(
    args: argparse.Namespace,
    generator: Generator,
    targets: Sequence[Target],
    runs: Runs,
    wall: float,
) -> int:
    """Print the report, write the JSON document; the exit status (1: a run failed or the
    payment check found problems)."""
    labels = {t.key: t.label for t in targets}
    first, last = runs.measured[0][2].rps, runs.measured[-1][2].rps
    baseline = (first + last) / 2
    drift = (last - first) / first if first else math.nan
    rows = _rows(runs, labels, baseline)
    checks = check_goals(rows)
    payment_reports = [
        payment_report(key, labels[key], rows, runs.warmups, found)
        for key, found in runs.verified.items()
    ]
    print(f"\nload generator: {generator.label}")
    if isinstance(generator, Httpx):
        print(
            "note: httpx is usually the bottleneck, not the server: the ratios are pulled toward 1."
            " Install wrk for numbers worth comparing."
        )
    servers = ", ".join(
        f"{t.label} ({t.processes} process{'es' if t.processes > 1 else ''})"
        for t in targets
        if t.key != SQLITE_JOINS
    )
    print(
        f"{CONNECTIONS} connections, {args.duration} s per scenario after {args.warmup} s "
        f"warm-up; servers: {servers}; Pintuan {'with' if args.worker else 'without'} its "
        "in-process worker\n'vs healthz' divides by the mean of the two Pintuan /healthz runs, "
        "'vs ref' by the same scenario on the bare reference\n"
    )
    table = table_rows(rows)
    print(render_table(table))
    print("\nevery run:\n")
    print(render(rows))
    print(f"\n/healthz drift from first to last run: {drift:+.1%}", end="")
    steady = abs(drift) <= DRIFT_TOLERANCE
    print("" if steady else f" (over {DRIFT_TOLERANCE:.0%}: the ratios are unreliable, run again)")
    wrapped = [f"{row.target_label} {row.scenario.name}" for row in rows if row.measurement.wrapped]
    if wrapped:
        print(f"wrk ran through its request pool (requests were repeated) in: {', '.join(wrapped)}")
    if checks:
        print("\nissue targets:")
        for check in checks:
            verdict = "met" if check.met else "MISSED"
            print(f"  {check.what}: {check.value} (target {check.goal}): {verdict}")
    for report in payment_reports:
        print("\n" + render_payments(report))
    failed = [f"{row.target_label} {row.scenario.name}" for row in rows if row.measurement.failed]
    if failed:
        print(f"FAILED: non-2xx responses or errors in {', '.join(failed)}")
    unsound = [r.label for r in payment_reports if r.problems]
    if unsound:
        print(f"FAILED: the payment check found problems on {', '.join(unsound)}")
    print(
        f"load average (1 min) before the measured runs: {min(runs.loads_before):.1f} to "
        f"{max(runs.loads_before):.1f} on {os.cpu_count()} CPUs (the load generator's own runs "
        "raise it; well above the CPU count means other work competed with the benchmark)"
    )
    print(f"full run: {wall:.0f} s; results in {args.json}")

    write_json(
        args.json,
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": git_state(),
            "generator": generator.label,
            "connections": CONNECTIONS,
            "wrk_threads": WRK_THREADS if isinstance(generator, Wrk) else None,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "suite": args.suite,
            "cpus": os.cpu_count(),
            "servers": {t.key: {"label": t.label, "processes": t.processes} for t in targets},
            "worker": args.worker,
            "postgres_pool_size": args.postgres_pool_size,
            "joins": {
                "shoppers": SHOPPERS,
                "teams": TEAMS,
                "spread_deals": SPREAD_DEALS,
                "team_size": TEAM_SIZE,
            },
            "baseline": {
                "first_rps": round(first, 1),
                "last_rps": round(last, 1),
                "drift": round(drift, 4),
                "steady": steady,
            },
            "scenarios": [
                {
                    "name": row.scenario.name,
                    "target": row.scenario.target,
                    "servers": row.scenario.servers,
                    "suite": row.scenario.suite,
                    "requests": row.measurement.requests,
                    "seconds": round(row.measurement.seconds, 3),
                    "rps": round(row.measurement.rps, 1),
                    "p50_ms": round(row.measurement.p50_ms, 2),
                    "p99_ms": round(row.measurement.p99_ms, 2),
                    "tail_ms": {k: round(v, 2) for k, v in row.measurement.tail_ms.items()},
                    "non_2xx": row.measurement.non_2xx,
                    "statuses": {str(k): v for k, v in sorted(row.measurement.statuses.items())},
                    "errors": row.measurement.errors,
                    "pool_wrapped": row.measurement.wrapped,
                    "vs_healthz": round(row.ratio, 3),
                    "load_average_before": round(load, 2),
                    "server_cpu_us_per_request": rounded(row.cpu_us, 1),
                    "server_cpu_vs_reference": rounded(row.cpu_vs_reference, 3),
                    "postgres_cpu_us_per_request": rounded(row.database_cpu_us, 1),
                    "vs_reference": None
                    if row.vs_reference is None
                    else round(row.vs_reference, 3),
                    "p99_vs_reference": None
                    if row.p99_vs_reference is None
                    else round(row.p99_vs_reference, 3),
                }
                for row, load in zip(rows, runs.loads_before, strict=True)
            ],
            "table": table,
            "targets": [
                {"what": c.what, "value": c.value, "target": c.goal, "met": c.met} for c in checks
            ],
            "payments": {
                "team_size": PAYMENT_TEAM_SIZE,
                "deals": PAYMENT_DEALS,
                "rate_ceiling": PAYMENT_RATE_CEILING,
                "results": [payment_json(report) for report in payment_reports],
            },
            "ok": not failed and not unsound,
            "wall_s": round(wall, 1),
        },
    )
    return 1 if failed or unsound else 0
