"""Killing the worker (SIGKILL, no chance to clean up) in the middle of a sweep over thousands of
expired teams, then starting it again: the sweep finishes, every hold paid for is voided exactly
once at the provider, and the audit is clean.

The worker runs as ``pintuan worker`` in a process of its own, its clock moved past the teams'
windows with ``PINTUAN_CLOCK_OFFSET_SECONDS``; it is killed as soon as it has failed some teams
but not all, twice. What a kill can leave behind is what this protects: a transaction cut in
half (the database rolls it back), and provider calls leased but never recorded (they are owed
again once their lease runs out, and the provider's idempotency keys make the repeat harmless).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.audit.service import audit_database
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import clock, utc_now
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxOperation
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team
from tests.factories import create_account, create_deal, create_merchant

pytestmark = pytest.mark.slow

TEAMS = 1500
PAID = 40  # teams whose leader's hold is authorised at the sandbox
BATCH = 40
KILLS = 2
PAST_WINDOWS = timedelta(hours=25)
# Provider calls a killed worker had leased are owed again after the lease (2 min).
PAST_LEASES = PAST_WINDOWS + timedelta(minutes=5)
PINTUAN = Path(sys.executable).with_name("pintuan")


def failed_teams(services: Services) -> int:
    return services.db.run_sync(
        lambda s: s.scalar(select(func.count()).where(Team.status == "failed")), write=False
    )


def worker_env(services: Services, offset: timedelta) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
    env.update(
        PINTUAN_DATABASE_URL=services.settings.database_url,
        PINTUAN_ENV="test",
        PINTUAN_LOG_LEVEL="WARNING",
        PINTUAN_WORKER_BATCH_SIZE=str(BATCH),
        PINTUAN_CLOCK_OFFSET_SECONDS=str(int(offset.total_seconds())),
    )
    return env


def start_worker(services: Services, tmp_path: Path, n: int, *args: str) -> subprocess.Popen[bytes]:
    with (tmp_path / f"worker-{n}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own command
            [str(PINTUAN), "worker", *args],
            env=worker_env(services, PAST_WINDOWS if not args else PAST_LEASES),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def kill_mid_sweep(
    services: Services, worker: subprocess.Popen[bytes], log: Path, target: int
) -> int:
    """SIGKILL the worker once it has failed ``target`` teams or more, but not all of them;
    returns how many teams had failed when it died."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if target <= failed_teams(services) < TEAMS:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            return failed_teams(services)
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.005)
    raise AssertionError("the worker never got going:\n" + log.read_text(errors="replace"))


def test_a_worker_killed_mid_sweep_finishes_after_a_restart_and_loses_no_money(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    deal = create_deal(
        services.db, create_merchant(services.db), stock=100_000, per_user_limit=10_000
    )
    shopper = create_account(services)
    for _ in range(PAID):
        started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers).json()
        paid = client.post(
            f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=shopper.headers
        ).json()
        done = client.post(
            f"/v1/test_helpers/payments/{paid['id']}/succeed", headers=shopper.headers
        )
        assert done.status_code == 200, done.text

    def open_teams(tx: RawTx) -> None:
        for _ in range(TEAMS - PAID):
            teams.start_team(tx, shopper.user_id, deal.id, utc_now(), hold=timedelta(minutes=10))

    services.db.run_raw_sync(open_teams)

    at_kills = []
    for n in range(KILLS):
        worker = start_worker(services, tmp_path, n)
        target = TEAMS * (n + 1) // (KILLS + 2)  # a quarter of the way, then half
        at_kills.append(kill_mid_sweep(services, worker, tmp_path / f"worker-{n}.log", target))
    restarted = time.monotonic()
    finish = start_worker(services, tmp_path, KILLS, "--once")
    assert finish.wait(timeout=300) == 0, (tmp_path / f"worker-{KILLS}.log").read_text()
    converged = time.monotonic() - restarted

    clock.offset = PAST_LEASES
    assert failed_teams(services) == TEAMS
    payments = services.db.run_sync(
        lambda s: sorted(set(s.scalars(select(Payment.status)))), write=False
    )
    voids = services.db.run_sync(
        lambda s: list(s.scalars(select(SandboxOperation.kind))), write=False
    )
    live_seats = services.db.run_sync(
        lambda s: s.scalar(
            select(func.count()).where(Seat.status.in_(("held", "paid", "confirmed")))
        ),
        write=False,
    )
    assert payments == ["voided"]
    assert voids == ["void"] * PAID  # each hold let go once, whatever the kills interrupted
    assert live_seats == 0
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    print(
        f"\nworker kill: {TEAMS} expired teams ({PAID} with a hold to void), batch {BATCH}; "
        f"killed {KILLS}x with {at_kills} teams failed; restart converged in {converged:.1f} s"
    )
