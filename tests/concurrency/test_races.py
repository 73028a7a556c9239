"""The invariants under real concurrency: three API processes on one database, hundreds of
requests fired at once, payments racing the worker's sweeps at the instant a window or a hold
runs out, and two interleavings that such races hit by chance replayed on purpose.

The servers and this test process live on the same application clock, ``CLOCK_OFFSET`` ahead of
real time: the servers take it from ``PINTUAN_CLOCK_OFFSET_SECONDS``, this process from the
settings its services are built with. Setup goes through this process's own app (moving its clock
to place a window's or a hold's end at a chosen instant); the races go to the servers. After every
race the worker runs until idle and the audit must find no breach.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pintuan.audit.service import audit_database
from pintuan.config import Settings
from pintuan.deals.models import Deal
from pintuan.events.models import OutboxEvent
from pintuan.kit.time import clock, utc_now
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation, SandboxProvider
from pintuan.services import Services
from pintuan.teams.models import DealShopperCount, Seat, Team
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

SERVERS = 3
CLOCK_OFFSET = timedelta(hours=3)
HOLD = timedelta(minutes=30)  # how long a seat is held for its payment, here and on the servers
WINDOW = timedelta(days=1)  # the team window of the factory's deals (the default)
# When each racing payment is sent, around the instant its window or hold ends: well before and
# well after, so both outcomes occur, and three close to it. A server reads the instant of a
# payment some 5 to 20 ms after it is sent, so "close" leans early.
JITTERS = tuple(timedelta(milliseconds=ms) for ms in (-100, -20, -10, 0, 60))
BATCHES = 4  # x len(JITTERS) teams per boundary race
FIRST_LEAD = timedelta(seconds=1)  # before the first batch shows how long a setup takes
# The hold-sweep race stages its three payments in one go: room for a busy two-core machine.
SWEEP_RACE_LEAD = timedelta(seconds=3)

# Breaches found on PostgreSQL; the tests that show them expect them to fail there (strictly:
# once fixed, they pass and the mark has to go).


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


# ---------------------------------------------------------------------------- helpers


def start_team(client: TestClient, account: Account, deal_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def join_team(client: TestClient, account: Account, team_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/teams/{team_id}/seats", headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["seat"])


def open_payment(client: TestClient, account: Account, seat_id: str) -> str:
    response = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pay(client: TestClient, account: Account, seat_id: str) -> None:
    payment_id = open_payment(client, account, seat_id)
    paid = client.post(f"/v1/test_helpers/payments/{payment_id}/succeed", headers=account.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "authorized"


def succeed_payment(payment_id: str, payer: Account) -> Call:
    """The shopper completes the sandbox checkout: the server sends itself the signed webhook."""
    return Call("POST", f"/v1/test_helpers/payments/{payment_id}/succeed", payer.token)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def settle_and_audit(services: Services) -> None:
    Worker(services).run_until_idle()
    breaches = services.db.run_sync(lambda s: audit_database(s, timedelta(0)))
    assert breaches == []


def expect(cluster: Cluster, replies: Sequence[Reply], wanted: dict[str, int]) -> None:
    assert_no_server_errors(cluster, replies)
    assert outcomes(replies) == Counter(wanted), cluster.logs()


# ---------------------------------------------------------------------------- bursts


def test_200_shoppers_racing_for_a_team_of_5_take_exactly_its_4_free_places(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=5, stock=1000)
    leader, *racers = create_shoppers(services, 201)
    team_id = start_team(client, leader, deal.id)["team"]["id"]

    replies = cluster.fire([Call("POST", f"/v1/teams/{team_id}/seats", r.token) for r in racers])

    expect(cluster, replies, {"201": 4, "409 team_full": 196})
    team = client.get(f"/v1/teams/{team_id}").json()
    assert (team["seats_taken"], team["seats_left"], len(team["members"])) == (5, 0, 5)
    assert {r.body["seat"]["team_id"] for r in replies if r.status == 201} == {team_id}
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 5
    settle_and_audit(services)


def test_500_shoppers_starting_teams_on_a_deal_with_50_units_get_exactly_50(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=50)
    racers = create_shoppers(services, 500)

    replies = cluster.fire([Call("POST", f"/v1/deals/{deal.id}/teams", r.token) for r in racers])

    expect(cluster, replies, {"201": 50, "409 sold_out": 450})
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 50
    teams = services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Team)))
    assert teams == 50
    settle_and_audit(services)


def test_one_shopper_joining_20_teams_at_once_gets_one_seat_under_a_limit_of_1(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, per_user_limit=1)
    *leaders, shopper = create_shoppers(services, 21)
    team_ids = [start_team(client, leader, deal.id)["team"]["id"] for leader in leaders]

    replies = cluster.fire([Call("POST", f"/v1/teams/{t}/seats", shopper.token) for t in team_ids])

    expect(cluster, replies, {"201": 1, "409 limit_reached": 19})
    mine = client.get("/v1/me/seats", headers=shopper.headers).json()["data"]
    assert [s["status"] for s in mine] == ["held"]
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 21
    settle_and_audit(services)


def test_one_shopper_starting_and_joining_40_times_at_once_gets_exactly_the_limit_of_2(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, per_user_limit=2)
    *leaders, shopper = create_shoppers(services, 21)
    team_ids = [start_team(client, leader, deal.id)["team"]["id"] for leader in leaders[:20]]
    starts = [Call("POST", f"/v1/deals/{deal.id}/teams", shopper.token)] * 20
    joins = [Call("POST", f"/v1/teams/{t}/seats", shopper.token) for t in team_ids]

    replies = cluster.fire([c for pair in zip(starts, joins, strict=True) for c in pair])

    expect(cluster, replies, {"201": 2, "409 limit_reached": 38})
    counted = services.db.run_sync(
        lambda s: s.scalar(
            select(DealShopperCount.count).where(DealShopperCount.user_id == shopper.user_id)
        )
    )
    assert counted == 2
    assert len(client.get("/v1/me/seats", headers=shopper.headers).json()["data"]) == 2
    settle_and_audit(services)


# ---------------------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class Racer:
    """A payment sent at the instant its team's window or its seat's hold ends."""

    team_id: str
    seat_id: str
    payment_id: str
    payer: Account
    deadline: datetime


def sweep(worker: Worker, start: datetime, end: datetime) -> int:
    """The worker ticking over and over from ``start`` to ``end`` (application time), as a busy
    worker process does: each tick releases the holds and fails the teams that are due."""
    while utc_now() < start:
        time.sleep(0.001)
    ticks = 0
    while ticks == 0 or utc_now() < end:
        worker.tick()
        ticks += 1
        time.sleep(0.002)
    return ticks


def race_the_sweep(cluster: Cluster, worker: Worker, racers: Sequence[Racer]) -> list[Reply]:
    """Each racer's payment succeeds at its deadline plus its jitter, on the servers in turn,
    while this process's worker sweeps from just before the first deadline to after the last."""
    at = [r.deadline + jitter for r, jitter in zip(racers, JITTERS, strict=True)]
    start = min(r.deadline for r in racers) - timedelta(milliseconds=10)
    end = max(at) + timedelta(milliseconds=100)

    async def both() -> tuple[list[Reply], int]:
        calls = [succeed_payment(r.payment_id, r.payer) for r in racers]
        replies, ticks = await asyncio.gather(
            cluster.fire_async(calls, at), asyncio.to_thread(sweep, worker, start, end)
        )
        return replies, ticks

    replies, ticks = asyncio.run(both())
    assert ticks > 0
    assert_no_server_errors(cluster, replies)
    assert [r.status for r in replies] == [200] * len(racers), cluster.logs()
    return replies


