"""Several ``pintuan worker`` processes over one backlog: every item is done exactly once, and a
worker killed with its claims in hand has them done by another once their lease runs out.

The backlog is what a busy platform leaves the worker: forming teams whose window closed (their
held seats released, their paid holds voided at the provider) and the partner webhooks their
failures owe. The provider is the fake Stripe on loopback and the partners' receiver a real HTTP
server, so what counts is what arrived there, not what the database says it sent. The workers are
real processes on the test's database (SQLite's file too: one writer, same code), their clocks
moved past the teams' windows with ``PINTUAN_CLOCK_OFFSET_SECONDS``. The backlog falls due only
once every worker is up, so they really start on it together.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pintuan.apps.models import App
from pintuan.audit.service import audit_database
from pintuan.config import Environment, Settings
from pintuan.events.models import OutboxEvent
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import clock, utc_now
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team
from pintuan.webhooks.models import WebhookDelivery
from pintuan.webhooks.service import ensure_manifest_endpoint
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe
from tests.fakes.webhook_receiver import Receiver
from tests.features.webhooks_world import create_partner_app

pytestmark = pytest.mark.slow

PINTUAN = Path(sys.executable).with_name("pintuan")
PAST_WINDOWS = timedelta(hours=25)
# Provider calls and webhook deliveries are leased for two minutes: past that, another takes them.
PAST_LEASES = PAST_WINDOWS + timedelta(minutes=5)
FAR = timedelta(days=100)
LEASE_SECONDS = 5
STRANDED_SECONDS = 30


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    # Hanging calls hang longer than the test waits: a worker killed in one never hears back.
    with running_fake_stripe(now=lambda: utc_now().timestamp(), hang_seconds=60) as served:
        yield served


@pytest.fixture
def settings(database_url: str, fake: FakeStripe) -> Settings:
    return make_settings(
        database_url,
        stripe_secret_key=fake.secret_key,
        stripe_webhook_secret=fake.webhook_secret,
        stripe_publishable_key="pk_test_pintuan",
        stripe_api_base=fake.base_url,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    partner = Receiver().up()
    yield partner
    partner.down()


@dataclass
class Backlog:
    teams: int
    paid: int


def build_backlog(
    client: TestClient,
    services: Services,
    fake: FakeStripe,
    receiver: Receiver,
    *,
    merchants: int,
    teams_each: int,
    paid_each: int,
) -> Backlog:
    """Forming teams on ``merchants`` merchants, ``paid_each`` of each with a Stripe hold, and a
    partner app on each merchant that hears ``team.failed``. Nothing is due until
    :func:`fall_due`: the teams' windows are far away."""
    shopper = create_account(services)
    for _ in range(merchants):
        merchant = create_merchant(services.db)
        deal = create_deal(services.db, merchant, stock=100_000, per_user_limit=100_000)
        partner = create_partner_app(
            services,
            create_account(services),
            installed_on=(merchant,),
            webhook_url=receiver.url,
            webhook_events=("team.failed",),
        )
        services.db.run_sync(
            lambda s, app_id=partner.id: ensure_manifest_endpoint(
                s, s.get(App, app_id), env=Environment.TEST
            )
        )
        for _ in range(paid_each):
            pay_a_leader(client, fake, shopper, deal.id)

        def open_teams(tx: RawTx, deal_id: str = deal.id) -> None:
            for _ in range(teams_each - paid_each):
                teams.start_team(tx, shopper.user_id, deal_id, utc_now(), hold=FAR)

        services.db.run_raw_sync(open_teams)
    return Backlog(teams=merchants * teams_each, paid=merchants * paid_each)


def pay_a_leader(client: TestClient, fake: FakeStripe, shopper: Account, deal_id: str) -> None:
    """A team whose leader's card hold is authorised at Stripe (voided when the team fails)."""
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shopper.headers).json()
    paid = client.post(
        f"/v1/seats/{started['seat']['id']}/payments",
        json={"provider": "stripe"},
        headers=shopper.headers,
    )
    assert paid.status_code == 201, paid.text
    intent = paid.json()["next_action"]["client_params"]["client_secret"].split("_secret_")[0]
    fake.confirm(intent)
    body, headers = fake.webhook("payment_intent.amount_capturable_updated", intent)
    delivered = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text


