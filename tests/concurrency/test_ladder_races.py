"""Ladder teams, tipping points and honest auto-fill under real concurrency, on three API
processes over one database (``domain/ladder.py``, ``domain/autofill.py``):

* a ladder team's last tier reached at the instant its window closes: the payment that would
  reach it races the worker's sweep, and each team ends once, succeeding either at the higher
  tier (the payment was in time) or at the lower one (the late seat released and its money
  voided), with its price, its members' refunds and the audit agreeing;
* a tipping point crossed by two payments at once: each of two teams' last payments lands at
  the same instant, on different servers, and the deal tips exactly once, with both teams
  succeeding and every hold captured once;
* honest auto-fill's budget under teams ending at once: never filled past its limit.

The servers and this process share one application clock, as in ``test_races``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.deals.models import Deal
from pintuan.domain.autofill import AutoFill, FundedBy
from pintuan.domain.ladder import Tier
from pintuan.domain.roles import Role
from pintuan.events.models import OutboxEvent
from pintuan.fills.models import FillBudget
from pintuan.kit.time import clock, utc_now
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team
from pintuan.teams.service import DueTeam
from pintuan.worker import Worker
from tests.concurrency import test_races
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    create_shoppers,
)
from tests.concurrency.test_races import (
    BATCHES,
    CLOCK_OFFSET,
    FIRST_LEAD,
    JITTERS,
    WINDOW,
    Racer,
    ended_teams,
    instant,
    join_team,
    next_lead,
    open_payment,
    pay,
    race_the_sweep,
    settle_and_audit,
    start_team,
    succeed_payment,
)
from tests.factories import create_account, create_deal, create_merchant

# 2 → 15.00 (the deal's team size and group price), 3 → 13.00.
TIERS = (Tier(3, 1300),)


# The servers and this process on one clock, as in test_races (its fixtures, reused).
settings = test_races.settings
cluster = test_races.cluster


def test_the_last_tier_reached_at_the_window_end_ends_each_ladder_team_once_at_one_price(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    clock.advance(-2 * WINDOW)  # the deal has been live since before the first window opened
    deal = create_deal(services.db, merchant, team_size=2, stock=1000, ladder=TIERS)
    clock.advance(2 * WINDOW)
    worker = Worker(services)
    racers: list[Racer] = []
    lead = FIRST_LEAD
    for _ in range(BATCHES):
        leaders = create_shoppers(services, len(JITTERS))
        seconds = create_shoppers(services, len(JITTERS))
        thirds = create_shoppers(services, len(JITTERS))
        began = time.monotonic()
        # Windows opened one window length minus `lead` ago close `lead` from now.
        clock.offset = CLOCK_OFFSET - WINDOW + lead
        started = [start_team(client, leader, deal.id) for leader in leaders]
        for leader, second, team in zip(leaders, seconds, started, strict=True):
            pay(client, leader, team["seat"]["id"])
            pay(client, second, join_team(client, second, team["team"]["id"])["id"])
        clock.offset = CLOCK_OFFSET - timedelta(minutes=1)  # the third member comes late
        batch = []
        for third, team in zip(thirds, started, strict=True):
            seat = join_team(client, third, team["team"]["id"])
            payment_id = open_payment(client, third, seat["id"])
            deadline = instant(team["team"]["expires_at"])
            batch.append(Racer(team["team"]["id"], seat["id"], payment_id, third, deadline))
        clock.offset = CLOCK_OFFSET
        lead = next_lead(time.monotonic() - began)

        race_the_sweep(cluster, worker, batch)
        racers += batch

    Worker(services).run_until_idle()

    team_ids = [r.team_id for r in racers]
    ends = ended_teams(services, team_ids)
    assert sorted(ends) == sorted(team_ids), "every team ended exactly once"
    outcome = _ladder_outcomes(services, racers)
    for racer in racers:
        # In time: three confirmed at 13.00, each refunded 2.00. Late: two at 15.00, the third
        # seat released and its hold voided; nobody refunded.
        assert outcome[racer.team_id] in (
            ("succeeded", 1300, 3, "confirmed", "captured", [200, 200, 200]),
            ("succeeded", 1500, 2, "released", "voided", []),
        ), (racer.team_id, outcome[racer.team_id])
    sides = Counter(o[1] for o in outcome.values())
    print(f"ladder boundary: {dict(sides)} (price reached: count of teams)")
    settle_and_audit(services)


def _ladder_outcomes(services: Services, racers: Sequence[Racer]) -> dict[str, tuple[Any, ...]]:
    """Per team: its status, price reached, confirmed seats, the racing seat's status and its
    payment's, and the ladder refunds of its seats."""

    def read(session: Any) -> dict[str, tuple[Any, ...]]:
        found = {}
        for racer in racers:
            team = session.get(Team, racer.team_id)
            seats = session.scalars(select(Seat).where(Seat.team_id == racer.team_id)).all()
            refunds = session.scalars(
                select(Refund.amount).where(
                    Refund.seat_id.in_([s.id for s in seats]), Refund.source == "ladder"
                )
            ).all()
            racing = session.get(Seat, racer.seat_id)
            payment = session.get(Payment, racer.payment_id)
            found[racer.team_id] = (
                team.status,
                team.ladder_price,
                sum(1 for s in seats if s.status == "confirmed"),
                racing.status,
                payment.status,
                sorted(int(a) for a in refunds),
            )
        return found

    return services.db.run_sync(read)


