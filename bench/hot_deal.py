"""A hot deal: joins on the teams of one deal with little stock, at 256 connections, with and
without Redis admission, in one run; then the same with Redis killed and started again in the
middle. Part of ``make bench``.

    python -m bench.hot_deal                       # SQLite, in a scratch directory
    python -m bench.hot_deal --postgres URL        # PostgreSQL too (a database it may wipe)

Each round starts from a fresh database: one live deal (``--stock`` units, teams of
``--team-size``), ``--teams`` teams started through the API and ``--shoppers`` shoppers with
tokens, who each look at their orders first (signed in before the sale opens); then wrk sends
joins by shopper n to team n mod T for ``--seconds``. The stock runs out
early, as in a flash sale: most answers are refusals (``409 sold_out``), which is what Redis
admission makes cheap. After every round the database must show zero oversell (live seats =
committed <= stock, no team past its size) and the audit and ledger check must be clean; a
breach fails the benchmark. Redis is a redis-server of the benchmark's own, on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy.orm import Session

import pintuan.models  # noqa: F401 (every table mapped, as in every pintuan command)
from bench.load.generators import Measurement, Wrk
from bench.load.harness import DEFAULT_RESULTS, HOST, with_bench_path
from bench.load.scenarios import Load, Request
from bench.seed_joins import add_users, create_merchant, reset
from pintuan.accounts import service as accounts
from pintuan.audit.ledger import check_ledger
from pintuan.audit.service import audit_database
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.deals import service as deals
from pintuan.domain.deals import Vertical
from pintuan.kit.migrations import upgrade
from pintuan.kit.money import Money
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.serving import Server, free_port, start_command, stop_all
from pintuan.kit.time import utc_now
from pintuan.teams import admission

CONNECTIONS = 256
RESULTS = DEFAULT_RESULTS.with_name("hot_deal.json")
RATE_CEILING = 4_000  # joins a second wrk's pool holds; wrapping only repeats refusals


@dataclass(frozen=True)
class Round:
    database: str
    mode: str  # "database" or "redis" or "redis, restarted mid-run"
    rps: float
    p50_ms: float
    p99_ms: float
    joined: int
    refused: int
    server_errors: int
    errors: int
    committed: int
    live_seats: int
    stock: int
    fullest_team: int
    team_size: int
    breaches: int

    @property
    def oversold(self) -> int:
        return max(0, self.live_seats - self.stock) + max(0, self.committed - self.stock)


class OwnRedis:
    """A redis-server of the benchmark's own, without persistence, that it may kill and start."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        command = [self.binary, "--port", str(self.port), "--bind", HOST, "--dir"]
        command += [str(self.workdir), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(500):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


LIVE_SEATS = Sql(
    "SELECT count(*) AS n FROM seats WHERE deal_id = :deal_id "
    "AND status IN ('held', 'paid', 'confirmed')"
)
FULLEST_TEAM = Sql("SELECT coalesce(max(taken), 0) AS n FROM teams WHERE deal_id = :deal_id")
COMMITTED = Sql("SELECT committed AS n, stock FROM deals WHERE id = :deal_id")


def _seed(settings: Settings, args: argparse.Namespace) -> tuple[str, list[str], list[str]]:
    """One live deal with little stock; leaders' and shoppers' tokens."""
    services = build_services(settings)
    db = services.db
    staff = create_merchant(db, f"hot-{secrets.token_hex(4)}")
    (merchant_id,) = staff.merchant_ids
    password_hash = services.passwords.hash(secrets.token_urlsafe(24))

    def make(session: Session) -> tuple[str, list[str], list[str]]:
        now = utc_now()
        draft = deals.DealDraft(
            merchant_id=merchant_id,
            title="Hot deal",
            description="Seeded for the hot-deal benchmark.",
            vertical=Vertical.GOODS,
            list_price=Money(2000, "USD"),
            group_price=Money(1500, "USD"),
            stock=args.stock,
            per_user_limit=args.teams,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=7),
            team_size=args.team_size,
            team_window_minutes=24 * 60,
        )
        deal = deals.create_deal(session, staff, draft)
        deal_id = deals.change_deal_status(session, staff, deal.id, "publish").id
        domain = f"{merchant_id}.bench.invalid"
        leaders = add_users(session, password_hash, domain, "leader", args.teams)
        shoppers = add_users(session, password_hash, domain, "shopper", args.shoppers)
        return (
            deal_id,
            [accounts.issue_api_token(session, u.id, "bench").secret for u in leaders],
            [accounts.issue_api_token(session, u.id, "bench").secret for u in shoppers],
        )

    seeded = db.run_sync(make)
    db.dispose()
    return seeded


