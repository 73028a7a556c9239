"""The command line: ``python -m bench.load [--suite ...]`` (``make bench``). It builds the
databases, starts the servers, prepares every scenario, then measures them one after another and
prints the report."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import bench.load
from bench.load.generators import Generator, pick_generator
from bench.load.harness import (
    CONNECTIONS,
    DEFAULT_RESULTS,
    DEFAULT_SECONDS,
    DEFAULT_WARMUP_SECONDS,
    HarnessError,
    note,
)
from bench.load.report import Runs, summarise
from bench.load.scenarios import (
    BASELINE,
    LONGEST_SIGNED_RUN_SECONDS,
    POSTGRES,
    REFERENCE_POSTGRES,
    SCENARIOS,
    SUITES,
    TOLERANCE,
    Fixture,
    Load,
    Scenario,
    describe,
    payments_to_seed,
)
from bench.load.servers import (
    cpu_ticks,
    database_name,
    find_pintuan,
    per_request,
    postgres_pids,
    start_targets,
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


def _measure(
    plan: Sequence[Scenario],
    loads: Sequence[Load],
    fixtures: Mapping[str, Fixture],
    labels: Mapping[str, str],
    generator: Generator,
    args: argparse.Namespace,
    postgres_url: str | None,
    runs: Runs,
) -> None:
    """Warm up and measure each scenario in turn, with the CPU time its servers used."""
    for scenario, load in zip(plan, loads, strict=True):
        fixture = fixtures[scenario.target]
        title = f"{labels[scenario.target]} {scenario.name}"
        # The PostgreSQL targets start the most processes any scenario loads.
        servers = scenario.servers or (
            args.postgres_servers if scenario.target == POSTGRES else len(fixture.base_urls)
        )
        urls, pids = fixture.base_urls[:servers], fixture.pids[:servers]
        next_index = 0
        if args.warmup:
            note(f"  {title}: warming up")
            runs.warmups[len(runs.measured)], used = generator.measure(
                load, urls, args.warmup, next_index
            )
            next_index += used
        note(f"  {title}: measuring")
        runs.loads_before.append(os.getloadavg()[0])
        on_postgres = scenario.target in (POSTGRES, REFERENCE_POSTGRES)
        database = database_name(postgres_url) if postgres_url and on_postgres else None
        cpu_before = cpu_ticks(pids)
        database_before = cpu_ticks(postgres_pids(database)) if database else {}
        measurement, _ = generator.measure(load, urls, args.duration, next_index)
        cpu_after = cpu_ticks(pids)
        database_after = cpu_ticks(postgres_pids(database)) if database else {}
        runs.cpu[len(runs.measured)] = per_request(cpu_before, cpu_after, measurement)
        runs.database_cpu[len(runs.measured)] = per_request(
            database_before, database_after, measurement
        )
        runs.measured.append((scenario, scenario.target, measurement))


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
        and (s.target not in (POSTGRES, REFERENCE_POSTGRES) or postgres_url)
    ]
    plan = [BASELINE, *chosen, Scenario(f"{BASELINE.name} (again)", BASELINE.prepare)]
    runs = Runs()
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
            fixtures, launched = start_targets(stack, targets, workdir, pintuan)
            # Everything is prepared before the first clock starts, so a broken scenario
            # fails in seconds rather than after the others have run.
            note(
                "preparing scenarios (joins: starting their teams; payments: delivering the "
                "notifications that are then sent again)"
            )
            started = time.monotonic()
            loads = _prepare(plan, fixtures)
            note(f"  prepared in {time.monotonic() - started:.0f} s")
            _measure(plan, loads, fixtures, labels, generator, args, postgres_url, runs)
            for key in sorted({s.target for s in chosen if s.suite == "payments"}):
                # Stopped first, so that the requests in flight when wrk stopped are finished.
                for server in launched[key]:
                    server.stop()
                note(f"  {labels[key]}: checking what the notifications did")
                runs.verified[key] = verify_payments(fixtures[key])
    except (HarnessError, ServerDidNotStart) as exc:
        note(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        note("bench: interrupted; the servers, if started, have been stopped")
        return 130

    return summarise(args, generator, targets, runs, time.monotonic() - wall_start)
