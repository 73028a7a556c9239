"""The command line: ``python -m bench.load [--suite ...]`` (``make bench``). It builds the
databases, starts the servers, prepares every scenario, then measures them one after another and
prints the report."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

import bench.load
from bench.load.generators import Httpx, Measurement, Wrk, pick_generator
from bench.load.harness import (
    CONNECTIONS,
    DEFAULT_RESULTS,
    DEFAULT_SECONDS,
    DEFAULT_WARMUP_SECONDS,
    WRK_THREADS,
    HarnessError,
    note,
)
from bench.load.report import (
    DRIFT_TOLERANCE,
    Row,
    check_goals,
    git_state,
    payment_json,
    payment_report,
    render,
    render_payments,
    rounded,
    write_json,
)
from bench.load.scenarios import (
    BASELINE,
    LONGEST_SIGNED_RUN_SECONDS,
    PAYMENT_DEALS,
    PAYMENT_RATE_CEILING,
    PAYMENT_TEAM_SIZE,
    POSTGRES,
    REFERENCE,
    SCENARIOS,
    SHOPPERS,
    SPREAD_DEALS,
    SQLITE_JOINS,
    SUITES,
    TEAM_SIZE,
    TEAMS,
    TOLERANCE,
    Fixture,
    Load,
    Scenario,
    Seeded,
    describe,
    payments_to_seed,
)
from bench.load.servers import (
    cpu_ticks,
    database_name,
    find_pintuan,
    per_request,
    postgres_pids,
    start_servers,
    targets_for,
    verify_payments,
)
from pintuan.kit.serving import ServerDidNotStart

POSTGRES_URL_VARIABLE = "PINTUAN_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_SERVERS = 2


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=bench.load.__doc__.split("\n\n")[0] if bench.load.__doc__ else None
    )
    parser.add_argument(
        "--suite",
        choices=tuple(SUITES),
        default="all",
        help="reads (GET endpoints), joins (Pintuan's join against the reference), payments "
        "(payment confirmations through the webhook path against duplicate deliveries) or all; "
        f"joins and payments also on PostgreSQL when {POSTGRES_URL_VARIABLE} is set; /healthz "
        "always runs",
    )
    parser.add_argument(
        "--duration", type=int, default=DEFAULT_SECONDS, help="seconds measured per scenario"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_SECONDS,
        help="seconds of unmeasured load before each scenario (0: none)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only scenarios whose target and name (e.g. 'postgres POST join (a) ...') "
        "contain TEXT, in any case (repeatable; /healthz always runs)",
    )
    parser.add_argument(
        "--postgres-servers",
        type=int,
        default=DEFAULT_POSTGRES_SERVERS,
        help="Pintuan processes serving the PostgreSQL joins (wrk spreads its threads over them)",
    )
    parser.add_argument(
        "--postgres-pool-size",
        type=int,
        default=None,
        help="PINTUAN_DB_POOL_SIZE of each PostgreSQL server (default: Pintuan's own default)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="run Pintuan's background worker in each server process (default: --no-worker)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the databases, seeds, wrk scripts and server logs in DIR (default: a "
        "temporary directory, removed at the end)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_RESULTS, help="where to write results")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0")
    if "payments" in SUITES[args.suite] and max(args.duration, args.warmup) > (
        LONGEST_SIGNED_RUN_SECONDS
    ):
        parser.error(
            f"the payments suite signs its requests before each run and the sandbox accepts a "
            f"signature for {TOLERANCE.total_seconds():.0f} s: keep --duration and --warmup "
            f"at most {LONGEST_SIGNED_RUN_SECONDS}"
        )
    if not 1 <= args.postgres_servers <= CONNECTIONS // 2:
        parser.error(f"--postgres-servers must be between 1 and {CONNECTIONS // 2}")
    return args


def _prepare(plan: Sequence[Scenario], fixtures: Mapping[str, Fixture]) -> list[Load]:
    """Every scenario's load, the targets side by side (each target's scenarios in order)."""

    def prepare_target(target: str) -> dict[int, Load]:
        return {i: s.prepare(fixtures[target]) for i, s in enumerate(plan) if s.target == target}

    targets = sorted({s.target for s in plan})
    with ThreadPoolExecutor(len(targets)) as preparers:
        prepared: dict[int, Load] = {}
        for loads in preparers.map(prepare_target, targets):
            prepared.update(loads)
    return [prepared[i] for i in range(len(plan))]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # A plain SIGTERM (a CI timeout, `kill`) would end Python without running `finally`, and so
    # leave the servers running. Passed on as SIGINT it unwinds like a Ctrl-C, also inside
    # asyncio.run, which cancels its task cleanly only for SIGINT. SIGINT itself is ignored when
    # started in the background of a non-interactive shell, hence restored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    wall_start = time.monotonic()
    suites = SUITES[args.suite]
    postgres_url = os.environ.get(POSTGRES_URL_VARIABLE) or None
    chosen = [
        s
        for s in SCENARIOS
        if s.suite in suites
        and (not args.only or any(t.lower() in describe(s).lower() for t in args.only))
        and (s.target != POSTGRES or postgres_url)
    ]
    plan = [BASELINE, *chosen, Scenario(f"{BASELINE.name} (again)", BASELINE.prepare)]
    measured: list[tuple[Scenario, str, Measurement]] = []
    # The machine's 1-minute load average before each measured run: other work on the machine
    # shows here (the benchmark's own servers are idle between runs).
    loads_before: list[float] = []
    # CPU time of the server processes (and of PostgreSQL) per request, in microseconds: what
    # a request costs whatever else runs on the machine.
    cpu: dict[int, float | None] = {}
    database_cpu: dict[int, float | None] = {}
    labels: dict[str, str] = {}
    # The warm-up runs' figures, by the index of their measured run (the payment check counts
    # the notifications they delivered).
    warmups: dict[int, Measurement] = {}
    # What ``bench/seed_payments.py verify`` found on each payments target.
    verified: dict[str, dict[str, Any]] = {}
    fixtures: dict[str, Fixture] = {}
    try:
        with contextlib.ExitStack() as stack:
            if args.keep is None:
                workdir = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="pintuan-bench-"))
                )
            else:
                workdir = args.keep.resolve()
                workdir.mkdir(parents=True, exist_ok=True)
            generator = pick_generator(args.generator, workdir)
            note(
                f"load generator: {generator.label}; {CONNECTIONS} connections, "
                f"{args.duration} s per scenario after {args.warmup} s of warm-up"
            )
            if ("joins" in suites or "payments" in suites) and not postgres_url:
                note(f"PostgreSQL joins and payments skipped: {POSTGRES_URL_VARIABLE} is not set")
            pintuan = find_pintuan()
            targets = targets_for(
                {s.target for s in plan},
                pintuan,
                workdir,
                reads=any(s.suite == "reads" for s in chosen),
                postgres_suites={s.suite for s in chosen if s.target == POSTGRES},
                payments=payments_to_seed(args.duration, args.warmup),
                postgres_url=postgres_url,
                postgres_servers=args.postgres_servers,
                postgres_pool_size=args.postgres_pool_size,
                worker=args.worker,
            )
            labels = {t.key: t.label for t in targets}
            note("preparing databases: " + ", ".join(t.key for t in targets))
            started = time.monotonic()
            # The databases are independent: build them side by side.
            with ThreadPoolExecutor(len(targets)) as builders:
                builds: list[Future[Seeded]] = [builders.submit(t.build) for t in targets]
                for target, build in zip(targets, builds, strict=True):
                    target.seed = build.result()
            note(f"  databases ready in {time.monotonic() - started:.0f} s; starting servers")
            # All servers start side by side; each is stopped when the stack unwinds.
            launched = {target.key: start_servers(stack, target, workdir) for target in targets}
            for target in targets:
                urls = [s.wait_ready(target.ready_path) for s in launched[target.key]]
                client = stack.enter_context(
                    httpx.Client(base_url=urls[0], timeout=30.0, trust_env=False)
                )
                fixtures[target.key] = Fixture(
                    target.key,
                    urls,
                    client,
                    pintuan,
                    target.env,
                    workdir,
                    target.seed.joins,
                    [s.pid for s in launched[target.key] if s.pid is not None],
                    target.seed.payments,
                )
            # Everything is prepared before the first clock starts, so a broken scenario
            # fails in seconds rather than after the others have run.
            note(
                "preparing scenarios (joins: starting their teams; payments: delivering the "
                "notifications that are then sent again)"
            )
            started = time.monotonic()
            loads = _prepare(plan, fixtures)
            note(f"  prepared in {time.monotonic() - started:.0f} s")
            for scenario, load in zip(plan, loads, strict=True):
                fixture = fixtures[scenario.target]
                title = f"{labels[scenario.target]} {scenario.name}"
                next_index = 0
                if args.warmup:
                    note(f"  {title}: warming up")
                    warmups[len(measured)], used = generator.measure(
                        load, fixture.base_urls, args.warmup, next_index
                    )
                    next_index += used
                note(f"  {title}: measuring")
                loads_before.append(os.getloadavg()[0])
                database = (
                    database_name(postgres_url)
                    if postgres_url and scenario.target == POSTGRES
                    else None
                )
                cpu_before = cpu_ticks(fixture.pids)
                database_before = cpu_ticks(postgres_pids(database)) if database else {}
                measurement, _ = generator.measure(
                    load, fixture.base_urls, args.duration, next_index
                )
                cpu_after = cpu_ticks(fixture.pids)
                database_after = cpu_ticks(postgres_pids(database)) if database else {}
                cpu[len(measured)] = per_request(cpu_before, cpu_after, measurement)
                database_cpu[len(measured)] = per_request(
                    database_before, database_after, measurement
                )
                measured.append((scenario, scenario.target, measurement))
            for key in sorted({s.target for s in chosen if s.suite == "payments"}):
                # Stopped first, so that the requests in flight when wrk stopped are finished.
                for server in launched[key]:
                    server.stop()
                note(f"  {labels[key]}: checking what the notifications did")
                verified[key] = verify_payments(fixtures[key])
    except (HarnessError, ServerDidNotStart) as exc:
        note(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        note("bench: interrupted; the servers, if started, have been stopped")
        return 130

    first, last = measured[0][2].rps, measured[-1][2].rps
    baseline = (first + last) / 2
    drift = (last - first) / first if first else math.nan
    references = {s.name: i for i, (s, key, _) in enumerate(measured) if key == REFERENCE}
    rows = []
    for i, (scenario, key, m) in enumerate(measured):
        r = references.get(scenario.compare_with or "")
        reference = measured[r][2] if r is not None else None
        reference_cpu = cpu[r] if r is not None else None
        own_cpu = cpu[i]
        rows.append(
            Row(
                scenario,
                labels[key],
                m,
                m.rps / baseline if baseline else math.nan,
                m.rps / reference.rps if reference and reference.rps else None,
                m.p99_ms / reference.p99_ms if reference and reference.p99_ms else None,
                own_cpu,
                database_cpu[i],
                own_cpu / reference_cpu if own_cpu and reference_cpu else None,
            )
        )
    checks = check_goals(rows)
    payment_reports = [
        payment_report(key, labels[key], rows, warmups, found) for key, found in verified.items()
    ]
    wall = time.monotonic() - wall_start

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
        f"load average (1 min) before the measured runs: {min(loads_before):.1f} to "
        f"{max(loads_before):.1f} on {os.cpu_count()} CPUs (the load generator's own runs "
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
                for row, load in zip(rows, loads_before, strict=True)
            ],
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


if __name__ == "__main__":
    sys.exit(main())
