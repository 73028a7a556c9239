"""Joins and new teams racing a merchant's suspension, on three API processes at once.

Suspension writes every deal row of the merchant, and a join takes its unit of stock with a
conditional write on that same row, so each join either committed before the suspension (and
its team was failed by it) or is refused. Afterwards no seat of the merchant may still be live,
no team still forming, and every payment taken must go back.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.service import audit_database
from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    create_shoppers,
    running_cluster,
)
from tests.factories import create_account, create_deal, create_merchant

SERVERS = 3
TEAMS = 12
JOINERS = 150
STARTERS = 60
SPREAD = timedelta(milliseconds=600)  # the burst is spread over this; the suspension is mid-way


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def test_joins_racing_a_suspension_leave_no_seat_admitted_after_it_and_return_all_money(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=20, stock=1000)
    operator = create_account(services, role=Role.OPERATOR)
    leaders = create_shoppers(services, TEAMS)
    joiners = create_shoppers(services, JOINERS)
    starters = create_shoppers(services, STARTERS)
    latecomers = create_shoppers(services, 2 * TEAMS)
    team_ids = []
    for leader in leaders:  # each team has a paid leader: money the suspension must return
        started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
        team_ids.append(started["team"]["id"])
        payment = client.post(
            f"/v1/seats/{started['seat']['id']}/payments",
            json={"provider": "sandbox"},
            headers=leader.headers,
        ).json()
        paid = client.post(
            f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=leader.headers
        )
        assert paid.json()["status"] == "authorized"

    calls = [
        Call("POST", f"/v1/teams/{team_ids[i % TEAMS]}/seats", j.token)
        for i, j in enumerate(joiners)
    ]
    calls += [Call("POST", f"/v1/deals/{deal.id}/teams", s.token) for s in starters]
    calls.append(Call("POST", f"/v1/merchants/{merchant.id}/suspend", operator.token))
    begin = utc_now() + timedelta(milliseconds=300)
    step = SPREAD / (len(calls) - 1)
    at = [begin + step * i for i in range(len(calls) - 1)]
    at.append(begin + SPREAD / 2)
    replies = asyncio.run(cluster.fire_async(calls, at))
    # How the burst falls around the suspension depends on the machine's load; a last wave,
    # sent once the suspension has answered, is certain to come after it.
    late = [
        Call("POST", f"/v1/teams/{t}/seats", s.token)
        for t, s in zip(team_ids, latecomers[:TEAMS], strict=True)
    ]
    late += [Call("POST", f"/v1/deals/{deal.id}/teams", s.token) for s in latecomers[TEAMS:]]
    after = asyncio.run(cluster.fire_async(late))

    assert_no_server_errors(cluster, replies + after)
    *racing, suspension = replies
    assert suspension.status == 200, suspension.body
    seen = Counter(r.outcome for r in racing)
    assert set(seen) <= {"201", "409 deal_not_live", "409 team_closed"}, seen
    assert seen["201"] > 0, seen  # some got in before the suspension
    refused = Counter(r.outcome for r in after)
    assert set(refused) <= {"409 deal_not_live", "409 team_closed"}, refused

    def state(session: object) -> tuple[Counter[str], Counter[str], int, list[str]]:
        seats = Counter(session.scalars(select(Seat.status).where(Seat.deal_id == deal.id)))  # type: ignore[attr-defined]
        teams = Counter(session.scalars(select(Team.status).where(Team.deal_id == deal.id)))  # type: ignore[attr-defined]
        committed = session.scalar(select(Deal.committed).where(Deal.id == deal.id))  # type: ignore[attr-defined]
        payments = list(session.scalars(select(Payment.status)))  # type: ignore[attr-defined]
        return seats, teams, committed, payments

    seats, teams, committed, _ = services.db.run_sync(state)
    admitted = seen["201"] + TEAMS
    # Every seat admitted before the suspension ended with it; none was admitted after.
    assert seats == Counter({"released": admitted - TEAMS, "refunded": TEAMS}), seats
    assert set(teams) == {"failed"}, teams
    assert committed == 0

    Worker(services).run_until_idle()
    _, _, _, payments = services.db.run_sync(state)
    assert payments == ["voided"] * TEAMS
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
