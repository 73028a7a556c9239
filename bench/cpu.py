"""CPU a request costs, in one process, without HTTP: the figure to compare code by.

``bench.load`` measures over HTTP, where a change of a few per cent is lost in the machine's
noise (two runs of the same code differ by ten). Here each request is handed to the application
as the server would hand it (its ASGI call), in batches of ``--batch`` at once so that SQLite's
writes are committed together as under load, and the CPU time of the whole process (every
thread: the feed's log writer and the checkpoints included) is divided by the requests. Every
figure is also given as a ratio to ``/healthz`` measured in the same process, the join as a
ratio to the bare reference (``bench/reference_app.py``) driven the same way, and a payment's
confirmation as a ratio to a duplicate delivery of a notification.

    python -m bench.cpu [--only feed|joins|payments] [--postgres] [--requests 3000] [--rounds 3]
                        [--json FILE]

What is measured (each in its own process, on a database of its own, seeded as ``bench.load``
seeds it): ``GET /v1/feed?slots=20`` and the home page with ``--offers`` live offers; a join
(``POST /v1/teams/{id}/seats``) with and without an ``Idempotency-Key``, each shopper joining a
team once; the reference's join on its own seed; a sandbox notification delivered again (the
webhook path with nothing applied) and each payment's ``payment.authorized`` notification
delivered once (``POST /v1/webhooks/sandbox``, the payment authorised, its journal written, its
seat paid and every third one's team succeeding), on held seats with open payments.

With ``--postgres`` the joins' and the payments' paths are measured a second time on PostgreSQL
(the database ``PINTUAN_BENCH_POSTGRES_URL`` names, emptied first), where the server's backends
do much of the work: their CPU a request is read from ``/proc`` and shown beside the process's,
and the confirmation's ratio to the duplicate is of both together. A join's there shows what its
``Idempotency-Key`` costs against the same join without one, with HTTP's noise left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.load.scenarios import (
    FEED_OFFERS,
    PAYMENT_DEALS,
    PAYMENT_TEAM_SIZE,
    PREDELIVERED,
    SANDBOX_SECRET,
    SHOPPERS,
    TEAMS,
    WEBHOOK_PATH,
)
from bench.load.servers import cpu_ticks, cpu_us_each, database_name, join_sizes, postgres_pids

Call = Callable[[int], Awaitable[None]]
DUPLICATE = "POST webhook, duplicate"
# How much of a statement's text ``--statements`` shows (and tells statements apart by).
STATEMENT_SHOWN = 90
CONFIRMATION = "POST webhook, authorized"
PAYMENTS_POSTGRES = "payments-postgres"
JOINS_POSTGRES = "joins-postgres"
# Each target measured on PostgreSQL, and the target it measures there.
ON_POSTGRES = {PAYMENTS_POSTGRES: "payments", JOINS_POSTGRES: "joins"}
ROOT = Path(__file__).resolve().parent.parent


class Failed(Exception):
    """A request answered something else than it should have."""


# ---------------------------------------------------------------------------- one process


def _scope(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _request(
    app: Any,
    method: str,
    target: str,
    status: int,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> bytes:
    """One request through the application's ASGI call; its body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(method, target, list(headers)), receive, send)
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    if sent[0]["status"] != status:
        raise Failed(f"{method} {target} answered {sent[0]['status']}: {answer[:300]!r}")
    return answer


