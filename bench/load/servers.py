"""The servers under test: building and seeding their databases, starting them (through
``pintuan.kit.serving``, shared with the tests) and reading the CPU time they use."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load.generators import Measurement
from bench.load.harness import (
    HOST,
    SEED_TIMEOUT_SECONDS,
    HarnessError,
    bench_module,
    note,
    run_command,
    with_bench_path,
)
from bench.load.scenarios import (
    FEED_OFFERS,
    PAYMENT_DEALS,
    PAYMENT_TEAM_SIZE,
    POSTGRES,
    POSTGRES_JOIN_SERVERS,
    REFERENCE,
    REFERENCE_POSTGRES,
    SANDBOX_SECRET,
    SHOPPERS,
    SPREAD_DEALS,
    SQLITE,
    SQLITE_FEED,
    SQLITE_JOINS,
    SQLITE_PAYMENTS,
    TEAM_SIZE,
    TEAMS,
    Fixture,
    JoinSeed,
    PaymentSeed,
    Seeded,
)
from pintuan.kit.serving import Server, start_command

# Pintuan's own default PINTUAN_DB_POOL_SIZE, given to the psycopg reference too.
DEFAULT_POOL_SIZE = 10
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    """User + system CPU time each process has used so far, in clock ticks (Linux; processes
    that cannot be read, e.g. gone already, are left out)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            # After "pid (comm)": state is field 0, utime field 11, stime field 12.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def postgres_pids(database: str) -> list[int]:
    """The local PostgreSQL server's backends connected to ``database`` (their command line
    names it: "postgres: 15/main: user database host(port) state"). Shared background processes
    (WAL writer, checkpointer, ...) are left out."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() != "postgres":
                        continue
                    words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
                    if database.encode() in words:
                        pids.append(int(entry.name))
    return pids


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def per_request(
    before: Mapping[int, int], after: Mapping[int, int], m: Measurement
) -> float | None:
    """Microseconds of CPU per completed request between two readings (None: nothing read)."""
    if not after or not m.requests:
        return None
    return cpu_us_each(before, after, m.requests)


def cpu_us_each(before: Mapping[int, int], after: Mapping[int, int], count: int) -> float:
    """Microseconds of CPU the processes read in ``after`` used between two readings of
    :func:`cpu_ticks`, divided among ``count`` requests."""
    ticks = sum(used - before.get(pid, 0) for pid, used in after.items())
    return ticks / _CLOCK_TICKS / count * 1e6


def find_pintuan() -> Path:
    beside = Path(sys.executable).with_name("pintuan")
    if beside.exists():
        return beside
    found = shutil.which("pintuan")
    if found is None:
        raise HarnessError("no `pintuan` command; run `make install` first")
    return Path(found)


def _pintuan_env(database_url: str) -> dict[str, str]:
    env = with_bench_path(os.environ)
    env["PINTUAN_DATABASE_URL"] = database_url
    # The demo catalogue is refused in prod, and the benchmark needs it.
    env["PINTUAN_ENV"] = "dev"
    # Request logs stay on, as they are by default: a real request writes its log line.
    env.pop("PINTUAN_LOG_LEVEL", None)
    # Known to the harness, which signs the sandbox's notifications with it.
    env["PINTUAN_SANDBOX_WEBHOOK_SECRET"] = SANDBOX_SECRET
    return env


@dataclass
class Target:
    """A server under test: how to build its database and start it."""

    key: str
    label: str
    env: dict[str, str]
    build: Callable[[], Seeded]
    command: Callable[[int], Sequence[str]]
    ready_path: str
    processes: int = 1
    seed: Seeded = field(default_factory=Seeded)


def join_sizes(shoppers: int = SHOPPERS, teams: int = TEAMS) -> list[str]:
    """The join seeders' size arguments (Pintuan's and the references'), the same for all: at
    most ``SPREAD_DEALS`` deals, fewer for fewer teams."""
    return [
        f"--shoppers={shoppers}",
        f"--teams={teams}",
        f"--spread-deals={min(SPREAD_DEALS, teams)}",
        f"--team-size={TEAM_SIZE}",
    ]


def _build_pintuan(
    pintuan: Path,
    env: Mapping[str, str],
    workdir: Path,
    *,
    reset: bool = False,
    demo: bool = False,
    joins: bool = False,
    payments: int = 0,
) -> Seeded:
    """Migrate (after emptying, for PostgreSQL) and load the demo, the join seed and/or
    ``payments`` open payments."""
    seeder = bench_module("seed_joins")
    if reset:
        run_command([*seeder, "reset"], env, workdir)
    # The working directory is the scratch one so that a developer's .env is not read.
    run_command([str(pintuan), "migrate"], env, workdir)
    if demo:
        run_command([str(pintuan), "demo"], env, workdir)
    join_seed = None
    if joins:
        out = workdir / f"seed-{secrets.token_hex(4)}.json"
        run_command(
            [*seeder, "seed", *join_sizes(), f"--out={out}"], env, workdir, SEED_TIMEOUT_SECONDS
        )
        seeded: dict[str, Any] = json.loads(out.read_text())
        join_seed = JoinSeed(
            kind_deals={"spread": seeded["spread_deals"], "hot": [seeded["hot_deal"]]},
            leaders=seeded["leaders"],
            shoppers=seeded["shoppers"],
        )
    payment_seed = None
    if payments:
        out = workdir / f"payments-{secrets.token_hex(4)}.json"
        command = [
            *bench_module("seed_payments"),
            "seed",
            f"--payments={payments}",
            f"--team-size={PAYMENT_TEAM_SIZE}",
            f"--deals={PAYMENT_DEALS}",
            f"--out={out}",
        ]
        run_command(command, env, workdir, SEED_TIMEOUT_SECONDS)
        listed = json.loads(out.read_text())["payments"]
        payment_seed = PaymentSeed([row["body"].encode() for row in listed], out)
    return Seeded(join_seed, payment_seed)


def _build_feed(pintuan: Path, env: Mapping[str, str], workdir: Path) -> Seeded:
    """Migrate and seed ``FEED_OFFERS`` live offers with a few hundred almost full teams."""
    run_command([str(pintuan), "migrate"], env, workdir)
    seeder = [*bench_module("seed_feed"), "seed", f"--offers={FEED_OFFERS}"]
    # Ten thousand deals through the services take minutes on a busy machine.
    run_command(seeder, env, workdir, 3 * SEED_TIMEOUT_SECONDS)
    return Seeded()


def verify_payments(fixture: Fixture) -> dict[str, Any]:
    """What ``bench/seed_payments.py verify`` finds in the target's database (its servers
    stopped): the deliveries' effects and the ledger check."""
    out = fixture.workdir / f"verified-{fixture.target}.json"
    command = [
        *bench_module("seed_payments"),
        "verify",
        f"--seed={fixture.payment_seed().path}",
        f"--out={out}",
    ]
    run_command(command, fixture.env, fixture.workdir, SEED_TIMEOUT_SECONDS)
    found: dict[str, Any] = json.loads(out.read_text())
    found["predelivered"] = fixture.delivered_before_clocks
    return found