def _start_teams(url: str, deal_id: str, leaders: Sequence[str]) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        teams = []
        for token in leaders:
            answer = client.post(
                f"/v1/deals/{deal_id}/teams", headers={"Authorization": f"Bearer {token}"}
            )
            answer.raise_for_status()
            teams.append(answer.json()["team"]["id"])
    return teams


def _sign_in(url: str, tokens: Sequence[str]) -> None:
    """Each shopper looks at their orders before the sale opens, as buyers of a flash sale are
    on its page before it starts: their tokens' use is recorded now, not during the run."""
    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:

        def look(token: str) -> None:
            client.get(
                "/v1/me/seats", headers={"Authorization": f"Bearer {token}"}
            ).raise_for_status()

        list(pool.map(look, tokens))


@contextlib.contextmanager
def _servers(env: dict[str, str], workdir: Path, count: int) -> Iterator[list[Server]]:
    pintuan = Path(sys.executable).with_name("pintuan")

    def serve(port: int) -> list[str]:
        return [str(pintuan), "serve", "--host", HOST, "--port", str(port), "--no-worker"]

    servers: list[Server] = []
    try:
        for n in range(count):
            servers.append(start_command(serve, env=env, cwd=workdir, log=workdir / f"s{n}.log"))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        stop_all(servers)


def _check(settings: Settings, deal_id: str) -> tuple[int, int, int, int, int]:
    """committed, stock, live seats, fullest team, breaches (audit and ledger)."""
    services = build_services(settings)
    db = services.db

    def counts(tx: RawTx) -> tuple[int, int, int, int]:
        committed, stock = tx.one(COMMITTED, {"deal_id": deal_id})
        live = tx.scalar(LIVE_SEATS, {"deal_id": deal_id})
        fullest = tx.scalar(FULLEST_TEAM, {"deal_id": deal_id})
        return int(committed), int(stock), int(live), int(fullest)

    committed, stock, live, fullest = db.run_raw_sync(counts, write=False)
    breaches = len(db.run_sync(lambda s: audit_database(s, timedelta(0))))
    breaches += len(db.run_sync(check_ledger).breaches)
    db.dispose()
    return committed, stock, live, fullest, breaches


def run_round(
    database_url: str,
    label: str,
    mode: str,
    args: argparse.Namespace,
    workdir: Path,
    own_redis: OwnRedis | None,
) -> Round:
    if database_url.startswith("postgresql"):
        os.environ["PINTUAN_DATABASE_URL"] = database_url
        reset()
    upgrade(database_url)
    settings = Settings(database_url=database_url, env="dev")  # type: ignore[arg-type]
    deal_id, leaders, shoppers = _seed(settings, args)
    env = with_bench_path(os.environ)
    env.update(PINTUAN_DATABASE_URL=database_url, PINTUAN_ENV="dev", PINTUAN_LOG_LEVEL="WARNING")
    env.pop("PINTUAN_REDIS_URL", None)
    if own_redis is not None:
        redis.Redis.from_url(own_redis.url).flushall()
        env["PINTUAN_REDIS_URL"] = own_redis.url
    with _servers(env, workdir, args.servers) as servers:
        teams = _start_teams(servers[0].url, deal_id, leaders)
        _sign_in(servers[0].url, shoppers)

        def join(n: int) -> Request:
            token = shoppers[n % len(shoppers)]
            return Request(
                "POST",
                f"/v1/teams/{teams[n % len(teams)]}/seats",
                {"Authorization": f"Bearer {token}"},
            )

        load = Load(join, wrk_pool_per_second=RATE_CEILING)
        wrk = Wrk(args.wrk, workdir, connections=CONNECTIONS)
        restarter = None
        if own_redis is not None and "restart" in mode:

            def restart() -> None:
                # wrk starts once its pool of requests is written, about a second from now.
                time.sleep(1 + args.seconds / 2)
                own_redis.stop()
                own_redis.start()

            restarter = threading.Thread(target=restart)
            restarter.start()
        measured, _ = wrk.measure(load, [s.url for s in servers], args.seconds, 0)
        if restarter is not None:
            restarter.join()
    if own_redis is not None:
        services = build_services(settings.model_copy(update={"redis_url": own_redis.url}))
        assert services.redis is not None
        admission.reconcile(services.redis, services.db, utc_now())
        services.redis.close()
        services.db.dispose()
    committed, stock, live, fullest, breaches = _check(settings, deal_id)
    return _round(label, mode, measured, committed, stock, live, fullest, args, breaches)