def next_lead(setup_seconds: float) -> timedelta:
    """How far ahead to place the next batch's deadlines: past the time its setup will take.
    (A batch whose setup overruns still races, only no longer at the boundary.)"""
    return timedelta(seconds=1.3 * setup_seconds + 0.15)


def test_the_last_payment_racing_the_window_sweep_ends_each_team_exactly_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    clock.advance(-2 * WINDOW)  # the deal has been live since before the first window opened
    deal = create_deal(services.db, merchant, team_size=2, stock=1000)
    clock.advance(2 * WINDOW)
    worker = Worker(services)
    racers: list[Racer] = []
    lead = FIRST_LEAD
    for _ in range(BATCHES):
        leaders = create_shoppers(services, len(JITTERS))
        joiners = create_shoppers(services, len(JITTERS))
        began = time.monotonic()
        # Windows opened one window length minus `lead` ago close `lead` from now.
        clock.offset = CLOCK_OFFSET - WINDOW + lead
        started = [start_team(client, leader, deal.id) for leader in leaders]
        for leader, team in zip(leaders, started, strict=True):
            pay(client, leader, team["seat"]["id"])
        clock.offset = CLOCK_OFFSET - timedelta(minutes=1)  # the last members come late
        batch = []
        for joiner, team in zip(joiners, started, strict=True):
            seat = join_team(client, joiner, team["team"]["id"])
            payment_id = open_payment(client, joiner, seat["id"])
            deadline = instant(team["team"]["expires_at"])
            batch.append(Racer(team["team"]["id"], seat["id"], payment_id, joiner, deadline))
        clock.offset = CLOCK_OFFSET
        lead = next_lead(time.monotonic() - began)

        race_the_sweep(cluster, worker, batch)
        racers += batch

    Worker(services).run_until_idle()

    team_ids = [r.team_id for r in racers]
    ends = ended_teams(services, team_ids)
    assert sorted(ends) == sorted(team_ids), "every team ended exactly once"
    paid = payments_of_teams(services, team_ids)
    for team_id in team_ids:
        # A team succeeds only at an instant before its window closed, else it fails.
        assert (*ends[team_id], paid[team_id]) in (
            ("succeeded", True, ["captured", "captured"]),
            ("failed", False, ["voided", "voided"]),
        ), team_id
    assert {e[0] for e in ends.values()} == {"succeeded", "failed"}, "races fell on both sides"
    assert_provider_agrees(services)
    settle_and_audit(services)