def test_a_tipping_point_crossed_by_two_payments_at_once_tips_the_deal_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    merchant = create_merchant(services.db)
    deals = [
        create_deal(services.db, merchant, team_size=2, stock=100, tipping_point=4)
        for _ in range(6)
    ]
    calls: list[Call] = []
    team_ids: list[str] = []
    for deal in deals:
        for _ in range(2):
            leader, member = create_shoppers(services, 2)
            team = start_team(client, leader, deal.id)
            pay(client, leader, team["seat"]["id"])
            seat = join_team(client, member, team["team"]["id"])
            calls.append(succeed_payment(open_payment(client, member, seat["id"]), member))
            team_ids.append(team["team"]["id"])
    # Every last payment at once; each deal's two go to two different servers.
    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    assert [r.status for r in replies] == [200] * len(calls), cluster.logs()
    Worker(services).run_until_idle()
    ends = ended_teams(services, team_ids)
    assert {end[0] for end in ends.values()} == {"succeeded"}
    assert len(ends) == len(team_ids)

    def read(session: Any) -> tuple[Counter[str], list[Any], list[str]]:
        tipped = Counter(
            session.scalars(select(OutboxEvent.subject_id).where(OutboxEvent.type == "deal.tipped"))
        )
        when = session.scalars(select(Deal.tipped_at).where(Deal.id.in_([d.id for d in deals])))
        statuses = session.scalars(
            select(Payment.status).where(Payment.team_id.in_(team_ids))
        ).all()
        return tipped, list(when), list(statuses)

    tipped, when, statuses = services.db.run_sync(read)
    assert tipped == Counter({d.id: 1 for d in deals}), "each deal tipped exactly once"
    assert all(w is not None for w in when)
    assert Counter(statuses) == Counter({"captured": 4 * len(deals)})
    settle_and_audit(services)


# ---------------------------------------------------------------------------- honest auto-fill


def test_teams_ending_at_once_never_fill_past_their_budget(
    services: Services, client: TestClient
) -> None:
    """Twelve teams one paid seat short close at the same instant, each in its own transaction
    (as workers' claims do), against a merchant's budget that pays for five fills: exactly five
    are filled and succeed, the others fail, and the budget used is exactly five seats."""
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(
        services.db, merchant, team_size=2, stock=100, auto_fill=AutoFill(1, FundedBy.MERCHANT)
    )
    limit = client.put(
        f"/v1/merchants/{merchant.id}/fill-budget",
        json={"limit": {"amount": 5 * 1500, "currency": "USD"}},
        headers=staff.headers,
    )
    assert limit.status_code == 200, limit.text
    due = []
    for leader in create_shoppers(services, 12):
        team = start_team(client, leader, deal.id)
        pay(client, leader, team["seat"]["id"])
        due.append(DueTeam(team["team"]["id"], deal.id))
    clock.offset = CLOCK_OFFSET + WINDOW + timedelta(minutes=1)  # every window has closed
    start = threading.Barrier(len(due))

    def close(team: DueTeam) -> None:
        start.wait()
        services.db.run_raw_sync(lambda tx: teams.close_expired_teams(tx, [team], utc_now()))

    threads = [threading.Thread(target=close, args=(team,)) for team in due]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def read(session: Any) -> tuple[Counter[tuple[str, int]], int, int]:
        ended = Counter(
            (t.status, t.filled_seats)
            for t in session.scalars(select(Team).where(Team.id.in_([d.team_id for d in due])))
        )
        budget = session.get(FillBudget, (merchant.id, "USD"))
        return ended, budget.used_amount, budget.filled_seats

    ended, used, seats = services.db.run_sync(read)
    assert ended == Counter({("succeeded", 1): 5, ("failed", 0): 7})
    assert (used, seats) == (5 * 1500, 5)
    settle_and_audit(services)