def _round(
    label: str,
    mode: str,
    m: Measurement,
    committed: int,
    stock: int,
    live: int,
    fullest: int,
    args: argparse.Namespace,
    breaches: int,
) -> Round:
    refused = sum(n for status, n in m.statuses.items() if 400 <= status < 500)
    server_errors = sum(n for status, n in m.statuses.items() if status >= 500)
    return Round(
        database=label,
        mode=mode,
        rps=round(m.rps, 1),
        p50_ms=round(m.p50_ms, 2),
        p99_ms=round(m.p99_ms, 2),
        joined=m.requests - m.non_2xx,
        refused=refused,
        server_errors=server_errors,
        errors=m.errors,
        committed=committed,
        live_seats=live,
        stock=stock,
        fullest_team=fullest,
        team_size=args.team_size,
        breaches=breaches,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--postgres", help="also on this PostgreSQL database (it is wiped)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--servers", type=int, default=2, help="API processes")
    parser.add_argument("--stock", type=int, default=300)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--team-size", type=int, default=10)
    parser.add_argument("--shoppers", type=int, default=2_000)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.wrk = shutil.which("wrk")
    binary = shutil.which("redis-server")
    if args.wrk is None or binary is None:
        missing = "wrk" if args.wrk is None else "redis-server"
        print(f"hot deal: skipped, no {missing} (apt-get install {missing})", file=sys.stderr)
        return 0
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="pintuan-hot-deal-") as scratch:
        workdir = Path(scratch)
        own_redis = OwnRedis(binary, workdir)
        own_redis.start()
        try:
            databases = [("SQLite", f"sqlite:///{workdir / 'hot.db'}")]
            if args.postgres:
                databases.append(("PostgreSQL", args.postgres))
            for label, url in databases:
                for mode in ("database", "redis", "redis, restarted mid-run"):
                    if url.startswith("sqlite"):
                        for suffix in ("", "-wal", "-shm"):
                            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
                    with_redis = own_redis if mode != "database" else None
                    done = run_round(url, label, mode, args, workdir, with_redis)
                    print(_line(done), file=sys.stderr)
                    rounds.append(done)
        finally:
            own_redis.stop()
    _report(rounds, args)
    bad = [r for r in rounds if r.oversold or r.breaches or r.fullest_team > r.team_size]
    return 1 if bad else 0


def _line(r: Round) -> str:
    return (
        f"{r.database:<10} {r.mode:<25} {r.rps:>8.0f}/s  p50 {r.p50_ms:>7.1f} ms  "
        f"p99 {r.p99_ms:>7.1f} ms  joined {r.joined:>5}  refused {r.refused:>6}  "
        f"5xx {r.server_errors:>4}  committed {r.committed}/{r.stock}  oversold {r.oversold}  "
        f"breaches {r.breaches}"
    )


def _report(rounds: Sequence[Round], args: argparse.Namespace) -> None:
    with open("/proc/loadavg") as f:
        load = f.read().strip()
    print(
        f"\nHot deal: joins on one deal at {CONNECTIONS} connections, {args.servers} API "
        f"processes, {args.seconds} s each; load average before the report: {load}"
    )
    for r in rounds:
        print(_line(r))
    for database in dict.fromkeys(r.database for r in rounds):
        by_mode = {r.mode: r for r in rounds if r.database == database}
        ratio = by_mode["redis"].rps / by_mode["database"].rps
        print(f"{database}: Redis admission / database alone = {ratio:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "connections": CONNECTIONS,
        "loadavg": load,
        "rounds": [{**asdict(r), "oversold": r.oversold} for r in rounds],
    }
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
