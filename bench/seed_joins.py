"""Seed a Pintuan database for the join scenarios of ``bench.load``; print what they need.

Run with the project's Python, the database named by ``PINTUAN_DATABASE_URL`` as everywhere:

    python -m bench.seed_joins reset            # PostgreSQL only: drop and recreate the schema
    pintuan migrate
    python -m bench.seed_joins seed --out seed.json

Everything goes through the services layer, as the API would do it, in a few transactions:

* one approved merchant; ``--spread-deals`` live deals for the *spread* scenario and one live
  *hot* deal;
* ``--teams`` team leaders and ``--shoppers`` shoppers, each with an API token. All users share
  one password hash: nobody logs in with a password during the benchmark.

Every deal has teams of ``--team-size``, stock far above what a run can sell and
``per_user_limit`` equal to ``--teams``, the most seats one shopper can ever hold on a deal of
the benchmark (one per team): neither may refuse a join.

Teams are not started here but by ``bench.load`` through ``POST /v1/deals/{id}/teams`` once
the server is up (leader i starts spread team i on spread deal i mod D, and hot team i on the
hot deal), so that the benchmark depends only on the HTTP API for them. The JSON written to
``--out`` gives the deal ids and the bearer tokens of leaders and shoppers.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

# Every table mapped, as in every pintuan command: a deal's key to the apps table needs it.
import pintuan.models  # noqa: F401
from pintuan.accounts import service as accounts
from pintuan.accounts.models import User
from pintuan.bootstrap import build_services
from pintuan.config import get_settings
from pintuan.deals import service as deals
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Principal, Role
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.merchants import service as merchants

STOCK = 100_000_000
LONGEST_WINDOW_MINUTES = 7 * 24 * 60
LIST_PRICE = 2_000
GROUP_PRICE = 1_500


def reset() -> None:
    """Empty a PostgreSQL database: drop the public schema with everything in it."""
    url = get_settings().database_url
    if not url.startswith("postgresql"):
        raise SystemExit(f"reset is for PostgreSQL only, not {url.split(':', 1)[0]}")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def create_merchant(db: Database, slug: str) -> Principal:
    """One approved merchant; returns a staff principal of it."""
    operator = Principal("usr_bench", Role.OPERATOR, "Bench", "en", "UTC", frozenset())

    def make_merchant(session: Session) -> str:
        merchant = merchants.create_merchant(
            session,
            operator,
            merchants.NewMerchant(
                name="Bench Merchant",
                slug=slug,
                country="US",
                currency="USD",
                time_zone="America/New_York",
            ),
        )
        merchants.change_merchant_status(session, operator, merchant.id, "approve")
        return merchant.id

    merchant_id = db.run_sync(make_merchant)
    return Principal("usr_bench", Role.MERCHANT, "Bench", "en", "UTC", frozenset({merchant_id}))


def create_live_deals(
    db: Database, staff: Principal, titles: Sequence[str], *, team_size: int, per_user_limit: int
) -> list[str]:
    """One live deal per title, with stock and a team window no benchmark run exhausts."""
    (merchant_id,) = staff.merchant_ids

    def make_deals(session: Session) -> list[str]:
        now = utc_now()
        ids = []
        for title in titles:
            draft = deals.DealDraft(
                merchant_id=merchant_id,
                title=title,
                description="Seeded for the benchmark.",
                vertical=Vertical.GOODS,
                list_price=Money(LIST_PRICE, "USD"),
                group_price=Money(GROUP_PRICE, "USD"),
                stock=STOCK,
                per_user_limit=per_user_limit,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(days=7),
                team_size=team_size,
                team_window_minutes=LONGEST_WINDOW_MINUTES,
            )
            deal = deals.create_deal(session, staff, draft)
            ids.append(deals.change_deal_status(session, staff, deal.id, "publish").id)
        return ids

    return db.run_sync(make_deals)


def add_users(
    session: Session, password_hash: str, domain: str, prefix: str, count: int
) -> list[User]:
    """``count`` shoppers added in one batch (``accounts.create_user`` checks the address with a
    query and flushes per user, which made seeding take a minute). All share one password hash:
    nobody logs in with a password during the benchmark."""
    now = utc_now()
    users = [
        User(
            id=new_id("usr"),
            email=accounts.normalize_email(f"{prefix}{n}@{domain}"),
            display_name=f"{prefix.title()} {n}",
            password_hash=password_hash,
            role=Role.SHOPPER.value,
            locale="en",
            time_zone="UTC",
            created_at=now,
        )
        for n in range(count)
    ]
    session.add_all(users)
    session.flush()
    return users


def seed(shoppers: int, team_count: int, spread_deals: int, team_size: int) -> dict[str, Any]:
    settings = get_settings()
    services = build_services(settings)
    db = services.db
    password_hash = services.passwords.hash(secrets.token_urlsafe(24))
    slug = f"bench-{secrets.token_hex(4)}"
    staff = create_merchant(db, slug)
    titles = [f"Bench deal {n}" for n in range(spread_deals)] + ["Bench hot deal"]
    deal_ids = create_live_deals(db, staff, titles, team_size=team_size, per_user_limit=team_count)
    spread_deal_ids, hot_deal_id = deal_ids[:-1], deal_ids[-1]

    def make_users(prefix: str, count: int) -> list[str]:
        """``count`` shoppers with a token each (from ``accounts.issue_api_token`` as any other
        token); returns the tokens."""

        def work(session: Session) -> list[str]:
            users = add_users(session, password_hash, f"{slug}.bench.invalid", prefix, count)
            return [accounts.issue_api_token(session, user.id, "bench").secret for user in users]

        return db.run_sync(work)

    leaders = make_users("leader", team_count)
    shopper_tokens = make_users("shopper", shoppers)
    db.dispose()
    return {
        "database": settings.database_url.split(":", 1)[0],
        "team_size": team_size,
        "teams": team_count,
        "spread_deals": spread_deal_ids,
        "hot_deal": hot_deal_id,
        "leaders": leaders,
        "shoppers": shopper_tokens,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("reset", help="PostgreSQL only: drop and recreate the public schema")
    seeding = commands.add_parser("seed", help="seed deals, teams and shoppers with tokens")
    seeding.add_argument("--shoppers", type=int, default=20_000)
    seeding.add_argument("--teams", type=int, default=1_000, help="teams per scenario")
    seeding.add_argument("--spread-deals", type=int, default=100)
    seeding.add_argument("--team-size", type=int, default=100)
    seeding.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "reset":
        reset()
        return 0
    started = time.monotonic()
    seeded = seed(args.shoppers, args.teams, args.spread_deals, args.team_size)
    args.out.write_text(json.dumps(seeded))
    print(
        f"seeded {args.shoppers} shoppers, {args.spread_deals + 1} deals and "
        f"{2 * args.teams} teams in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
