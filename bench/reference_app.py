"""The bare reference for the join benchmark: DESIGN.md's four statements and nothing else.

A minimal FastAPI app on the stdlib ``sqlite3`` driver, served with uvicorn, uvloop and
httptools (``pintuan serve`` with ``PINTUAN_EVENT_LOOP=uvloop``). One connection in WAL mode is
used synchronously on the event loop; ``POST /v1/teams/{team_id}/seats`` runs, in one
``BEGIN IMMEDIATE`` transaction:

1. take stock (the deal found from the team by a subquery, as Pintuan's join does);
2. take a place in the team;
3. count the shopper against the deal's per-user limit (an upsert);
4. insert the seat (unique on team and shopper).

No idempotency keys, no outbox event, no token lookup (the bearer token *is* the user id), no
logging, no ORM. Any "0 rows changed" rolls back and answers 409 with the refusal's code.

    python -m bench.reference_app seed --db ref.db --out seed.json [--teams 1000 ...]
    python -m bench.reference_app serve --db ref.db --port 8100

``seed`` builds the same shape as ``bench/seed_joins.py`` plus the teams ``bench.load`` starts
on Pintuan: ``--spread-deals`` deals sharing ``--teams`` forming teams round-robin, one hot deal
with another ``--teams`` teams, each team holding its leader's seat, and ``--shoppers`` user ids.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

SCHEMA = """
CREATE TABLE deal (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    stock INTEGER NOT NULL,
    committed INTEGER NOT NULL,
    per_user_limit INTEGER NOT NULL,
    group_price INTEGER NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE team (
    id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    status TEXT NOT NULL,
    team_size INTEGER NOT NULL,
    taken INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE counter (
    deal_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (deal_id, user_id)
);
CREATE TABLE seat (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    price INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (team_id, user_id)
);
"""

TAKE_STOCK = """
UPDATE deal SET committed = committed + 1
WHERE id = (SELECT deal_id FROM team WHERE id = ?) AND status = 'live' AND committed < stock
RETURNING id, per_user_limit, group_price, currency
"""
TAKE_PLACE = """
UPDATE team SET taken = taken + 1
WHERE id = ? AND status = 'forming' AND taken < team_size AND expires_at > ?
RETURNING id
"""
COUNT_SHOPPER = """
INSERT INTO counter (deal_id, user_id, count) VALUES (?, ?, 1)
ON CONFLICT (deal_id, user_id) DO UPDATE SET count = count + 1 WHERE count < ?
RETURNING count
"""
INSERT_SEAT = """
INSERT INTO seat (id, team_id, deal_id, user_id, price, created_at) VALUES (?, ?, ?, ?, ?, ?)
"""

STOCK = 100_000_000
GROUP_PRICE = 1_500


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: the driver opens no transactions of its own; BEGIN is ours.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def create_app(path: Path) -> FastAPI:
    conn = connect(path)
    app = FastAPI()

    def refuse(code: str) -> JSONResponse:
        conn.execute("ROLLBACK")
        return JSONResponse({"code": code}, status_code=409)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/teams/{team_id}/seats")
    async def join(
        team_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        scheme, _, user_id = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not user_id:
            return JSONResponse({"code": "unauthenticated"}, status_code=401)
        now = _now()
        conn.execute("BEGIN IMMEDIATE")
        try:
            deal = conn.execute(TAKE_STOCK, (team_id,)).fetchone()
            if deal is None:
                return refuse("sold_out")
            deal_id, limit, price, currency = deal
            if conn.execute(TAKE_PLACE, (team_id, now)).fetchone() is None:
                return refuse("team_full")
            if conn.execute(COUNT_SHOPPER, (deal_id, user_id, limit)).fetchone() is None:
                return refuse("limit_reached")
            seat_id = "seat_" + secrets.token_hex(13)
            try:
                conn.execute(INSERT_SEAT, (seat_id, team_id, deal_id, user_id, price, now))
            except sqlite3.IntegrityError:
                return refuse("already_member")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        seat = {
            "id": seat_id,
            "team_id": team_id,
            "deal_id": deal_id,
            "status": "held",
            "price": {"amount": price, "currency": currency},
            "created_at": now,
        }
        return JSONResponse({"seat": seat}, status_code=201)

    return app


def seed(
    path: Path, shoppers: int, team_count: int, spread_deals: int, team_size: int
) -> dict[str, Any]:
    conn = connect(path)
    conn.executescript(SCHEMA)
    expires_at = (datetime.now(UTC) + timedelta(days=7)).isoformat(timespec="microseconds")
    spread = [f"deal_{n:026d}" for n in range(spread_deals)]
    hot = "deal_hot_" + "0" * 22
    leaders = [f"usr_leader_{n:020d}" for n in range(team_count)]
    spread_teams = [f"team_spread_{n:019d}" for n in range(team_count)]
    hot_teams = [f"team_hot_{n:022d}" for n in range(team_count)]
    rows: list[tuple[str, str, str]] = [
        *((team, spread[n % spread_deals], leaders[n]) for n, team in enumerate(spread_teams)),
        *((team, hot, leaders[n]) for n, team in enumerate(hot_teams)),
    ]
    now = _now()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO deal VALUES (?, 'live', ?, ?, ?, ?, 'USD')",
        [(deal, STOCK, 0, team_count, GROUP_PRICE) for deal in [*spread, hot]],
    )
    # Each team starts as Pintuan's do: one unit of stock, one place and one count taken
    # by its leader, whose seat is in it.
    conn.executemany(
        "INSERT INTO team VALUES (?, ?, 'forming', ?, 1, ?)",
        [(team, deal, team_size, expires_at) for team, deal, _ in rows],
    )
    conn.executemany(
        "UPDATE deal SET committed = committed + 1 WHERE id = ?", [(d,) for _, d, _ in rows]
    )
    conn.executemany(
        "INSERT INTO counter VALUES (?, ?, 1)", [(deal, user) for _, deal, user in rows]
    )
    conn.executemany(
        "INSERT INTO seat VALUES (?, ?, ?, ?, ?, ?)",
        [
            (f"seat_{n:026d}", team, deal, user, GROUP_PRICE, now)
            for n, (team, deal, user) in enumerate(rows)
        ],
    )
    conn.execute("COMMIT")
    conn.close()
    return {
        "team_size": team_size,
        "teams": team_count,
        "spread_teams": spread_teams,
        "hot_teams": hot_teams,
        "shoppers": [f"usr_{n:026d}" for n in range(shoppers)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="create the schema and the deals and teams")
    seeding.add_argument("--db", type=Path, required=True)
    seeding.add_argument("--out", type=Path, required=True)
    seeding.add_argument("--shoppers", type=int, default=20_000)
    seeding.add_argument("--teams", type=int, default=1_000, help="teams per scenario")
    seeding.add_argument("--spread-deals", type=int, default=100)
    seeding.add_argument("--team-size", type=int, default=100)
    serving = commands.add_parser("serve", help="serve the join endpoint")
    serving.add_argument("--db", type=Path, required=True)
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    if args.command == "seed":
        seeded = seed(args.db, args.shoppers, args.teams, args.spread_deals, args.team_size)
        args.out.write_text(json.dumps(seeded))
        return 0
    uvicorn.run(
        create_app(args.db),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
