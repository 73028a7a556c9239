"""Teams that stay true under real concurrency: a leader leaving while others join, the last
seat taken at the instant the leader's hold lapses, and solo purchases racing for the last units,
on three API processes over one database. After each race the worker runs until idle, every
team is checked (a forming team has exactly one leader, one of its live members; a closed one
has none) and the audit must find no breach of DESIGN.md's invariants.

The servers and this process share one application clock, as in ``test_races``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.config import Settings
from pintuan.domain.teams import LIVE_SEATS
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.teams.models import DealShopperCount, Seat, Team
from pintuan.worker import Worker
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    create_shoppers,
    outcomes,
    running_cluster,
)
from tests.concurrency.test_races import (
    CLOCK_OFFSET,
    FIRST_LEAD,
    HOLD,
    JITTERS,
    SERVERS,
    expect,
    instant,
    join_team,
    next_lead,
    pay,
    settle_and_audit,
    start_team,
    sweep,
)
from tests.conftest import make_settings
from tests.factories import create_deal, create_merchant

BATCHES = 3
MAX_BATCHES = 8
LIVE = tuple(status.value for status in LIVE_SEATS)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """This process on the servers' clock and with their seat hold."""
    return make_settings(
        database_url,
        seat_hold_minutes=int(HOLD.total_seconds() // 60),
        clock_offset_seconds=int(CLOCK_OFFSET.total_seconds()),
    )


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        database_url,
        SERVERS,
        tmp_path_factory.mktemp("servers"),
        seat_hold_minutes=int(HOLD.total_seconds() // 60),
        clock_offset_seconds=int(CLOCK_OFFSET.total_seconds()),
    ) as running:
        yield running


def team_states(services: Services, team_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each team's status, its counters, its leader, and its live seats in join order."""

    def read(session: Any) -> dict[str, dict[str, Any]]:
        teams = session.scalars(select(Team).where(Team.id.in_(team_ids))).all()
        seats = session.scalars(
            select(Seat)
            .where(Seat.team_id.in_(team_ids), Seat.status.in_(LIVE))
            .order_by(Seat.created_at, Seat.id)
        ).all()
        return {
            t.id: {
                "status": t.status,
                "taken": t.taken,
                "size": t.team_size,
                "leader_id": t.leader_id,
                "live": [(s.user_id, bool(s.is_leader)) for s in seats if s.team_id == t.id],
            }
            for t in teams
        }

    return services.db.run_sync(read)


def assert_teams_true(services: Services, team_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A forming team has members and exactly one leader among them, the one the team names; a
    team left empty has closed; no team holds more live seats than its size."""
    states = team_states(services, team_ids)
    assert sorted(states) == sorted(team_ids)
    for team_id, team in states.items():
        live = team["live"]
        assert team["taken"] == len(live) <= team["size"], (team_id, team)
        if team["status"] == "forming":
            leaders = [user for user, leads in live if leads]
            assert live, (team_id, team)
            assert leaders == [team["leader_id"]], (team_id, team)
        else:
            assert team["status"] == "failed", (team_id, team)
            assert live == [], (team_id, team)
    return states


# ---------------------------------------------------------------------------- leaders leaving


def test_leaders_leaving_while_others_join_leave_every_team_led_or_closed(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=4, stock=1000)
    leaders = create_shoppers(services, 10)
    seconds = create_shoppers(services, 5)
    joiners = create_shoppers(services, 60)
    started = [start_team(client, leader, deal.id) for leader in leaders]
    # Half the teams already have a second member, who should take over; the others have
    # only their leader, so they close unless a joiner gets in first.
    for second, team in zip(seconds, started[:5], strict=True):
        join_team(client, second, team["team"]["id"])
    calls = []
    for i, (leader, team) in enumerate(zip(leaders, started, strict=True)):
        calls.append(Call("POST", f"/v1/seats/{team['seat']['id']}/cancel", leader.token))
        team_id = team["team"]["id"]
        calls += [Call("POST", f"/v1/teams/{team_id}/seats", j.token) for j in joiners[6 * i :][:6]]
    random.Random(13).shuffle(calls)

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    cancels = [r for r in replies if r.call.path.endswith("/cancel")]
    assert [r.status for r in cancels] == [200] * 10, cluster.logs()
    joins = outcomes([r for r in replies if not r.call.path.endswith("/cancel")])
    assert set(joins) <= {"201", "409 team_full", "409 team_closed"}, joins
    team_ids = [t["team"]["id"] for t in started]
    states = assert_teams_true(services, team_ids)
    leader_ids = {a.user_id for a in leaders}
    for team in states.values():
        assert not any(user in leader_ids for user, _ in team["live"])
    for second, team in zip(seconds, started[:5], strict=True):
        assert states[team["team"]["id"]]["leader_id"] == second.user_id
    settle_and_audit(services)


def test_the_last_seat_taken_while_the_leaders_hold_lapses_keeps_the_team_true(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    clock.advance(-2 * HOLD)  # the deal has been live since before the first hold began
    deal = create_deal(services.db, merchant, team_size=3, stock=1000)
    clock.advance(2 * HOLD)
    worker = Worker(services)
    team_ids: list[str] = []
    seconds_by_team: dict[str, str] = {}
    per_team: Counter[str] = Counter()
    lead = FIRST_LEAD
    # At least BATCHES, and more (up to MAX_BATCHES) until the races have fallen on both sides:
    # on a machine busy with other work a few batches may all land on one.
    for batch in itertools.count(1):
        if batch > MAX_BATCHES or (batch > BATCHES and set(per_team.values()) == {1, 2}):
            break
        leaders = create_shoppers(services, len(JITTERS))
        seconds = create_shoppers(services, len(JITTERS))
        lasts = create_shoppers(services, 2 * len(JITTERS))
        began = time.monotonic()
        # Leader seats taken one hold length minus `lead` ago lapse `lead` from now.
        clock.offset = CLOCK_OFFSET - HOLD + lead
        started = [start_team(client, leader, deal.id) for leader in leaders]
        clock.offset = CLOCK_OFFSET
        for second, team in zip(seconds, started, strict=True):
            pay(client, second, join_team(client, second, team["team"]["id"])["id"])
            seconds_by_team[team["team"]["id"]] = second.user_id
        # Two shoppers go for each team's last seat at the instant its leader's hold lapses.
        calls, at = [], []
        for i, (team, jitter) in enumerate(zip(started, JITTERS, strict=True)):
            deadline = instant(team["seat"]["hold_expires_at"])
            for racer in lasts[2 * i : 2 * i + 2]:
                calls.append(Call("POST", f"/v1/teams/{team['team']['id']}/seats", racer.token))
                at.append(deadline + jitter)
        lead = next_lead(time.monotonic() - began)
        first = min(instant(t["seat"]["hold_expires_at"]) for t in started)
        sweeping = (first - timedelta(milliseconds=10), max(at) + timedelta(milliseconds=100))

        async def both(
            calls: list[Call] = calls,
            at: list[Any] = at,
            sweeping: tuple[Any, Any] = sweeping,
        ) -> list[Any]:
            replies, ticks = await asyncio.gather(
                cluster.fire_async(calls, at), asyncio.to_thread(sweep, worker, *sweeping)
            )
            assert ticks > 0
            return list(replies)

        replies = asyncio.run(both())
        assert_no_server_errors(cluster, replies)
        assert set(outcomes(replies)) <= {"201", "409 team_full"}, cluster.logs()
        for reply in replies:
            if reply.status == 201:
                per_team[reply.body["seat"]["team_id"]] += 1
        team_ids += [t["team"]["id"] for t in started]

    Worker(services).run_until_idle()

    states = assert_teams_true(services, team_ids)
    for team_id in team_ids:
        team = states[team_id]
        # The leader's seat lapsed whatever the order; the paid second member leads now, and
        # the last seat went to one racer (before the lapse) or to both (after it).
        assert team["status"] == "forming"
        assert team["leader_id"] == seconds_by_team[team_id]
        assert per_team[team_id] in (1, 2)
        assert team["taken"] == 1 + per_team[team_id]
    assert set(per_team.values()) == {1, 2}, "races fell on both sides"
    settle_and_audit(services)


# ---------------------------------------------------------------------------- buying alone


def test_solo_purchases_and_teams_racing_for_30_units_get_exactly_30(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=30)
    racers = create_shoppers(services, 300)
    calls = [
        Call("POST", f"/v1/deals/{deal.id}/{'solo' if i % 2 else 'teams'}", r.token)
        for i, r in enumerate(racers)
    ]

    replies = cluster.fire(calls)

    expect(cluster, replies, {"201": 30, "409 sold_out": 270})
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 30
    solo = services.db.run_sync(
        lambda s: s.scalar(select(func.count()).select_from(Team).where(Team.solo))
    )
    wins = Counter(r.call.path.rsplit("/", 1)[1] for r in replies if r.status == 201)
    assert solo == wins["solo"]
    settle_and_audit(services)


def test_one_shopper_buying_alone_40_times_at_once_gets_exactly_the_limit_of_2(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), per_user_limit=2)
    [shopper] = create_shoppers(services, 1)

    replies = cluster.fire([Call("POST", f"/v1/deals/{deal.id}/solo", shopper.token)] * 40)

    expect(cluster, replies, {"201": 2, "409 limit_reached": 38})
    counted = services.db.run_sync(
        lambda s: s.scalar(
            select(DealShopperCount.count).where(DealShopperCount.user_id == shopper.user_id)
        )
    )
    assert counted == 2
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 2
    settle_and_audit(services)
