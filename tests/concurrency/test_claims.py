"""The claim kit under real contention: threads, each on its own pooled connection, claiming
from one backlog at once never hold the same row, and exactly one of many takes a job's lease.

On PostgreSQL the claims run concurrently (``FOR UPDATE SKIP LOCKED``); on SQLite they queue on
the one write lock, and the same statements must still hand each row to one claimer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import func, select, update

from pintuan.kit import claims
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams import tasks as team_tasks
from pintuan.teams.models import Team
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant

T = TypeVar("T")
THREADS = 8
LEASE = timedelta(minutes=1)


def all_at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` on ``count`` threads released together; their results in order."""
    start = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return [r for r in results if r is not None]


def expired_teams(services: Services, count: int) -> list[str]:
    deal = create_deal(
        services.db, create_merchant(services.db), stock=100_000, per_user_limit=100_000
    )
    shopper = create_account(services)

    def open_teams(tx: RawTx) -> list[str]:
        return [
            teams.start_team(tx, shopper.user_id, deal.id, utc_now(), hold=LEASE).team_id
            for _ in range(count)
        ]

    ids = services.db.run_raw_sync(open_teams)
    services.db.run_sync(
        lambda s: s.execute(update(Team).values(expires_at=utc_now() - timedelta(minutes=1)))
    )
    return ids


def test_racing_claims_hand_each_due_team_to_one_claimer(services: Services) -> None:
    ids = expired_teams(services, 300)

    def claimer(_: int) -> list[str]:
        mine: list[str] = []
        while batch := services.db.run_raw_sync(team_tasks.claim_teams, 7, LEASE):
            mine += [t.team_id for t in batch]
        return mine

    taken = all_at_once(THREADS, claimer)
    everyone = Counter(team_id for mine in taken for team_id in mine)
    assert set(everyone) == set(ids)
    assert set(everyone.values()) == {1}  # no team claimed twice
    # Claimed is not done: the teams wait, leased, for their claimers' second transaction.
    forming = services.db.run_sync(
        lambda s: s.scalar(select(func.count()).where(Team.status == "forming")), write=False
    )
    assert forming == len(ids)
    assert services.db.run_raw_sync(team_tasks.claim_teams, 100, LEASE) == []
    # Once the leases have run out (their claimers never came back), the teams are claimable.
    clock.advance(LEASE + timedelta(seconds=1))
    again = services.db.run_raw_sync(team_tasks.claim_teams, 1000, LEASE)
    assert sorted(t.team_id for t in again) == sorted(ids)


def test_racing_sweeps_fail_each_team_once(services: Services) -> None:
    ids = expired_teams(services, 200)
    failed = all_at_once(4, lambda _: team_tasks.close_expired_teams(services.db, 9, LEASE) or 0)
    while n := team_tasks.close_expired_teams(services.db, 9, LEASE):
        failed.append(n)
    assert sum(failed) == len(ids)
    statuses = services.db.run_sync(lambda s: Counter(s.scalars(select(Team.status))), write=False)
    assert statuses == {"failed": len(ids)}


def test_of_many_taking_a_jobs_lease_at_once_exactly_one_gets_it(services: Services) -> None:
    holders = [f"worker-{i}" for i in range(THREADS)]
    now = utc_now()

    got = all_at_once(
        THREADS,
        lambda i: (
            holders[i],
            services.db.run_raw_sync(claims.hold, "attribution", holders[i], now, LEASE),
        ),
    )
    winners = [holder for holder, held in got if held]
    assert len(winners) == 1
    winner = winners[0]
    loser = next(h for h in holders if h != winner)

    def hold(holder: str, at: timedelta = timedelta(0)) -> bool:
        return services.db.run_raw_sync(claims.hold, "attribution", holder, now + at, LEASE)

    assert hold(winner, timedelta(seconds=30))  # the holder renews: it keeps the job
    assert not hold(loser, LEASE)  # renewed at +30 s, the lease runs to +90 s
    assert hold(loser, LEASE + timedelta(seconds=31))  # the holder died: taken over
    assert not hold(winner, LEASE + timedelta(seconds=32))
    services.db.run_raw_sync(claims.let_go, "attribution", loser, now + LEASE * 2)
    assert hold(winner, LEASE * 2)  # let go: at once, not after the lease
    # Leases are per job: another job is free while this one is held.
    assert hold(loser, LEASE * 2) is False
    assert services.db.run_raw_sync(claims.hold, "rollup", loser, now + LEASE * 2, LEASE)


def test_a_worker_skips_a_job_another_holds_and_takes_it_once_the_lease_runs_out(
    services: Services,
) -> None:
    expired_teams(services, 3)  # their seats' events wait in the outbox for attribution
    # Another worker took attribution's lease and died with it.
    assert services.db.run_raw_sync(
        claims.hold, "attribution", "elsewhere:1:gone", utc_now(), LEASE
    )
    worker = Worker(services)

    assert worker.tick().events_attributed == 0
    assert worker.tick().events_attributed == 0

    clock.advance(LEASE + timedelta(seconds=1))
    assert worker.run_until_idle().events_attributed >= 3
