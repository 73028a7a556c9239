"""Engine figures without HTTP: joins per second, sweep cost per expired team, idle tick cost.

Run with ``.venv/bin/python -m bench.engine [--open-teams N] [--expired N]``. It builds a fresh
SQLite database (or PostgreSQL when PINTUAN_BENCH_POSTGRES_URL is set and --postgres is given),
fills it with N open teams (each with its leader's held seat), lets a chosen number of them pass
their window, and times the worker's sweep over them. Figures are per item, so they compare across
runs of different sizes; the machine is shared, so read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from pintuan.bootstrap import build_services
from pintuan.config import Environment, Settings
from pintuan.kit.heap import settle_heap
from pintuan.kit.ids import new_id
from pintuan.kit.migrations import upgrade
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.tasks import close_expired_teams
from pintuan.worker import Worker, what_is_due

HOLD = timedelta(minutes=10)


def settings_for(url: str) -> Settings:
    return Settings(
        env=Environment.TEST,
        database_url=url,
        password_time_cost=1,
        password_memory_kib=1024,
        worker_batch_size=1000,
    )


def fresh_database(postgres: bool, folder: Path) -> str:
    if postgres:
        url = os.environ["PINTUAN_BENCH_POSTGRES_URL"]
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{folder / 'engine.db'}"
    upgrade(url)
    return url


def seed(tx: RawTx, shoppers: int) -> tuple[str, list[str]]:
    """One merchant, one live deal with room for everything, and ``shoppers`` users."""
    now = utc_now()
    at = tx.instant(now)
    merchant_id, deal_id = new_id("mch"), new_id("deal")
    tx.execute(
        Sql("""
        INSERT INTO merchants (id, name, slug, country, currency, time_zone, status,
                               commission_bps, created_at, updated_at)
        VALUES (:id, 'Bench', :slug, 'DE', 'EUR', 'Europe/Berlin', 'approved', 0, :at, :at)
    """),
        {"id": merchant_id, "slug": merchant_id.lower(), "at": at},
    )
    tx.execute(
        Sql("""
        INSERT INTO deals (id, merchant_id, title, description, vertical, image_urls, currency,
                           list_price_amount, group_price_amount, new_shoppers_only, team_size,
                           team_window_minutes, stock, committed, per_user_limit, starts_at,
                           ends_at, status, created_at, updated_at, published_at)
        VALUES (:id, :mid, 'Bench deal', '', 'goods', '[]', 'EUR', 2000, 1500, :no, 100, 1440,
                100000000, 0, 1000000, :at, :ends, 'live', :at, :at, :at)
    """),
        {
            "id": deal_id,
            "mid": merchant_id,
            "at": at,
            "no": False,
            "ends": tx.instant(now + timedelta(days=30)),
        },
    )
    users = [new_id("usr") for _ in range(shoppers)]
    tx.many(
        Sql("""
        INSERT INTO users (id, email, display_name, password_hash, role, locale, time_zone,
                           created_at)
        VALUES (:id, :email, 'Bench shopper', 'x', 'shopper', 'en', 'UTC', :at)
    """),
        [{"id": u, "email": f"{u.lower()}@example.com", "at": at} for u in users],
    )
    return deal_id, users


def open_teams(tx: RawTx, deal_id: str, leader: str, count: int, expired: int) -> None:
    """``count`` forming teams of one held leader seat; the first ``expired`` already closed."""
    now = utc_now()
    past, future = tx.instant(now - timedelta(minutes=1)), tx.instant(now + timedelta(hours=20))
    hold = tx.instant(now + timedelta(hours=20))
    created = tx.instant(now)
    chunk = 20_000
    for start in range(0, count, chunk):
        ids = [new_id("team") for _ in range(min(chunk, count - start))]
        tx.many(
            Sql("""
            INSERT INTO teams (id, deal_id, leader_id, status, team_size, taken, paid,
                               expires_at, created_at)
            VALUES (:id, :deal, :leader, 'forming', 100, 1, 0, :expires, :at)
        """),
            [
                {
                    "id": t,
                    "deal": deal_id,
                    "leader": leader,
                    "expires": past if start + i < expired else future,
                    "at": created,
                }
                for i, t in enumerate(ids)
            ],
        )
        tx.many(
            Sql("""
            INSERT INTO seats (id, team_id, deal_id, user_id, status, is_leader, price_amount,
                               currency, hold_expires_at, created_at)
            VALUES (:id, :team, :deal, :leader, 'held', :yes, 1500, 'EUR', :hold, :at)
        """),
            [
                {
                    "id": new_id("seat"),
                    "team": t,
                    "deal": deal_id,
                    "leader": leader,
                    "yes": True,
                    "hold": hold,
                    "at": created,
                }
                for t in ids
            ],
        )
    tx.execute(
        Sql("UPDATE deals SET committed = committed + :n WHERE id = :deal"),
        {"n": count, "deal": deal_id},
    )
    tx.execute(
        Sql("""
        INSERT INTO deal_shopper_counts (deal_id, user_id, count) VALUES (:deal, :leader, :n)
        ON CONFLICT (deal_id, user_id) DO UPDATE SET count = deal_shopper_counts.count + :n
    """),
        {"deal": deal_id, "leader": leader, "n": count},
    )


def copy_back_the_wal(url: str) -> float | None:
    """Milliseconds a passive checkpoint takes to copy the WAL back into the database file now
    (SQLite; None on PostgreSQL). The sweep's own connection never checkpoints: the process's
    checkpoint thread does this beside it, so the figure is the work left to that thread."""
    if not url.startswith("sqlite"):
        return None
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        started = time.perf_counter()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def bench_joins(services: Services, deal_id: str, users: list[str]) -> float:
    """Joins per second through the engine alone (one transaction each, no HTTP)."""
    db = services.db
    team = db.run_raw_sync(
        lambda tx: teams.start_team(tx, users[0], deal_id, utc_now(), hold=HOLD)
    ).team_id
    joined, started = 0, time.perf_counter()
    for user in users[1:]:
        if joined and joined % 98 == 0:  # a full team: start the next one
            team = db.run_raw_sync(
                lambda tx, u=user: teams.start_team(tx, u, deal_id, utc_now(), hold=HOLD)
            ).team_id
        else:
            db.run_raw_sync(
                lambda tx, u=user, t=team: teams.join_team(tx, u, t, utc_now(), hold=HOLD)
            )
        joined += 1
    return joined / (time.perf_counter() - started)


def bench_idle_tick(worker: Worker, rounds: int = 200) -> tuple[float, float]:
    """Median and p99 of a tick that finds nothing to do, in milliseconds."""
    worker.tick()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        worker.tick()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--open-teams", type=int, default=1_000_000)
    parser.add_argument("--expired", type=int, default=10_000)
    parser.add_argument("--joins", type=int, default=3_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.postgres and not os.environ.get("PINTUAN_BENCH_POSTGRES_URL"):
        print("--postgres needs PINTUAN_BENCH_POSTGRES_URL", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        url = fresh_database(args.postgres, Path(folder))
        services = build_services(settings_for(url))
        db = services.db
        backend = db.dialect
        deal_id, users = db.run_raw_sync(seed, args.joins + 1)
        joins_per_s = bench_joins(services, deal_id, users)

        started = time.perf_counter()
        db.run_raw_sync(open_teams, deal_id, users[0], args.open_teams, args.expired)
        seeded_s = time.perf_counter() - started
        copy_back_the_wal(url)  # the sweep starts from the file, as a worker long after the joins
        worker = Worker(services)
        settle_heap()  # as ``pintuan worker`` does before its first tick
        probe_started = time.perf_counter()
        due = db.run_raw_sync(what_is_due, write=False)
        probe_ms = (time.perf_counter() - probe_started) * 1000
        assert due.teams, "expired teams should be due"
        # The sweep proper: failing expired teams, ending their seats, owing money back.
        started, failed = time.perf_counter(), 0
        while n := close_expired_teams(db, worker.batch, worker.lease):
            failed += n
        sweep_s = time.perf_counter() - started
        # What the sweep leaves to the checkpoint thread (kit/db.py): its pages copied back.
        checkpoint_ms = copy_back_the_wal(url)
        # Then what the sweep left for others: the outbox it wrote, turned into notifications.
        started = time.perf_counter()
        report = worker.run_until_idle(max_ticks=100_000)
        dispatch_s = time.perf_counter() - started
        idle_median, idle_p99 = bench_idle_tick(worker)
        forming = db.run_raw_sync(
            lambda tx: tx.one(Sql("SELECT count(*) FROM teams WHERE status = 'forming'"))[0],
            write=False,
        )
        services.db.dispose()

    print(f"engine bench on {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"  joins through the engine, no HTTP:  {joins_per_s:,.0f} joins/s "
        f"({args.joins:,} joins, one transaction each)"
    )
    print(f"  seeded {args.open_teams:,} open teams + seats in {seeded_s:.1f} s")
    print(f"  due-work probe with {args.open_teams:,} open teams: {probe_ms:.2f} ms")
    print(
        f"  sweep: {failed:,} expired teams failed in {sweep_s * 1000:,.0f} ms "
        f"= {sweep_s / max(failed, 1) * 1e6:.1f} µs per expired team; "
        f"{forming:,} still forming"
    )
    if checkpoint_ms is not None:
        print(
            f"  then the WAL's checkpoint (the process's checkpoint thread, beside the worker): "
            f"{checkpoint_ms:,.0f} ms = {checkpoint_ms * 1000 / max(failed, 1):.1f} µs per team"
        )
    print(
        f"  outbox: {report.events_dispatched:,} events dispatched in {dispatch_s * 1000:,.0f} ms "
        f"= {dispatch_s / max(report.events_dispatched, 1) * 1e6:.1f} µs per event"
    )
    print(f"  idle tick: median {idle_median:.3f} ms, p99 {idle_p99:.3f} ms")
    return 0 if failed == args.expired else 1


if __name__ == "__main__":
    sys.exit(main())
