"""Seed a Pintuan database for the feed scenarios of ``bench.load``: 10,000 live offers.

Run with the project's Python, the database named by ``PINTUAN_DATABASE_URL`` as everywhere:

    pintuan migrate
    python -m bench.seed_feed seed --offers 10000

Through the services layer, as the API would do it: 20 approved merchants in five countries,
each with live deals spread over the five verticals at varied discounts (a tenth of them with a
place, as cinema and local services have), and ``--teams`` of them with a team one seat from
full, started and joined through the engine's own join, so that the feed has almost full
teams among its candidates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

import pintuan.models  # noqa: F401 - every table mapped, for the keys between them
from bench.seed_joins import add_users
from pintuan.bootstrap import build_services
from pintuan.config import get_settings
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Principal, Role
from pintuan.kit.db import Database
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.merchants import service as merchants
from pintuan.teams import service as teams

MARKETS = (
    ("US", "USD", "America/New_York"),
    ("DE", "EUR", "Europe/Berlin"),
    ("CN", "CNY", "Asia/Shanghai"),
    ("ID", "IDR", "Asia/Jakarta"),
    ("GB", "GBP", "Europe/London"),
)
MERCHANTS = 20
# Seats are held for hours: the benchmark's servers run without the worker that releases them.
HOLD = timedelta(hours=6)
BATCH = 500


def _merchant(db: Database, n: int) -> Principal:
    operator = Principal("usr_bench", Role.OPERATOR, "Bench", "en", "UTC", frozenset())
    country, currency, zone = MARKETS[n % len(MARKETS)]

    def make(session: Session) -> str:
        merchant = merchants.create_merchant(
            session,
            operator,
            merchants.NewMerchant(
                name=f"Feed Shop {n}",
                slug=f"feed-shop-{n}",
                country=country,
                currency=currency,
                time_zone=zone,
            ),
        )
        merchants.change_merchant_status(session, operator, merchant.id, "approve")
        return merchant.id

    merchant_id = db.run_sync(make)
    return Principal("usr_bench", Role.MERCHANT, "Bench", "en", "UTC", frozenset({merchant_id}))


def _deals(db: Database, staff: Principal, first: int, count: int, currency: str) -> list[str]:
    (merchant_id,) = staff.merchant_ids
    verticals = list(Vertical)

    def make(session: Session) -> list[str]:
        now = utc_now()
        ids = []
        for n in range(first, first + count):
            list_price = 1_000 + (n * 37) % 9_000
            draft = deals.DealDraft(
                merchant_id=merchant_id,
                title=f"Offer {n}",
                description="Seeded for the feed benchmark.",
                vertical=verticals[n % len(verticals)],
                list_price=Money(list_price, currency),
                group_price=Money(list_price * (50 + n % 45) // 100, currency),
                stock=1_000_000,
                per_user_limit=5,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(days=1 + n % 14),
                team_size=2 + n % 4,
                team_window_minutes=24 * 60,
            )
            deal = deals.create_deal(session, staff, draft)
            ids.append(deals.change_deal_status(session, staff, deal.id, "publish").id)
            if n % 10 == 0:
                session.execute(
                    update(Deal)
                    .where(Deal.id == deal.id)
                    .values(location_lat=52.5 + (n % 50) / 100, location_lon=13.4)
                )
        return ids

    return db.run_sync(make)


def seed(offers: int, team_count: int) -> None:
    services = build_services(get_settings())
    db = services.db
    shops = [_merchant(db, n) for n in range(MERCHANTS)]
    deal_ids: list[str] = []
    for start in range(0, offers, BATCH):
        n = start // BATCH
        staff = shops[n % MERCHANTS]
        currency = MARKETS[(n % MERCHANTS) % len(MARKETS)][1]
        deal_ids += _deals(db, staff, start, min(BATCH, offers - start), currency)
    password = services.passwords.hash("bench-feed-password")

    def make_users(session: Session) -> list[str]:
        return [u.id for u in add_users(session, password, "feed.bench", "member", team_count * 3)]

    users = db.run_sync(make_users)
    now = utc_now()
    step = len(deal_ids) // max(1, team_count)
    # Only deals with teams of two to four: one seat from full after at most three members.
    sizes = dict(db.run_sync(lambda s: s.query(Deal.id, Deal.team_size).all()))
    for t in range(team_count):
        deal_id = deal_ids[t * step]
        members = users[t * 3 : t * 3 + max(1, sizes[deal_id] - 1)]
        started = db.run_raw_sync(
            lambda tx, leader=members[0], deal=deal_id: teams.start_team(
                tx, leader, deal, now, hold=HOLD
            )
        )
        for member in members[1:]:
            db.run_raw_sync(
                lambda tx, who=member, team=started.team_id: teams.join_team(
                    tx, who, team, now, hold=HOLD
                )
            )
    db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_feed")
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="add the feed's offers to the database")
    seeding.add_argument("--offers", type=int, default=10_000)
    seeding.add_argument("--teams", type=int, default=300)
    args = parser.parse_args(argv)
    seed(args.offers, args.teams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