def _build_reference(workdir: Path) -> Seeded:
    out = workdir / "reference-seed.json"
    command = [
        *bench_module("reference_app"),
        "seed",
        f"--db={workdir / 'reference.db'}",
        f"--out={out}",
        *join_sizes(),
    ]
    run_command(command, with_bench_path(os.environ), workdir, SEED_TIMEOUT_SECONDS)
    seeded: dict[str, Any] = json.loads(out.read_text())
    teams = {"spread": seeded["spread_teams"], "hot": seeded["hot_teams"]}
    return Seeded(JoinSeed(kind_deals={}, leaders=[], shoppers=seeded["shoppers"], teams=teams))


def _build_reference_postgres(url: str, workdir: Path) -> Seeded:
    out = workdir / "reference-postgres-seed.json"
    command = [
        *bench_module("reference_pg"),
        "seed",
        f"--url={url}",
        f"--out={out}",
        f"--rounds={len(POSTGRES_JOIN_SERVERS)}",
        *join_sizes(),
    ]
    run_command(command, with_bench_path(os.environ), workdir, SEED_TIMEOUT_SECONDS)
    seeded: dict[str, Any] = json.loads(out.read_text())
    return Seeded(
        JoinSeed(
            kind_deals={}, leaders=[], shoppers=seeded["shoppers"], teams=seeded["teams_by_kind"]
        )
    )


