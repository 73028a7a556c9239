"""The bare reference for the join benchmark on PostgreSQL: a token lookup and DESIGN.md's four
statements, as a plain psycopg application would write them.

A minimal FastAPI app with an asynchronous psycopg 3 connection pool (``psycopg_pool``), served
with uvicorn, uvloop and httptools (``pintuan serve`` with ``PINTUAN_EVENT_LOOP=uvloop``).
``POST /v1/teams/{team_id}/seats`` makes one round trip per statement:

0. look the bearer token up (its SHA-256, as Pintuan keeps tokens), outside the transaction;
1. take stock (the deal found from the team by a subquery, as Pintuan's join does);
2. take a place in the team;
3. count the shopper against the deal's per-user limit (an upsert);
4. insert the seat (unique on team and shopper);

steps 1 to 4 in one transaction (``BEGIN`` and ``COMMIT`` are round trips of their own). Its
tables live in a schema of their own, ``bare_reference``, so that it shares a database with
Pintuan's benchmark without touching Pintuan's tables. No idempotency keys, no outbox event, no
logging, no ORM; any "0 rows changed" rolls back and answers 409 with the refusal's code.

    python -m bench.reference_pg seed --url postgresql://... --out seed.json [--teams 1000 ...]
    python -m bench.reference_pg serve --url postgresql://... --port 8100 [--pool-size 10]

``seed`` builds the shape of ``bench/reference_app.py`` (``--spread-deals`` deals sharing
``--teams`` forming teams, one hot deal with another ``--teams``, each team holding its
leader's seat) and ``--shoppers`` shoppers with a bearer token each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

SCHEMA_NAME = "bare_reference"
SCHEMA = f"""
DROP SCHEMA IF EXISTS {SCHEMA_NAME} CASCADE;
CREATE SCHEMA {SCHEMA_NAME};
SET search_path = {SCHEMA_NAME};
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
    expires_at TIMESTAMPTZ NOT NULL
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
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, user_id)
);
CREATE TABLE bearer (
    digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
"""

USER_OF_BEARER = "SELECT user_id FROM bearer WHERE digest = %s"
TAKE_STOCK = """
UPDATE deal SET committed = committed + 1
WHERE id = (SELECT deal_id FROM team WHERE id = %s) AND status = 'live' AND committed < stock
RETURNING id, per_user_limit, group_price, currency
"""
TAKE_PLACE = """
UPDATE team SET taken = taken + 1
WHERE id = %s AND status = 'forming' AND taken < team_size AND expires_at > %s
RETURNING id
"""
COUNT_SHOPPER = """
INSERT INTO counter (deal_id, user_id, count) VALUES (%s, %s, 1)
ON CONFLICT (deal_id, user_id) DO UPDATE SET count = counter.count + 1
WHERE counter.count < %s
RETURNING count
"""
INSERT_SEAT = """
INSERT INTO seat (id, team_id, deal_id, user_id, price, created_at) VALUES (%s, %s, %s, %s, %s, %s)
"""

STOCK = 100_000_000
GROUP_PRICE = 1_500


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _conninfo(url: str) -> str:
    # SQLAlchemy's spelling (postgresql+psycopg://) is accepted, as Pintuan's benchmark passes it.
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_app(url: str, pool_size: int) -> FastAPI:
    pool = AsyncConnectionPool(
        _conninfo(url),
        min_size=pool_size,
        max_size=pool_size,
        kwargs={"autocommit": True, "options": f"-c search_path={SCHEMA_NAME}"},
        open=False,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/teams/{team_id}/seats")
    async def join(
        team_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return JSONResponse({"code": "unauthenticated"}, status_code=401)
        now = datetime.now(UTC)
        seat_id = "seat_" + secrets.token_hex(13)
        async with pool.connection() as conn:
            found = await (await conn.execute(USER_OF_BEARER, (_digest(secret),))).fetchone()
            if found is None:
                return JSONResponse({"code": "invalid_token"}, status_code=401)
            user_id = found[0]
            try:
                async with conn.transaction():
                    cur = await conn.execute(TAKE_STOCK, (team_id,))
                    deal = await cur.fetchone()
                    if deal is None:
                        raise _Refused("sold_out")
                    deal_id, limit, price, currency = deal
                    cur = await conn.execute(TAKE_PLACE, (team_id, now))
                    if await cur.fetchone() is None:
                        raise _Refused("team_full")
                    cur = await conn.execute(COUNT_SHOPPER, (deal_id, user_id, limit))
                    if await cur.fetchone() is None:
                        raise _Refused("limit_reached")
                    try:
                        await conn.execute(
                            INSERT_SEAT, (seat_id, team_id, deal_id, user_id, price, now)
                        )
                    except psycopg.errors.UniqueViolation as exc:
                        raise _Refused("already_member") from exc
            except _Refused as refused:
                return JSONResponse({"code": refused.code}, status_code=409)
        seat = {
            "id": seat_id,
            "team_id": team_id,
            "deal_id": deal_id,
            "status": "held",
            "price": {"amount": price, "currency": currency},
            "created_at": now.isoformat(),
        }
        return JSONResponse({"seat": seat}, status_code=201)

    return app


def seed(
    url: str, shoppers: int, team_count: int, spread_deals: int, team_size: int, rounds: int
) -> dict[str, Any]:
    expires_at = datetime.now(UTC) + timedelta(days=7)
    spread = [f"deal_{n:026d}" for n in range(spread_deals)]
    hot = "deal_hot_" + "0" * 22
    leaders = [f"usr_leader_{n:020d}" for n in range(team_count)]
    teams: dict[str, list[str]] = {}
    rows: list[tuple[str, str, str]] = []
    # One set of spread and hot teams per round of scenarios, so that no run joins a team
    # another has filled with the same shoppers.
    for round_ in range(rounds):
        suffix = "" if round_ == 0 else f"-{round_}"
        spread_teams = [f"team_spread{round_}_{n:018d}" for n in range(team_count)]
        hot_teams = [f"team_hot{round_}_{n:021d}" for n in range(team_count)]
        teams["spread" + suffix], teams["hot" + suffix] = spread_teams, hot_teams
        rows += [
            (team, spread[n % spread_deals], leaders[n]) for n, team in enumerate(spread_teams)
        ]
        rows += [(team, hot, leaders[n]) for n, team in enumerate(hot_teams)]
    tokens = [secrets.token_urlsafe(24) for _ in range(shoppers)]
    now = datetime.now(UTC)
    with psycopg.connect(_conninfo(url)) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
        # Each team starts as Pintuan's do: one unit of stock, one place and one count taken
        # by its leader, whose seat is in it.
        taken = Counter(deal for _, deal, _ in rows)
        with cur.copy("COPY deal FROM STDIN") as copy:
            for deal in [*spread, hot]:
                copy.write_row((deal, "live", STOCK, taken[deal], team_count, GROUP_PRICE, "USD"))
        with cur.copy("COPY team FROM STDIN") as copy:
            for team, deal, _ in rows:
                copy.write_row((team, deal, "forming", team_size, 1, expires_at))
        counts = Counter((deal, user) for _, deal, user in rows)
        with cur.copy("COPY counter FROM STDIN") as copy:
            for (deal, user), count in counts.items():
                copy.write_row((deal, user, count))
        with cur.copy("COPY seat FROM STDIN") as copy:
            for n, (team, deal, user) in enumerate(rows):
                copy.write_row((f"seat_{n:026d}", team, deal, user, GROUP_PRICE, now))
        with cur.copy("COPY bearer FROM STDIN") as copy:
            for n, token in enumerate(tokens):
                copy.write_row((_digest(token), f"usr_{n:026d}"))
        cur.execute("ANALYZE")
    return {
        "team_size": team_size,
        "teams": team_count,
        "teams_by_kind": teams,
        "shoppers": tokens,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="create the schema and the deals and teams")
    seeding.add_argument("--url", required=True)
    seeding.add_argument("--out", required=True)
    seeding.add_argument("--shoppers", type=int, default=20_000)
    seeding.add_argument("--teams", type=int, default=1_000, help="teams per scenario")
    seeding.add_argument("--spread-deals", type=int, default=100)
    seeding.add_argument("--team-size", type=int, default=100)
    seeding.add_argument("--rounds", type=int, default=1, help="sets of teams of each kind")
    serving = commands.add_parser("serve", help="serve the join endpoint")
    serving.add_argument("--url", required=True)
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8100)
    serving.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args(argv)
    if args.command == "seed":
        seeded = seed(
            args.url, args.shoppers, args.teams, args.spread_deals, args.team_size, args.rounds
        )
        with open(args.out, "w") as out:
            json.dump(seeded, out)
        return 0
    uvicorn.run(
        create_app(args.url, args.pool_size),
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
