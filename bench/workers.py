"""Sweep throughput with 1, 2 and 4 worker processes sharing one backlog of expired teams.

Run with ``.venv/bin/python -m bench.workers [--postgres] [--teams N] [--deals N]``. Each round
seeds ``--teams`` forming teams (each with its leader's held seat) whose window has closed, spread
over ``--deals`` deals, then starts that many processes at once, each with its own connections,
claiming and failing batches (``teams.tasks.close_expired_teams``: the lease claim, then the
failing under the deal and team locks) until none is left. It prints teams failed per second and
the ratio to one worker in the same run, then checks that every team failed exactly once (one
``team.failed`` event each). A second set of rounds puts every team on one deal, where each batch
needs the same deal lock. The machine is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path

from bench.engine import fresh_database, open_teams, seed, settings_for
from pintuan.bootstrap import build_services
from pintuan.kit.rawsql import Sql
from pintuan.teams.tasks import close_expired_teams

WORKERS = (1, 2, 4)
BATCH = 100
LEASE = timedelta(minutes=1)
COUNT_FAILED = Sql(
    """SELECT count(*) AS teams, (SELECT count(*) FROM outbox_events WHERE type = 'team.failed')
       AS events FROM teams WHERE status = 'failed'"""
)


def sweep(url: str, go: Event, done: multiprocessing.Queue[int]) -> None:
    """One worker process: wait for the start, then fail batches until nothing is left."""
    services = build_services(settings_for(url))
    services.db.run_raw_sync(lambda tx: tx.one(Sql("SELECT 1")), write=False)  # connected
    go.wait()
    failed = 0
    while n := close_expired_teams(services.db, BATCH, LEASE):
        failed += n
    services.db.dispose()
    done.put(failed)


def round_of(url: str, processes: int, teams: int, deals: list[tuple[str, str]]) -> float:
    """Seed ``teams`` expired teams over ``deals`` and time ``processes`` workers sweeping
    them; returns teams failed per second."""
    services = build_services(settings_for(url))
    each = teams // len(deals)
    for deal_id, leader in deals:
        services.db.run_raw_sync(open_teams, deal_id, leader, each, each)
    services.db.dispose()
    forks = multiprocessing.get_context("fork")
    go, done = forks.Event(), forks.Queue()
    procs = [forks.Process(target=sweep, args=(url, go, done)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # every process imported and connected
    started = time.perf_counter()
    go.set()
    shares = [done.get(timeout=600) for _ in procs]
    took = time.perf_counter() - started
    for proc in procs:
        proc.join()
    assert sum(shares) == each * len(deals), shares
    return sum(shares) / took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--teams", type=int, default=20_000)
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.postgres and not os.environ.get("PINTUAN_BENCH_POSTGRES_URL"):
        print("--postgres needs PINTUAN_BENCH_POSTGRES_URL", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        url = fresh_database(args.postgres, Path(folder))
        services = build_services(settings_for(url))
        backend = services.db.dialect
        spread = [services.db.run_raw_sync(seed, 1) for _ in range(args.deals)]
        spread_deals = [(deal_id, users[0]) for deal_id, users in spread]
        hot_deal, hot_users = services.db.run_raw_sync(seed, 1)
        services.db.dispose()
        figures: dict[str, dict[int, float]] = {"spread": {}, "one deal": {}}
        for n in WORKERS:
            figures["spread"][n] = round_of(url, n, args.teams, spread_deals)
            figures["one deal"][n] = round_of(url, n, args.teams, [(hot_deal, hot_users[0])])
        services = build_services(settings_for(url))
        failed, events = services.db.run_raw_sync(lambda tx: tx.one(COUNT_FAILED), write=False)
        services.db.dispose()

    with open("/proc/loadavg") as load:
        loadavg = load.read().split()[:3]
    print(
        f"worker sweep bench on {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"load average {' '.join(loadavg)}"
    )
    for name, by_workers in figures.items():
        where = f"over {args.deals} deals" if name == "spread" else "all on one deal"
        base = by_workers[1]
        cells = ", ".join(
            f"{n} worker{'s' if n > 1 else ''} {rate:,.0f}/s ({rate / base:.2f}x)"
            for n, rate in by_workers.items()
        )
        print(f"  {args.teams:,} expired teams {where}, batch {BATCH}: {cells}")
    once = failed == events == args.teams * len(WORKERS) * 2
    verdict = "yes" if once else "NO"
    print(f"  every team failed exactly once: {verdict} ({failed:,} teams, {events:,} events)")
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(main())