async def _measure_all(
    paths: Sequence[tuple[str, Call]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Each path measured in turn, ``call(n)`` counting on from one path to the next (so joins
    of different paths never repeat a team and shopper)."""
    results, n = [], 0
    for name, call in paths:
        result, n = await _measure(name, call, args.requests, args.rounds, args.batch, n)
        results.append(result)
    return results


def _round_sizes(requests: int, batch: int) -> tuple[int, int]:
    """The requests of a round (whole batches, at least one) and of the warm-up before the
    rounds (a tenth of a round, at least one batch)."""
    per_round = max(batch, requests // batch * batch)
    return per_round, max(1, per_round // 10 // batch) * batch


async def _measure(
    name: str, call: Call, requests: int, rounds: int, batch: int, start: int
) -> tuple[dict[str, Any], int]:
    """``rounds`` rounds of ``requests`` requests (``call(n)`` with n counting on from
    ``start``), ``batch`` at once, after a warm-up of a tenth of a round; the CPU of the process
    and of this thread, and the next n."""
    n = start
    per_round, warmup = _round_sizes(requests, batch)
    for _ in range(warmup // batch):
        await asyncio.gather(*(call(n + k) for k in range(batch)))
        n += batch
    process: list[float] = []
    loop_thread: list[float] = []
    server: list[float] = []
    _STATEMENTS.clear()
    for _ in range(rounds):
        backends = postgres_pids(_POSTGRES_DATABASE) if _POSTGRES_DATABASE else []
        g0 = cpu_ticks(backends)
        p0, t0 = time.process_time(), time.thread_time()
        for _ in range(per_round // batch):
            await asyncio.gather(*(call(n + k) for k in range(batch)))
            n += batch
        process.append(1e6 * (time.process_time() - p0) / per_round)
        loop_thread.append(1e6 * (time.thread_time() - t0) / per_round)
        if _POSTGRES_DATABASE:
            server.append(cpu_us_each(g0, cpu_ticks(backends), per_round))
    shown = ", ".join(f"{u:.0f}" for u in process)
    if server:
        shown += f" µs, and PostgreSQL's {', '.join(f'{u:.0f}' for u in server)}"
    print(f"  {name}: {shown} µs a request", flush=True)
    result: dict[str, Any] = {"name": name, "process_us": process, "loop_thread_us": loop_thread}
    if server:
        result["postgres_us"] = server
    if _STATEMENTS:
        measured = rounds * per_round
        result["statements"] = [
            {"sql": sql, "a_request": count / measured, "us_a_request": 1e6 * cpu / measured}
            for sql, (count, cpu) in sorted(_STATEMENTS.items(), key=lambda kv: -kv[1][1])
        ]
    return result, n


# Each raw statement's runs and CPU (``--statements``), by its text's start, for the path being
# measured.
_STATEMENTS: dict[str, list[float]] = {}
# The PostgreSQL database whose backends' CPU is read with each round (``--postgres-cpu``).
_POSTGRES_DATABASE = ""


def _time_statements() -> None:
    """Count each statement the raw path runs and the CPU its thread spent in it (the timing's
    own two clock reads included, about a microsecond)."""
    from pintuan.kit.rawsql import RawTx

    run = RawTx._run

    def timed(self: RawTx, text: str, values: Any, *, many: bool = False) -> Any:
        started = time.thread_time()
        try:
            return run(self, text, values, many=many)
        finally:
            spent = _STATEMENTS.setdefault(text[:STATEMENT_SHOWN], [0, 0.0])
            spent[0] += 1
            spent[1] += time.thread_time() - started

    RawTx._run = timed  # type: ignore[method-assign]


async def _pintuan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from pintuan.app import create_app
    from pintuan.config import get_settings
    from pintuan.kit.heap import settle_heap

    app = create_app(get_settings(), run_worker=False)
    async with app.router.lifespan_context(app):
        settle_heap()

        async def healthz(_: int) -> None:
            await _request(app, "GET", "/healthz", 200)

        paths: list[tuple[str, Call]] = [("GET /healthz", healthz)]
        if args.target == "feed":

            async def feed(_: int) -> None:
                await _request(app, "GET", "/v1/feed?slots=20", 200)

            async def home(_: int) -> None:
                await _request(app, "GET", "/", 200)

            paths += [("GET /v1/feed?slots=20", feed), ("GET /", home)]
        elif args.target == "payments":
            paths += await _confirmations(app, json.loads(Path(args.seed).read_text()))
        else:
            seeded = json.loads(Path(args.seed).read_text())
            teams = await _start_teams(app, seeded)
            await _use_tokens(app, seeded["shoppers"])
            paths += [
                ("POST join, Idempotency-Key", _joins(app, teams, seeded, keyed=True)),
                ("POST join, no key", _joins(app, teams, seeded, keyed=False)),
            ]
        return await _measure_all(paths, args)


async def _start_teams(app: Any, seeded: dict[str, Any]) -> list[str]:
    """Leader i starts a team on spread deal i mod D, as ``bench.load`` does over HTTP."""
    deals, teams = seeded["spread_deals"], []
    for n, leader in enumerate(seeded["leaders"]):
        body = await _request(
            app,
            "POST",
            f"/v1/deals/{deals[n % len(deals)]}/teams",
            201,
            [(b"authorization", f"Bearer {leader}".encode())],
        )
        teams.append(json.loads(body)["team"]["id"])
    return teams


async def _use_tokens(app: Any, tokens: list[str], batch: int = 64) -> None:
    """Every shopper's token used once, so that its last use is not due to be written again
    while the joins are measured: in ``bench.load`` each of the shoppers joins every few seconds,
    and a token's last use is written at most once a minute."""
    for start in range(0, len(tokens), batch):
        await asyncio.gather(
            *(
                _request(app, "GET", "/v1/me", 200, [(b"authorization", f"Bearer {t}".encode())])
                for t in tokens[start : start + batch]
            )
        )


def _joins(app: Any, teams: list[str], seeded: dict[str, Any], *, keyed: bool = False) -> Call:
    """Join n: team n mod T, by a shopper who holds no seat in it yet (a team's laps take
    shoppers 7,919 apart, a prime, so none repeats while the team has room), with the shopper's
    token as the bearer (Pintuan's, or the reference's user id) and with a key of its own when
    ``keyed``."""
    shoppers, size = seeded["shoppers"], int(seeded["team_size"])

    async def join(n: int) -> None:
        team, lap = n % len(teams), n // len(teams)
        if lap >= size - 1:
            raise Failed("every team is full: ask for fewer requests")
        shopper = shoppers[(team + lap * 7919) % len(shoppers)]
        headers = [(b"authorization", f"Bearer {shopper}".encode()), (b"content-length", b"0")]
        if keyed:
            headers.append((b"idempotency-key", f"cpu-{n:09d}".encode()))
        await _request(app, "POST", f"/v1/teams/{teams[team]}/seats", 201, headers)

    return join


async def _confirmations(app: Any, seeded: dict[str, Any]) -> list[tuple[str, Call]]:
    """The first ``PREDELIVERED`` notifications delivered once (not measured), then two paths:
    those again, round-robin (duplicates, the webhook path with nothing applied), and each other
    payment's notification once, in seeding order. Every notification is signed here, before any
    clock (the signature holds for five minutes, longer than a run takes)."""
    signed = [_webhook(row["body"].encode()) for row in seeded["payments"]]
    first, rest = signed[:PREDELIVERED], iter(signed[PREDELIVERED:])
    for start in range(0, len(first), 16):
        await asyncio.gather(
            *(_deliver(app, *w, duplicate=False) for w in first[start : start + 16])
        )

    async def duplicate(n: int) -> None:
        await _deliver(app, *first[n % len(first)], duplicate=True)

    async def confirm(_: int) -> None:
        webhook = next(rest, None)
        if webhook is None:
            raise Failed("every seeded notification was delivered: ask for fewer requests")
        await _deliver(app, *webhook, duplicate=False)

    return [(DUPLICATE, duplicate), (CONFIRMATION, confirm)]


def _webhook(body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    from pintuan.payments.providers.sandbox import SIGNATURE_HEADER, sign

    # The parent process chose the secret and handed it down to the server's settings.
    signature = sign(os.environ["PINTUAN_SANDBOX_WEBHOOK_SECRET"], body, int(time.time()))
    headers = [
        (SIGNATURE_HEADER.lower().encode(), signature.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


async def _deliver(
    app: Any, headers: list[tuple[bytes, bytes]], body: bytes, *, duplicate: bool
) -> None:
    answer = await _request(app, "POST", WEBHOOK_PATH, 200, headers, body)
    if json.loads(answer).get("duplicate") is not duplicate:
        raise Failed(f"a notification answered {answer[:300]!r}, expected duplicate={duplicate}")


async def _reference(args: argparse.Namespace) -> list[dict[str, Any]]:
    from bench.reference_app import create_app

    app = create_app(Path(args.db))
    seeded = json.loads(Path(args.seed).read_text())

    async def healthz(_: int) -> None:
        await _request(app, "GET", "/healthz", 200)

    paths = [
        ("reference GET /healthz", healthz),
        ("reference POST join", _joins(app, seeded["spread_teams"], seeded)),
    ]
    return await _measure_all(paths, args)


def _measure_here(args: argparse.Namespace) -> int:
    global _POSTGRES_DATABASE
    _POSTGRES_DATABASE = args.postgres_cpu or ""
    runner = _reference if args.target == "reference" else _pintuan
    if args.statements and runner is _pintuan:
        _time_statements()
    results = asyncio.run(runner(args))
    Path(args.out).write_text(json.dumps({"target": args.target, "results": results}))
    return 0


# ---------------------------------------------------------------------------- the whole run


def _run(command: list[str], env: dict[str, str], folder: Path) -> None:
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
    env.update(
        PINTUAN_DATABASE_URL=database_url,
        PINTUAN_ENV="dev",
        PINTUAN_LOG_LEVEL="WARNING",  # the request log's lines are not what is measured
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        # Known to this harness, which signs the sandbox's notifications with it.
        PINTUAN_SANDBOX_WEBHOOK_SECRET=SANDBOX_SECRET,
    )
    return env


def _prepare_and_measure(target: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    python, pintuan = sys.executable, str(Path(sys.executable).parent / "pintuan")
    database = folder / f"{target}.db"
    postgres = os.environ.get("PINTUAN_BENCH_POSTGRES_URL", "") if target in ON_POSTGRES else ""
    env = _env(postgres or f"sqlite:///{database}")
    seed = folder / f"{target}-seed.json"
    sizes = join_sizes(args.shoppers, args.teams)
    started = time.monotonic()
    if postgres:
        _run([python, "-m", "bench.seed_joins", "reset"], env, folder)  # emptied first
    if target == "reference":
        seeding = [python, "-m", "bench.reference_app", "seed", f"--db={database}", f"--out={seed}"]
        _run([*seeding, *sizes], env, folder)
    else:
        _run([pintuan, "migrate"], env, folder)
        if target == "feed":
            _run([python, "-m", "bench.seed_feed", "seed", f"--offers={args.offers}"], env, folder)
        elif target in ("payments", PAYMENTS_POSTGRES):
            seeding = [python, "-m", "bench.seed_payments", "seed", f"--out={seed}"]
            _run([*seeding, *_payment_sizes(args)], env, folder)
        else:
            _run([python, "-m", "bench.seed_joins", "seed", *sizes, f"--out={seed}"], env, folder)
    print(f"{target}: seeded in {time.monotonic() - started:.0f} s; measuring", flush=True)
    out = folder / f"{target}-cpu.json"
    measure = [
        python, "-m", "bench.cpu", "measure",
        f"--target={ON_POSTGRES.get(target, target)}", f"--db={database}",
        f"--seed={seed}", f"--out={out}", f"--requests={args.requests}",
        f"--rounds={args.rounds}", f"--batch={args.batch}",
        *(["--statements"] if args.statements else []),
        *([f"--postgres-cpu={database_name(postgres)}"] if postgres else []),
    ]  # fmt: skip
    _run(measure, env, folder)
    found: dict[str, Any] = json.loads(out.read_text())
    found["target"] = target
    return found


def _payment_sizes(args: argparse.Namespace) -> list[str]:
    """Enough payments for the pre-delivered ones and every confirmation measured (warm-up and
    rounds), in whole teams."""
    per_round, warmup = _round_sizes(args.requests, args.batch)
    needed = PREDELIVERED + warmup + args.rounds * per_round
    payments = -(-needed // PAYMENT_TEAM_SIZE) * PAYMENT_TEAM_SIZE
    sizes = {"payments": payments, "team-size": PAYMENT_TEAM_SIZE, "deals": PAYMENT_DEALS}
    return [f"--{name}={value}" for name, value in sizes.items()]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _table(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row a path: the median µs a request, and its ratios to ``/healthz`` in the same
    process and (a join) to the reference's join."""
    reference_join = next(
        (
            _median(r["process_us"])
            for f in found
            if f["target"] == "reference"
            for r in f["results"]
            if r["name"] == "reference POST join"
        ),
        None,
    )
    rows = []
    for f in found:
        healthz = _median(f["results"][0]["process_us"])
        # A confirmation against the duplicate of the same process (and database).
        duplicate = next((_total(r) for r in f["results"] if r["name"] == DUPLICATE), None)
        for r in f["results"]:
            us = _median(r["process_us"])
            server = _median(r["postgres_us"]) if "postgres_us" in r else None
            row = {
                "process": f["target"],
                "path": r["name"],
                "us_a_request": round(us, 1),
                "loop_thread_us": round(_median(r["loop_thread_us"]), 1),
                "postgres_us": None if server is None else round(server, 1),
                "x_healthz": round(us / healthz, 2),
                "reference_over_this": None,
                "duplicate_over_this": None,
            }
            if reference_join and f["target"] == "joins" and "join" in r["name"]:
                row["reference_over_this"] = round(reference_join / us, 2)
            if r["name"] == CONFIRMATION and duplicate is not None:
                row["duplicate_over_this"] = round(duplicate / _total(r), 2)
            rows.append(row)
    return rows


def _total(result: dict[str, Any]) -> float:
    """A path's CPU a request: the process's, and PostgreSQL's backends' when measured."""
    total = _median(result["process_us"])
    if "postgres_us" in result:
        total += _median(result["postgres_us"])
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    measure = commands.add_parser("measure", help="(internal) measure in this process")
    measure.add_argument(
        "--target", choices=["feed", "joins", "reference", "payments"], required=True
    )
    measure.add_argument("--db", required=True)
    measure.add_argument("--seed", required=True)
    measure.add_argument("--out", required=True)
    measure.add_argument("--postgres-cpu", help="read this PostgreSQL database's backends' CPU")
    for p in (parser, measure):
        p.add_argument("--requests", type=int, default=3000, help="requests a round")
        p.add_argument("--rounds", type=int, default=3, help="rounds a path (the median is kept)")
        p.add_argument("--batch", type=int, default=16, help="requests at once")
        p.add_argument(
            "--statements",
            action="store_true",
            help="also show each path's raw statements: runs and CPU a request (costs ~1 µs each)",
        )
    parser.add_argument("--only", choices=["feed", "joins", "payments"], help="only these paths")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also the joins' and payments' paths on PostgreSQL (PINTUAN_BENCH_POSTGRES_URL, "
        "emptied first)",
    )
    parser.add_argument("--offers", type=int, default=FEED_OFFERS, help="live offers (feed)")
    parser.add_argument("--teams", type=int, default=TEAMS, help="teams joined (joins)")
    parser.add_argument("--shoppers", type=int, default=SHOPPERS, help="shoppers (joins)")
    parser.add_argument("--keep", type=Path, help="keep the databases here (default: removed)")
    parser.add_argument("--json", type=Path, help="where to write the figures")
    args = parser.parse_args(argv)
    if args.command == "measure":
        return _measure_here(args)
    if args.postgres and not os.environ.get("PINTUAN_BENCH_POSTGRES_URL"):
        parser.error("--postgres needs PINTUAN_BENCH_POSTGRES_URL (a database it may empty)")
    targets = {"feed": ["feed"], "joins": ["joins", "reference"], "payments": ["payments"]}.get(
        args.only, ["feed", "joins", "reference", "payments"]
    )
    if args.postgres:
        targets += [on for on, target in ON_POSTGRES.items() if target in targets]
    with tempfile.TemporaryDirectory(prefix="pintuan-cpu-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        found = [_prepare_and_measure(target, folder, args) for target in targets]
    rows = _table(found)
    print(
        f"\nCPU of the whole process a request, without HTTP (median of {args.rounds} rounds of "
        f"{args.requests}, {args.batch} at once); 'pg µs' is PostgreSQL's backends' (when on "
        "PostgreSQL); 'x healthz' divides by /healthz in the same process, 'base/this' is the "
        "reference's join (for a join) or the duplicate delivery (for a confirmation, PostgreSQL's "
        "CPU included) over this one (1.0: as cheap)\n"
    )
    print(
        f"{'process':17} {'path':32} {'µs':>7} {'loop µs':>8} {'pg µs':>7} {'x healthz':>9} "
        f"{'base/this':>9}"
    )
    for row in rows:
        ratio = row["reference_over_this"] or row["duplicate_over_this"]
        server = row["postgres_us"]
        print(
            f"{row['process']:17} {row['path']:32} {row['us_a_request']:7.1f} "
            f"{row['loop_thread_us']:8.1f} {'' if server is None else f'{server:.1f}':>7} "
            f"{row['x_healthz']:9.2f} {'' if ratio is None else f'{ratio:.2f}':>9}"
        )
    if args.statements:
        _print_statements(found)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "raw": found}, indent=2))
    return 0


def _print_statements(found: list[dict[str, Any]], shown: int = 15) -> None:
    for f in found:
        for r in f["results"]:
            statements = r.get("statements", [])
            if not statements:
                continue
            total = sum(st["us_a_request"] for st in statements)
            print(f"\n{f['target']} {r['name']}: raw statements, {total:.0f} µs a request")
            for st in statements[:shown]:
                print(f"  {st['a_request']:5.2f} x {st['us_a_request']:6.1f} µs  {st['sql']}")


if __name__ == "__main__":
    sys.exit(main())
