"""Referral commissions and withdrawals under real concurrency: API processes on one database.

A refund asked for at the instant an order's refund window closes races the worker releasing
its sharer's commission: each order ends in exactly one story, either refunded (the commission
shrunk before any release) or past its window (the commission paid, the refund refused), and
never a refund after a release. Workers sweeping at once freeze each commission once; twenty
withdrawals at once never take a wallet below zero. The ledger's checks and the engine's audit
pass after each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, running_cluster
from tests.factories import create_account
from tests.features.test_commissions import RATE, WINDOW, commissions, settle, shared_team
from tests.features.test_ledger import wallet
from tests.features.vouchering import sound

SERVERS = 3


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def release_sweeps(worker: Worker, start: datetime, end: datetime) -> int:
    """The worker's commission sweep over and over from ``start`` to ``end``."""
    while utc_now() < start:
        time.sleep(0.001)
    sweeps = 0
    while sweeps == 0 or utc_now() < end:
        worker.sweep_commissions(utc_now())
        sweeps += 1
    return sweeps


def test_refunds_at_the_instant_the_window_closes_race_the_release_and_one_story_wins(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    # Four teams of three, every seat brought by a share: twelve frozen commissions.
    teams = [shared_team(client, services, brought=3, refund_to="wallet") for _ in range(4)]
    settle(services)
    assert len(commissions(services)) == 12
    staff = {m.id: create_account(services, role=Role.MERCHANT, merchant=m) for m, _, _ in teams}
    # Every order's window closes at ``due`` (their teams succeeded one window before it).
    due = utc_now() + timedelta(seconds=2)
    services.db.run_sync(lambda s: s.execute(update(Team).values(ended_at=due - WINDOW)))
    seats = [(merchant.id, seat) for merchant, _, pairs in teams for _, seat in pairs]
    calls = [
        Call(
            "POST",
            f"/v1/seats/{seat}/refunds",
            staff[merchant_id].token,
            {"amount": 500, "reason": "late complaint"},
            headers=(("Idempotency-Key", f"race-{seat}"),),
        )
        for merchant_id, seat in seats
    ]
    at = [due + timedelta(milliseconds=(i % 6) * 60 - 250) for i in range(len(calls))]
    worker = Worker(services)

    async def both() -> tuple[list, int]:
        return await asyncio.gather(
            cluster.fire_async(calls, at),
            asyncio.to_thread(
                release_sweeps,
                worker,
                due - timedelta(milliseconds=60),
                due + timedelta(milliseconds=250),
            ),
        )

    replies, sweeps = asyncio.run(both())
    worker.sweep_commissions(utc_now() + timedelta(seconds=1))

    assert sweeps > 0
    assert_no_server_errors(cluster, replies)
    final = {c.seat_id: c for c in commissions(services)}
    outcomes = set()
    for (_, seat), reply in zip(seats, replies, strict=True):
        c = final[seat]
        assert c.status == "released"
        if reply.status == 201:
            # Refunded in its window: the commission shrank before it was paid.
            assert c.clawed_back == 150 - 1000 * RATE // 10_000
        else:
            assert reply.outcome == "409 refund_window_closed"
            assert c.clawed_back == 0
        outcomes.add(reply.status)
    # Only the sharers' wallets: what was kept of each commission, paid once.
    sharers = {sharer.user_id for _, sharer, _ in teams}
    assert sum(wallet(services, s) for s in sharers) == sum(
        c.amount - c.clawed_back for c in final.values()
    )
    sound(services)


def test_workers_sweeping_at_once_freeze_each_commission_once(
    services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as held:
        held.setattr("pintuan.worker.commissions.freeze_due", lambda *_: 0)
        for _ in range(3):
            shared_team(client, services, brought=3)
        Worker(services).run_until_idle()
    assert commissions(services) == []
    workers = [Worker(services) for _ in range(4)]
    now = utc_now()

    with ThreadPoolExecutor(len(workers)) as pool:
        list(pool.map(lambda w: w.sweep_commissions(now), workers))

    made = commissions(services)
    assert len(made) == 9
    assert len({c.seat_id for c in made}) == 9
    sound(services)


def test_twenty_withdrawals_at_once_never_take_the_wallet_below_zero(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    _, sharer, _ = shared_team(client, services, brought=3)
    settle(services)
    seat_ids = [c.seat_id for c in commissions(services)]
    services.db.run_sync(
        lambda s: s.execute(
            update(Team)
            .where(Team.id.in_(select(Seat.team_id).where(Seat.id.in_(seat_ids))))
            .values(ended_at=utc_now() - WINDOW - timedelta(minutes=1))
        )
    )
    settle(services)
    assert wallet(services, sharer.user_id) == 450
    calls = [
        Call(
            "POST",
            "/v1/me/wallet/withdrawals",
            sharer.token,
            {"amount": {"amount": 40, "currency": "USD"}, "destination": "alipay 138"},
            headers=(("Idempotency-Key", f"w-{i}"),),
        )
        for i in range(20)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    made = [r for r in replies if r.status == 201]
    assert len(made) == 450 // 40
    assert {r.outcome for r in replies if r.status != 201} == {"409 withdrawal_exceeds_balance"}
    assert wallet(services, sharer.user_id) == 450 - 40 * len(made)
    sound(services)