def targets_for(
    needed: set[str],
    pintuan: Path,
    workdir: Path,
    *,
    reads: bool,
    postgres_suites: set[str],
    payments: int,
    postgres_url: str | None,
    postgres_servers: int,
    postgres_pool_size: int | None,
    worker: bool,
) -> list[Target]:
    """The servers ``needed``; ``postgres_suites`` says which seeds PostgreSQL's database needs,
    ``payments`` how many payments a payments target is seeded with."""
    flag = "--worker" if worker else "--no-worker"

    def serve(port: int) -> list[str]:
        return [str(pintuan), "serve", "--host", HOST, "--port", str(port), flag]

    demo_env = _pintuan_env(f"sqlite:///{workdir / 'demo.db'}")
    targets = [
        Target(
            SQLITE,
            "Pintuan/SQLite",
            demo_env,
            lambda: _build_pintuan(pintuan, demo_env, workdir, demo=reads),
            serve,
            "/readyz",
        )
    ]
    if SQLITE_JOINS in needed:
        joins_env = _pintuan_env(f"sqlite:///{workdir / 'joins.db'}")
        targets.append(
            Target(
                SQLITE_JOINS,
                "Pintuan/SQLite",
                joins_env,
                lambda: _build_pintuan(pintuan, joins_env, workdir, joins=True),
                serve,
                "/readyz",
            )
        )
    if SQLITE_PAYMENTS in needed:
        payments_env = _pintuan_env(f"sqlite:///{workdir / 'payments.db'}")
        targets.append(
            Target(
                SQLITE_PAYMENTS,
                "Pintuan/SQLite",
                payments_env,
                lambda: _build_pintuan(pintuan, payments_env, workdir, payments=payments),
                serve,
                "/readyz",
            )
        )
    if SQLITE_FEED in needed:
        feed_env = _pintuan_env(f"sqlite:///{workdir / 'feed.db'}")
        targets.append(
            Target(
                SQLITE_FEED,
                "Pintuan/SQLite",
                feed_env,
                lambda: _build_feed(pintuan, feed_env, workdir),
                serve,
                "/readyz",
            )
        )
    if REFERENCE in needed:
        reference_db = workdir / "reference.db"
        targets.append(
            Target(
                REFERENCE,
                "reference",
                with_bench_path(os.environ),
                lambda: _build_reference(workdir),
                lambda port: [
                    *bench_module("reference_app"),
                    "serve",
                    f"--db={reference_db}",
                    f"--host={HOST}",
                    f"--port={port}",
                ],
                "/healthz",
            )
        )
    joins_on_postgres = "joins" in postgres_suites
    if REFERENCE_POSTGRES in needed and postgres_url:
        url = postgres_url
        targets.append(
            Target(
                REFERENCE_POSTGRES,
                "psycopg reference",
                with_bench_path(os.environ),
                lambda: _build_reference_postgres(url, workdir),
                lambda port: [
                    *bench_module("reference_pg"),
                    "serve",
                    f"--url={url}",
                    f"--host={HOST}",
                    f"--port={port}",
                    f"--pool-size={postgres_pool_size or DEFAULT_POOL_SIZE}",
                ],
                "/healthz",
                processes=max(POSTGRES_JOIN_SERVERS),
            )
        )
    if POSTGRES in needed and postgres_url:
        pg_env = _pintuan_env(postgres_url)
        if postgres_pool_size is not None:
            pg_env["PINTUAN_DB_POOL_SIZE"] = str(postgres_pool_size)
        targets.append(
            Target(
                POSTGRES,
                "Pintuan/PostgreSQL",
                pg_env,
                lambda: _build_pintuan(
                    pintuan,
                    pg_env,
                    workdir,
                    reset=True,
                    joins="joins" in postgres_suites,
                    payments=payments if "payments" in postgres_suites else 0,
                ),
                serve,
                "/readyz",
                processes=max(postgres_servers, *POSTGRES_JOIN_SERVERS)
                if joins_on_postgres
                else postgres_servers,
            )
        )
    return targets


def start_servers(stack: contextlib.ExitStack, target: Target, workdir: Path) -> list[Server]:
    """Start the target's processes side by side; ``stack`` stops each when it unwinds, however
    it unwinds. They may not be ready yet: see ``Server.wait_ready``."""
    servers = []
    for i in range(target.processes):
        server = start_command(
            target.command,
            env=target.env,
            cwd=workdir,
            log=workdir / f"server-{target.key}-{i}.log",
        )
        stack.callback(server.stop)
        servers.append(server)
    return servers


def start_targets(
    stack: contextlib.ExitStack, targets: Sequence[Target], workdir: Path, pintuan: Path
) -> tuple[dict[str, Fixture], dict[str, list[Server]]]:
    """Build every target's database, start its servers and wait until they answer; each
    target's fixture and servers, by key. ``stack`` stops the servers when it unwinds."""
    fixtures: dict[str, Fixture] = {}
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
        client = stack.enter_context(httpx.Client(base_url=urls[0], timeout=30.0, trust_env=False))
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
    return fixtures, launched
