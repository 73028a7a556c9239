"""Many shoppers join at once on two API processes while the replica they read lists from is
paused: the lists answer from the stale replica the whole time, yet every join's conditional
writes read the primary, so the teams, the stock and the limits hold (DESIGN.md's invariants)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.audit.service import audit_database
from pintuan.deals.models import Deal
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
from tests.factories import create_deal, create_merchant
from tests.replica.conftest import SAMPLE_SECONDS, Replication, wait_for

pytestmark = pytest.mark.postgres

SERVERS = 2
TEAMS = 10
TEAM_SIZE = 4
STOCK = 30  # the leaders take 10 units; 20 are left for 30 free places
JOINERS = 120
READS = 80


@pytest.fixture
def cluster(
    replication: Replication,
    replicated_services: Services,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    with running_cluster(
        replication.primary_url,
        SERVERS,
        tmp_path_factory.mktemp("replica-servers"),
        database_replica_url=replication.replica_url,
        replica_sample_seconds=SAMPLE_SECONDS,
        # Long enough that the paused replica keeps the lists for the whole race.
        replica_max_lag_seconds=120,
        read_cache_seconds=0,
    ) as running:
        yield running


def _reads_go_to_the_replica(cluster: Cluster) -> bool:
    replies = cluster.fire([Call("GET", "/readyz") for _ in cluster.servers])
    return all(r.status == 200 and r.body["replica"]["reads"] == "replica" for r in replies)


def test_joins_racing_while_lists_read_a_paused_replica_keep_every_invariant(
    replication: Replication, replicated_services: Services, cluster: Cluster
) -> None:
    services = replicated_services
    deal = create_deal(services.db, create_merchant(services.db), team_size=TEAM_SIZE, stock=STOCK)
    leaders = create_shoppers(services, TEAMS)
    joiners = create_shoppers(services, JOINERS)
    replication.catch_up()
    wait_for(lambda: _reads_go_to_the_replica(cluster), "both servers read lists from the replica")
    replication.pause()

    # Teams started after the pause exist only on the primary: a join that read the replica
    # would not find its team.
    started = cluster.fire([Call("POST", f"/v1/deals/{deal.id}/teams", a.token) for a in leaders])
    assert_no_server_errors(cluster, started)
    assert [r.status for r in started] == [201] * TEAMS, started
    team_ids = [r.body["team"]["id"] for r in started]
    calls = []
    for i, joiner in enumerate(joiners):
        calls.append(Call("POST", f"/v1/teams/{team_ids[i % TEAMS]}/seats", joiner.token))
        if i < READS:
            calls.append(Call("GET", "/v1/deals?limit=5"))
    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    joins = Counter(r.outcome for r in replies if r.call.method == "POST")
    listed = [r.body["data"] for r in replies if r.call.method == "GET"]
    # the lists were the paused replica's all along: no unit of the deal taken
    assert len(listed) == READS
    assert all([d["committed"] for d in page if d["id"] == deal.id] == [0] for page in listed)
    # the joins were the primary's: exactly the stock left was sold, never a place too many
    assert joins["201"] == STOCK - TEAMS, joins
    assert set(joins) <= {"201", "409 sold_out", "409 team_full"}, joins

    replication.catch_up()
    Worker(services).run_until_idle()

    def counts(session: Session) -> tuple[int | None, list[tuple[int, int]], int]:
        committed = session.scalar(select(Deal.committed).where(Deal.id == deal.id))
        teams = [
            (t.taken, t.team_size) for t in session.execute(select(Team.taken, Team.team_size))
        ]
        seats = len(session.scalars(select(Seat.id)).all())
        return committed, teams, seats

    committed, teams, seats = services.db.run_sync(counts)
    assert committed == STOCK
    assert all(taken <= size for taken, size in teams)
    assert seats == STOCK
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