def fall_due(services: Services) -> None:
    """Every forming team's window and every hold end now (in one commit), which for workers
    whose clocks run ``PAST_WINDOWS`` ahead was a day ago."""
    now = utc_now()

    def work(session: Any) -> None:
        session.execute(update(Team).where(Team.status == "forming").values(expires_at=now))
        session.execute(update(Seat).where(Seat.status == "held").values(hold_expires_at=now))

    services.db.run_sync(work)


def count(services: Services, query: Any) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(query), write=False))


def failed_teams(services: Services) -> int:
    return count(services, select(func.count()).where(Team.status == "failed"))


def settled(services: Services, backlog: Backlog) -> bool:
    """Every team failed, every hold voided, every webhook delivered."""
    return (
        failed_teams(services) == backlog.teams
        and count(services, select(func.count()).where(Payment.status == "voided")) == backlog.paid
        and count(services, select(func.count()).where(WebhookDelivery.status == "delivered"))
        == backlog.teams
    )


class Workers:
    """``pintuan worker`` processes on the test's database, each logging to its own file."""

    def __init__(self, services: Services, fake: FakeStripe, tmp_path: Path) -> None:
        self.services, self.fake, self.tmp_path = services, fake, tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def log(self, n: int) -> Path:
        return self.tmp_path / f"worker-{n}.log"

    def env(self, offset: timedelta) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
        env.update(
            PINTUAN_DATABASE_URL=self.services.settings.database_url,
            PINTUAN_ENV="test",
            PINTUAN_LOG_LEVEL="INFO",
            PINTUAN_WORKER_BATCH_SIZE="10",
            PINTUAN_WORKER_IDLE_SECONDS="0.2",
            PINTUAN_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
            PINTUAN_CLOCK_OFFSET_SECONDS=str(int(offset.total_seconds())),
            PINTUAN_STRIPE_SECRET_KEY=self.fake.secret_key,
            PINTUAN_STRIPE_WEBHOOK_SECRET=self.fake.webhook_secret,
            PINTUAN_STRIPE_PUBLISHABLE_KEY="pk_test_pintuan",
            PINTUAN_STRIPE_API_BASE=self.fake.base_url,
        )
        return env

    def start(self, offset: timedelta = PAST_WINDOWS, *args: str) -> subprocess.Popen[bytes]:
        with self.log(len(self.procs)).open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603 - our own command
                [str(PINTUAN), "worker", *args],
                env=self.env(offset),
                cwd=self.tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def wait_running(self) -> None:
        """Until every started worker says it runs (its imports and connections done)."""
        wait_for(
            lambda: all(
                "Worker running" in self.log(n).read_text(errors="replace")
                for n in range(len(self.procs))
            ),
            self.tails,
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def reports(self) -> list[Counter[str]]:
        """What each worker's ticks did, summed from its log."""
        found = []
        for n in range(len(self.procs)):
            done: Counter[str] = Counter()
            for line in self.log(n).read_text(errors="replace").splitlines():
                if line.startswith("{") and '"worker tick"' in line:
                    done.update(json.loads(line)["report"])
            found.append(done)
        return found

    def tails(self) -> str:
        return "\n".join(
            f"--- worker {n} ---\n{self.log(n).read_text(errors='replace')[-2000:]}"
            for n in range(len(self.procs))
        )


@contextmanager
def workers_of(services: Services, fake: FakeStripe, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(services, fake, tmp_path)
    try:
        yield running
    finally:
        fake.close()
        running.stop()


def wait_for(done: Callable[[], bool], why: Callable[[], str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out:\n" + why()
        time.sleep(0.1)


def assert_clean(services: Services, backlog: Backlog) -> None:
    failed_events = count(services, select(func.count()).where(OutboxEvent.type == "team.failed"))
    assert failed_events == backlog.teams  # each team failed once, by one worker
    live = count(
        services,
        select(func.count()).where(Seat.status.in_(("held", "paid", "confirmed"))),
    )
    assert live == 0
    clock.offset = PAST_LEASES
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def test_four_workers_share_a_backlog_and_do_every_item_exactly_once(
    client: TestClient, services: Services, fake: FakeStripe, receiver: Receiver, tmp_path: Path
) -> None:
    backlog = build_backlog(
        client, services, fake, receiver, merchants=4, teams_each=60, paid_each=3
    )
    with workers_of(services, fake, tmp_path) as workers:
        for _ in range(4):
            workers.start()
        workers.wait_running()
        started = time.monotonic()
        fall_due(services)
        wait_for(lambda: settled(services, backlog), workers.tails)
        took = time.monotonic() - started
        workers.stop()

    assert fake.calls["payment_intents.cancel"] == backlog.paid  # each hold voided once
    assert fake.performed["payment_intents.cancel"] == backlog.paid
    assert fake.calls["payment_intents.capture"] == 0
    arrived = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(arrived) == backlog.teams
    assert set(arrived.values()) == {1}  # no webhook sent twice
    # Who did what, from each worker's log of its ticks: the sweep was shared, not serialised.
    sharing = [r["teams_failed"] for r in workers.reports()]
    assert sum(1 for n in sharing if n) >= 2, sharing  # the sweep was shared, not serialised
    assert_clean(services, backlog)
    print(
        f"\n4 workers: {backlog.teams} teams failed, {backlog.paid} holds voided, "
        f"{backlog.teams} webhooks in {took:.1f} s; teams per worker {sharing}"
    )


def test_a_killed_workers_claims_are_done_by_another_after_their_lease(
    client: TestClient, services: Services, fake: FakeStripe, receiver: Receiver, tmp_path: Path
) -> None:
    backlog = build_backlog(
        client, services, fake, receiver, merchants=2, teams_each=30, paid_each=3
    )
    # The first worker's voids take effect at Stripe but never answer: it is killed inside them,
    # its calls leased and unrecorded.
    fake.fail_next("payment_intents.cancel", times=1, how="hang")
    # A worker that died between its claim and its work: two teams (with paid holds, so no
    # hold's release can end them first) claimed, not failed.
    stranded = services.db.run_sync(
        lambda s: list(
            s.scalars(select(Seat.team_id).where(Seat.status == "paid").order_by(Seat.team_id))
        )[:2],
        write=False,
    )
    fall_due(services)
    services.db.run_sync(
        lambda s: s.execute(
            update(Team)
            .where(Team.id.in_(stranded))
            .values(lease_until=utc_now() + PAST_WINDOWS + timedelta(seconds=STRANDED_SECONDS))
        )
    )
    claimed_at = time.monotonic()
    with workers_of(services, fake, tmp_path) as workers:
        doomed = workers.start()
        wait_for(lambda: fake.calls["payment_intents.cancel"] >= 1, workers.tails)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        calls_at_kill = fake.calls["payment_intents.cancel"]
        # Every call owed so far was leased by the killed worker in the tick it died in.
        leased = services.db.run_sync(
            lambda s: list(
                s.scalars(select(Payment.id).where(Payment.pending_action.is_not(None)))
            ),
            write=False,
        )
        assert leased

        for _ in range(2):
            workers.start()
        # They end every other team, but neither the stranded teams nor the killed worker's
        # calls while those leases run.
        wait_for(lambda: failed_teams(services) >= backlog.teams - len(stranded), workers.tails)
        if time.monotonic() - claimed_at < STRANDED_SECONDS - 1:
            assert count(
                services,
                select(func.count()).where(Team.id.in_(stranded), Team.status == "forming"),
            ) == len(stranded)
        # The stranded teams are taken over once their lease has run out; the other holds are
        # voided by the live workers, but not the killed one's while their lease runs.
        wait_for(lambda: failed_teams(services) == backlog.teams, workers.tails, seconds=120)
        wait_for(
            lambda: (
                count(services, select(func.count()).where(Payment.status == "voided"))
                == backlog.paid - len(leased)
            ),
            workers.tails,
        )
        assert count(
            services,
            select(func.count()).where(Payment.id.in_(leased), Payment.pending_action == "void"),
        ) == len(leased)
        # Past the calls' and deliveries' two-minute leases, a worker takes the rest over.
        finish = workers.start(PAST_LEASES, "--once")
        assert finish.wait(timeout=300) == 0, workers.tails()
        wait_for(lambda: settled(services, backlog), workers.tails)
        workers.stop()

    # The killed worker's voids were repeated under the same idempotency keys: Stripe did each
    # once, whatever was asked twice.
    assert fake.performed["payment_intents.cancel"] == backlog.paid
    assert fake.calls["payment_intents.cancel"] > calls_at_kill
    arrived = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(arrived) == backlog.teams  # every webhook arrived (at least once)
    assert_clean(services, backlog)
