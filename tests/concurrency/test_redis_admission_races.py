"""Hot-deal admission in Redis under real concurrency: three API processes with Redis in front
of one database, hundreds of joins fired at once at the teams of one deal with little stock,
and a Redis that is killed and started again in the middle of such a burst.

Whatever Redis says or forgets, the database's conditional writes keep the invariants: no deal
commits more than its stock, no team holds more than its size. Afterwards every reservation is
confirmed or given back, the reconciler makes Redis's counters the database's again, and the
audit and the ledger check find nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.audit.ledger import check_ledger
from pintuan.audit.service import audit_database
from pintuan.config import Settings
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import admission
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.concurrency.cluster import (
    Call,
    Cluster,
    Reply,
    assert_no_server_errors,
    create_shoppers,
    outcomes,
    running_cluster,
)
from tests.conftest import make_settings
from tests.factories import Account, create_deal, create_merchant
from tests.redis_support import OwnRedis, own_redis  # noqa: F401 (a fixture)

SERVERS = 3
TEAM_SIZE = 5
TEAMS = 20
STOCK = 40  # 20 leaders, then 20 more seats for 300 buyers
BUYERS = 300
LIVE = ("held", "paid", "confirmed")


@pytest.fixture
def settings(database_url: str, own_redis: OwnRedis) -> Settings:  # noqa: F811
    return make_settings(database_url, redis_url=own_redis.url)


@pytest.fixture
def cluster(
    database_url: str,
    own_redis: OwnRedis,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path, redis_url=own_redis.url) as running:
        yield running


def start_teams(client: TestClient, leaders: Sequence[Account], deal_id: str) -> list[str]:
    teams = []
    for leader in leaders:
        response = client.post(f"/v1/deals/{deal_id}/teams", headers=leader.headers)
        assert response.status_code == 201, response.text
        teams.append(response.json()["team"]["id"])
    return teams


def joins(buyers: Sequence[Account], teams: Sequence[str], seed: int) -> list[Call]:
    pick = random.Random(seed)
    return [Call("POST", f"/v1/teams/{pick.choice(teams)}/seats", b.token) for b in buyers]


def assert_invariants(services: Services, deal_id: str) -> int:
    """No oversell, no overfilled team; returns the deal's live seats."""

    def count(session: Any) -> tuple[int, int, list[int]]:
        live = session.scalar(
            select(func.count())
            .select_from(Seat)
            .where(Seat.deal_id == deal_id, Seat.status.in_(LIVE))
        )
        per_team = session.scalars(
            select(func.count())
            .select_from(Seat)
            .where(Seat.deal_id == deal_id, Seat.status.in_(LIVE))
            .group_by(Seat.team_id)
        ).all()
        taken = session.scalars(select(Team.taken).where(Team.deal_id == deal_id)).all()
        return int(live), max(per_team), [int(t) for t in taken]

    live, fullest, taken = services.db.run_sync(count)
    assert live <= STOCK
    assert fullest <= TEAM_SIZE
    assert max(taken) <= TEAM_SIZE
    assert sum(taken) == live
    return live


def assert_balanced(services: Services) -> None:
    assert services.redis is not None
    found = admission.balance(services.redis, services.db)
    assert (found.pending, found.deals_off, found.teams_off) == (0, {}, {})


def reconcile(services: Services) -> admission.Reconciled:
    assert services.redis is not None
    return admission.reconcile(services.redis, services.db, utc_now())


def settle_and_check(services: Services) -> None:
    Worker(services).run_until_idle()
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    assert services.db.run_sync(check_ledger).breaches == []


def test_300_joins_at_once_on_one_deal_take_exactly_its_stock_and_balance_redis(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=TEAM_SIZE, stock=STOCK)
    reconcile(services)
    leaders = create_shoppers(services, TEAMS)
    teams = start_teams(client, leaders, deal.id)

    replies = cluster.fire(joins(create_shoppers(services, BUYERS), teams, seed=1))

    assert_no_server_errors(cluster, replies)
    seen = outcomes(replies)
    assert seen["201"] == STOCK - TEAMS, seen
    assert set(seen) <= {"201", "409 sold_out", "409 team_full"}, seen
    assert assert_invariants(services, deal.id) == STOCK
    # Every reservation was confirmed or given back, and Redis counts what the database does,
    # before any reconciler ran.
    assert_balanced(services)
    settle_and_check(services)


def test_redis_killed_and_restarted_mid_burst_oversells_nothing_and_is_rebuilt(
    cluster: Cluster,
    services: Services,
    client: TestClient,
    own_redis: OwnRedis,  # noqa: F811
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=TEAM_SIZE, stock=STOCK)
    reconcile(services)
    teams = start_teams(client, create_shoppers(services, TEAMS), deal.id)
    first_wave = joins(create_shoppers(services, BUYERS), teams, seed=2)

    async def burst_with_a_restart() -> tuple[list[Reply], float, float]:
        async def burst() -> float:
            await cluster.fire_async(first_wave[:1])  # connections and servers warm
            replies.extend(await cluster.fire_async(first_wave[1:]))
            return time.monotonic()

        async def restart() -> float:
            await asyncio.sleep(0.1)  # the burst is under way
            await asyncio.to_thread(own_redis.restart)
            return time.monotonic()

        burst_ended, restarted = await asyncio.gather(burst(), restart())
        return replies, burst_ended, restarted

    replies: list[Reply] = []
    replies, burst_ended, restarted = asyncio.run(burst_with_a_restart())

    assert restarted < burst_ended, "Redis came back only after the burst: no restart mid-run"
    assert_no_server_errors(cluster, replies)
    assert set(outcomes(replies)) <= {"201", "409 sold_out", "409 team_full"}
    assert assert_invariants(services, deal.id) == STOCK
    # The restarted Redis holds nothing but the epoch a server may have begun; the reconciler
    # then counts from the database again.
    reconcile(services)
    more = cluster.fire(joins(create_shoppers(services, 100), teams, seed=3))
    assert_no_server_errors(cluster, more)
    assert Counter(r.outcome for r in more)["201"] == 0
    assert assert_invariants(services, deal.id) == STOCK
    reconcile(services)
    assert_balanced(services)
    settle_and_check(services)
