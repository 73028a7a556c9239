"""A flash sale's opening instant under real concurrency: 500 shoppers (some twice) fire at three
API processes on one database within a few milliseconds either side of the opening, for a stock
of 20. Exactly 20 get a unit, each shopper at most one; those before the instant hear
``deal_not_started``, those after the stock ran out ``sold_out``; the audit is clean."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.audit.service import audit_database
from pintuan.deals.models import Deal
from pintuan.domain.teams import LIVE_SEATS
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams.models import Seat
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    create_shoppers,
    running_cluster,
)
from tests.factories import create_deal, create_merchant

SERVERS = 3
SHOPPERS = 500
TWICE = 25  # shoppers who tap twice
STOCK = 20
# The burst straddles the opening: from 30 ms before it to 60 ms after.
SPREAD_MS = (-30, -10, 0, 5, 10, 20, 40, 60)


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def test_500_shoppers_at_a_flash_sales_opening_take_exactly_its_stock_one_each(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    shoppers = create_shoppers(services, SHOPPERS)
    # Far enough ahead for the burst's connections to open first.
    opening = utc_now() + timedelta(seconds=4)
    deal = create_deal(
        services.db,
        create_merchant(services.db),
        team_size=2,
        stock=STOCK,
        starts_at=opening,
        flash_sale=True,
    )
    racers = shoppers + shoppers[:TWICE]
    calls = [Call("POST", f"/v1/deals/{deal.id}/teams", s.token) for s in racers]
    at = [
        opening + timedelta(milliseconds=SPREAD_MS[i % len(SPREAD_MS)]) for i in range(len(calls))
    ]

    replies = asyncio.run(cluster.fire_async(calls, at))

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes["201"] == STOCK, outcomes
    assert set(outcomes) <= {"201", "409 sold_out", "409 deal_not_started", "409 limit_reached"}
    assert outcomes["409 sold_out"] > 0, outcomes  # the stock ran out within the burst
    winners = Counter(r.call.token for r in replies if r.status == 201)
    assert max(winners.values()) == 1
    live = tuple(s.value for s in LIVE_SEATS)
    seats, holders, committed = services.db.run_sync(
        lambda s: (
            s.scalar(select(func.count()).where(Seat.deal_id == deal.id, Seat.status.in_(live))),
            s.scalar(
                select(func.count(func.distinct(Seat.user_id))).where(
                    Seat.deal_id == deal.id, Seat.status.in_(live)
                )
            ),
            s.scalar(select(Deal.committed).where(Deal.id == deal.id)),
        )
    )
    assert (seats, holders, committed) == (STOCK, STOCK, STOCK)
    assert services.db.run_sync(audit_database, write=False) == []