def test_a_payment_racing_its_seat_hold_sweep_never_takes_a_released_place(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    clock.advance(-2 * HOLD)  # the deal has been live since before the first hold began
    deal = create_deal(services.db, merchant, team_size=3, stock=1000)
    clock.advance(2 * HOLD)
    worker = Worker(services)
    racers: list[Racer] = []
    lead = FIRST_LEAD
    for _ in range(BATCHES):
        leaders = create_shoppers(services, len(JITTERS))
        began = time.monotonic()
        # Holds taken one hold length minus `lead` ago end `lead` from now.
        clock.offset = CLOCK_OFFSET - HOLD + lead
        batch = []
        for leader in leaders:
            team = start_team(client, leader, deal.id)
            seat = team["seat"]
            payment_id = open_payment(client, leader, seat["id"])
            deadline = instant(seat["hold_expires_at"])
            batch.append(Racer(team["team"]["id"], seat["id"], payment_id, leader, deadline))
        clock.offset = CLOCK_OFFSET
        lead = next_lead(time.monotonic() - began)

        race_the_sweep(cluster, worker, batch)
        racers += batch

    Worker(services).run_until_idle()

    seats = seat_outcomes(services, racers)
    for racer in racers:
        # A seat is paid only at an instant before its hold ended, else released and voided,
        # and its team, left with nobody, closed with it.
        assert seats[racer.seat_id] in (
            ("paid", True, ("authorized", None), 1, ("forming", 1, 1)),
            ("released", None, ("voided", None), 0, ("failed", 0, 0)),
        ), racer
    assert {"paid", "released"} <= {s[0] for s in seats.values()}, "races fell on both sides"
    assert_provider_agrees(services)
    settle_and_audit(services)

    clock.advance(WINDOW)  # the teams never fill: every paid seat's hold is voided
    Worker(services).run_until_idle()
    statuses = services.db.run_sync(lambda s: set(s.scalars(select(Payment.status))))
    assert statuses == {"voided"}
    assert_provider_agrees(services)
    settle_and_audit(services)


# ---------------------------------------------------------------------------- interleavings
# Two races above once ended in a breach on PostgreSQL, rarely when left to chance. Here the same
# interleaving is made certain: a transaction of this process holds the deal's row while the
# requests (and the worker) queue behind it in a chosen order. PostgreSQL then lets them through
# in arrival order; SQLite serializes whole transactions, so the interleaving cannot occur there
# and the test must pass.


@contextmanager
def deal_held(services: Services, deal_id: str) -> Iterator[Callable[[], None]]:
    """A transaction that has written the deal's row and waits; call the function it gives to
    commit. Until then every transaction that locks the deal (PostgreSQL) or writes (SQLite)
    waits."""
    with services.db.engine.connect() as conn:
        held = conn.begin()
        conn.execute(update(Deal).where(Deal.id == deal_id).values(stock=Deal.stock))
        try:
            yield held.commit
        finally:
            if held.is_active:
                held.rollback()


def queue_behind_deal(
    cluster: Cluster,
    services: Services,
    deal_id: str,
    calls: Sequence[Call],
    *,
    send_at: datetime,
    sweep_at: datetime | None = None,
    release_at: datetime,
) -> list[Reply]:
    """Send ``calls`` at ``send_at`` while the deal is held, have the worker tick at
    ``sweep_at`` (after them in the queue), and let the deal go at ``release_at``."""

    async def interleave(release: Callable[[], None]) -> list[Reply]:
        sending = asyncio.create_task(cluster.fire_async(calls, [send_at] * len(calls)))
        ticking = None
        if sweep_at is not None:
            await sleep_until(sweep_at)
            ticking = asyncio.create_task(asyncio.to_thread(Worker(services).tick))
        await sleep_until(release_at)
        release()
        replies = await sending
        if ticking is not None:
            await ticking
        return replies

    with deal_held(services, deal_id) as release:
        replies = asyncio.run(interleave(release))
    assert_no_server_errors(cluster, replies)
    assert [r.status for r in replies] == [200] * len(calls), cluster.logs()
    return replies


async def sleep_until(instant: datetime) -> None:
    await asyncio.sleep(max((instant - utc_now()).total_seconds(), 0))


def signed_webhook(body: bytes, headers: dict[str, str]) -> Call:
    return Call("POST", "/v1/webhooks/sandbox", content=body, headers=tuple(headers.items()))


def test_two_notifications_of_one_payment_at_once_take_its_money_once(
    request: pytest.FixtureRequest, cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=1000)
    leaders, joiners = create_shoppers(services, 3), create_shoppers(services, 3)
    sandbox = services.providers["sandbox"]
    assert isinstance(sandbox, SandboxProvider)
    notices = []
    for leader, joiner in zip(leaders, joiners, strict=True):
        team = start_team(client, leader, deal.id)
        pay(client, leader, team["seat"]["id"])
        seat = join_team(client, joiner, team["team"]["id"])
        ref = sandbox.intent_of_payment(open_payment(client, joiner, seat["id"])).ref
        # The last member pays and the provider says so twice, as two events (a provider may
        # report one change under two event types, or resend it under a new event id).
        notices.append(signed_webhook(*sandbox.complete_checkout(ref, approve=True)))
        notices.append(signed_webhook(*sandbox.webhook("payment.authorized", sandbox.intent(ref))))
    now = utc_now()

    # Both notices of a payment, on two servers, wait for the deal together.
    queue_behind_deal(
        cluster,
        services,
        deal.id,
        notices,
        send_at=now + timedelta(seconds=0.1),
        release_at=now + timedelta(seconds=0.6),
    )

    Worker(services).run_until_idle()
    money = services.db.run_sync(
        lambda s: Counter(
            tuple(r)
            for r in s.execute(
                select(Seat.status, Payment.status).join(Payment, Payment.seat_id == Seat.id)
            )
        )
    )
    assert money == Counter({("confirmed", "captured"): 6})
    assert_provider_agrees(services)
    settle_and_audit(services)


def test_a_payment_in_time_keeps_its_seat_when_the_hold_sweep_queued_behind_it(
    request: pytest.FixtureRequest, cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    clock.advance(-2 * HOLD)
    deal = create_deal(services.db, merchant, team_size=3, stock=1000)
    clock.advance(2 * HOLD)
    sandbox = services.providers["sandbox"]
    assert isinstance(sandbox, SandboxProvider)
    racers: list[Racer] = []
    notices: list[Call] = []
    clock.offset = CLOCK_OFFSET - HOLD + SWEEP_RACE_LEAD  # these holds end that long from now
    for leader in create_shoppers(services, 3):
        team = start_team(client, leader, deal.id)
        seat = team["seat"]
        payment_id = open_payment(client, leader, seat["id"])
        deadline = instant(seat["hold_expires_at"])
        racers.append(Racer(team["team"]["id"], seat["id"], payment_id, leader, deadline))
    clock.offset = CLOCK_OFFSET  # the shoppers pay now (signatures are dated)
    for racer in racers:
        ref = sandbox.intent_of_payment(racer.payment_id).ref
        notices.append(signed_webhook(*sandbox.complete_checkout(ref, approve=True)))
    deadline = min(r.deadline for r in racers)
    send_at = deadline - timedelta(seconds=0.3)
    assert utc_now() < send_at, "the setup took too long to stage this interleaving"

    # The payments arrive before their holds end and wait for the deal; the sweep comes after
    # the holds ended and waits behind them.
    queue_behind_deal(
        cluster,
        services,
        deal.id,
        notices,
        send_at=send_at,
        sweep_at=deadline + timedelta(seconds=0.05),
        release_at=deadline + timedelta(seconds=0.5),
    )

    Worker(services).run_until_idle()
    seats = seat_outcomes(services, racers)
    for racer in racers:
        # A payment late for its hold (a busy machine can hold the sends past it) leaves its
        # seat released and voided, and its team, left with nobody, closed with it.
        assert seats[racer.seat_id] in (
            ("paid", True, ("authorized", None), 1, ("forming", 1, 1)),
            ("released", None, ("voided", None), 0, ("failed", 0, 0)),
        ), racer
    assert_provider_agrees(services)
    settle_and_audit(services)


# ---------------------------------------------------------------------------- repeats and reversals


def test_30_copies_of_one_keyed_start_at_once_have_one_effect_and_one_answer(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, per_user_limit=5)
    (shopper,) = create_shoppers(services, 1)
    path = f"/v1/deals/{deal.id}/teams"
    key = ("Idempotency-Key", "start-dumplings-1")

    replies = cluster.fire([Call("POST", path, shopper.token, headers=(key,))] * 30)

    assert_no_server_errors(cluster, replies)
    assert set(outcomes(replies)) <= {"201", "409 idempotency_in_progress"}, outcomes(replies)
    answers = [r.body for r in replies if r.status == 201]
    assert answers
    assert all(a == answers[0] for a in answers)
    again = client.post(path, headers={**shopper.headers, key[0]: key[1]})
    assert (again.status_code, again.json()) == (201, answers[0])
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 1
    settle_and_audit(services)


def test_cancelling_while_the_payment_arrives_ends_the_seat_once_and_returns_the_money(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    shoppers = create_shoppers(services, 20)
    calls, seat_ids = [], []
    for shopper in shoppers:
        seat_id = start_team(client, shopper, deal.id)["seat"]["id"]
        payment_id = open_payment(client, shopper, seat_id)
        seat_ids.append(seat_id)
        cancel = Call("POST", f"/v1/seats/{seat_id}/cancel", shopper.token)
        calls += [cancel, succeed_payment(payment_id, shopper)]

    replies = cluster.fire(calls)  # each cancel and its payment reach two different servers

    assert_no_server_errors(cluster, replies)
    assert [r.status for r in replies] == [200] * len(calls), cluster.logs()
    assert {r.body["status"] for r in replies[0::2]} <= {"released", "refunded"}
    Worker(services).run_until_idle()

    def read(session: Any) -> tuple[Counter[tuple[str, str]], Counter[str]]:
        money = Counter(
            (seat, payment)
            for seat, payment in session.execute(
                select(Seat.status, Payment.status).join(Payment, Payment.seat_id == Seat.id)
            )
        )
        endings = Counter(
            session.scalars(
                select(OutboxEvent.subject_id).where(
                    OutboxEvent.type.in_(("seat.released", "seat.refunded")),
                    OutboxEvent.subject_id.in_(seat_ids),
                )
            )
        )
        return money, endings

    money, endings = services.db.run_sync(read)
    assert set(money) <= {("released", "voided"), ("refunded", "voided")}, money
    assert sum(money.values()) == len(seat_ids)
    assert endings == Counter(dict.fromkeys(seat_ids, 1)), "each seat ended exactly once"
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 0
    assert_provider_agrees(services)
    settle_and_audit(services)


# ---------------------------------------------------------------------------- reading back


def ended_teams(services: Services, team_ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """How each team ended and whether that was before its window closed, from its one end event
    (a second event would be a second ending)."""

    def read(session: Any) -> dict[str, tuple[str, bool]]:
        events = session.execute(
            select(OutboxEvent.subject_id, OutboxEvent.type).where(
                OutboxEvent.type.in_(("team.succeeded", "team.failed")),
                OutboxEvent.subject_id.in_(team_ids),
            )
        ).all()
        once = Counter(e.subject_id for e in events)
        assert all(n == 1 for n in once.values()), once
        teams = {
            t.id: (t.status, t.ended_at < t.expires_at)
            for t in session.scalars(select(Team).where(Team.id.in_(team_ids)))
        }
        for e in events:
            assert e.type == f"team.{teams[e.subject_id][0]}", e
        return {e.subject_id: teams[e.subject_id] for e in events}

    return services.db.run_sync(read)


def payments_of_teams(services: Services, team_ids: Sequence[str]) -> dict[str, list[str]]:
    def read(session: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {team_id: [] for team_id in team_ids}
        for team_id, status in session.execute(
            select(Payment.team_id, Payment.status).where(Payment.team_id.in_(team_ids))
        ):
            found[team_id].append(status)
        return {team_id: sorted(statuses) for team_id, statuses in found.items()}

    return services.db.run_sync(read)


def seat_outcomes(services: Services, racers: Sequence[Racer]) -> dict[str, tuple[Any, ...]]:
    """Per racing seat: its status, whether it was paid before its hold ended (None: never paid),
    its payment's (status, owed action), how many times it was marked paid, and its team's
    (status, places taken, places paid)."""
    deadlines = {r.seat_id: r.deadline for r in racers}

    def read(session: Any) -> dict[str, tuple[Any, ...]]:
        rows = session.execute(
            select(Seat, Payment.status, Payment.pending_action, Team.status, Team.taken, Team.paid)
            .join(Payment, Payment.seat_id == Seat.id)
            .join(Team, Team.id == Seat.team_id)
            .where(Seat.id.in_(deadlines))
        ).all()
        paid_events = Counter(
            session.scalars(
                select(OutboxEvent.subject_id).where(
                    OutboxEvent.type == "seat.paid", OutboxEvent.subject_id.in_(deadlines)
                )
            )
        )
        return {
            seat.id: (
                seat.status,
                None if seat.paid_at is None else seat.paid_at < deadlines[seat.id],
                (payment, owed),
                paid_events[seat.id],
                (team, taken, paid),
            )
            for seat, payment, owed, team, taken, paid in rows
        }

    found = services.db.run_sync(read)
    assert sorted(found) == sorted(deadlines), "one payment per seat"
    return found


def assert_provider_agrees(services: Services) -> None:
    """The sandbox's own records match ours, and it was asked to move each payment at most once."""

    def read(session: Any) -> None:
        ours = dict(session.execute(select(Payment.provider_ref, Payment.status)).all())
        theirs = dict(session.execute(select(SandboxIntent.ref, SandboxIntent.status)).all())
        assert theirs == ours
        operations = Counter(session.scalars(select(SandboxOperation.ref)))
        assert all(n == 1 for n in operations.values()), operations

    services.db.run_sync(read)
