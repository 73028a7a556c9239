"""What a merchant's staff read: teams, orders and refunds with filters and search, and the
dashboard's sales per business day, success rate and time to fill; and who may read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.domain.roles import Role
from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.errors import NotFound
from pintuan.kit.time import clock, utc_now
from pintuan.payments import reports as payment_reports
from pintuan.payments.endings import CallLimits
from pintuan.payments.models import Payment
from pintuan.payments.reports import OrderFilters, RefundReason, RefundState
from pintuan.payments.service import claim_due_actions
from pintuan.services import Services
from pintuan.teams import reports
from pintuan.teams.reports import TeamFilters, nearest_rank
from pintuan.worker import PAYMENT_LEASE, Worker
from tests.console_data import (
    failed_team,
    filled_team,
    join_over_api,
    past_deal,
    pay_over_api,
    start_over_api,
)
from tests.factories import create_account, create_deal, create_merchant


def local(day: date, hour: int, minute: int, zone: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


# ---------------------------------------------------------------------------- dashboard


def test_sales_fall_on_the_merchants_business_day_not_the_utc_day(services: Services) -> None:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    deal = past_deal(services, merchant, team_size=2, group_price=1500)
    shoppers = [create_account(services) for _ in range(4)]
    day = (utc_now() - timedelta(days=5)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    # 23:30 in Shanghai is still `day`; 00:30 is the next day although both are the same UTC day.
    late = local(day, 23, 30, "Asia/Shanghai")
    after_midnight = local(day + timedelta(days=1), 0, 30, "Asia/Shanghai")
    assert late.date() == after_midnight.date()
    filled_team(services, deal, shoppers[:2], started=late - timedelta(hours=1), filled=late)
    filled_team(
        services,
        deal,
        shoppers[2:],
        started=after_midnight - timedelta(hours=2),
        filled=after_midnight,
    )

    operator = create_account(services, role=Role.OPERATOR)  # operators read every merchant

    board = services.db.run_sync(
        lambda s: reports.merchant_dashboard(s, operator.principal, merchant.id, days=10)
    )

    by_day = {s.day: s.amounts for s in board.sales}
    assert by_day[day] == {"CNY": 3000}
    assert by_day[day + timedelta(days=1)] == {"CNY": 3000}
    assert sum(s.amount("CNY") for s in board.sales) == 6000
    assert len(board.sales) == 10
    assert board.last_day == utc_now().astimezone(ZoneInfo("Asia/Shanghai")).date()


def test_half_hour_time_zones_split_days_at_their_own_midnight(services: Services) -> None:
    merchant = create_merchant(services.db, currency="INR", country="IN", time_zone="Asia/Kolkata")
    deal = past_deal(services, merchant, team_size=2, group_price=50000, list_price=90000)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    shoppers = [create_account(services) for _ in range(4)]
    day = (utc_now() - timedelta(days=3)).astimezone(ZoneInfo("Asia/Kolkata")).date()
    before = local(day, 23, 59, "Asia/Kolkata")  # 18:29 UTC
    after = local(day + timedelta(days=1), 0, 1, "Asia/Kolkata")  # 18:31 UTC
    filled_team(services, deal, shoppers[:2], started=before - timedelta(hours=3), filled=before)
    filled_team(services, deal, shoppers[2:], started=after - timedelta(hours=3), filled=after)

    board = services.db.run_sync(
        lambda s: reports.merchant_dashboard(s, staff.principal, merchant.id, days=7)
    )

    by_day = {s.day: s.amount("INR") for s in board.sales}
    assert (by_day[day], by_day[day + timedelta(days=1)]) == (100000, 100000)


def test_success_rate_and_time_to_fill_count_teams_that_ended_in_the_period(
    services: Services,
) -> None:
    merchant = create_merchant(services.db)
    deal = past_deal(services, merchant, team_size=2)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    people = [create_account(services) for _ in range(8)]
    base = utc_now() - timedelta(days=2)
    for n, minutes in enumerate((10, 20, 60)):
        start = base + timedelta(hours=n)
        filled_team(
            services,
            deal,
            people[2 * n : 2 * n + 2],
            started=start,
            filled=start + timedelta(minutes=minutes),
        )
    failed_team(services, deal, people[6], started=base, failed=base + timedelta(hours=5))
    # Long before the period: counted nowhere.
    old = utc_now() - timedelta(days=60)
    failed_team(services, deal, people[7], started=old, failed=old + timedelta(hours=1))

    board = services.db.run_sync(
        lambda s: reports.merchant_dashboard(s, staff.principal, merchant.id, days=30)
    )

    assert (board.succeeded, board.failed) == (3, 1)
    assert board.success_rate == 0.75
    assert board.time_to_fill.teams == 3
    assert board.time_to_fill.median_seconds == 20 * 60
    assert board.time_to_fill.p90_seconds == 60 * 60


def test_only_confirmed_seats_of_this_merchant_and_deal_are_sales(services: Services) -> None:
    merchant = create_merchant(services.db)
    other = create_merchant(services.db)
    free_leader = past_deal(services, merchant, team_size=2, leader_price=0, title="Leader free")
    plain = past_deal(services, merchant, team_size=2, group_price=700, list_price=900)
    elsewhere = past_deal(services, other, team_size=2)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    people = [create_account(services) for _ in range(7)]
    at = utc_now() - timedelta(days=1)
    filled_team(services, free_leader, people[0:2], started=at, filled=at + timedelta(minutes=5))
    filled_team(services, plain, people[2:4], started=at, filled=at + timedelta(minutes=5))
    filled_team(services, elsewhere, people[4:6], started=at, filled=at + timedelta(minutes=5))
    failed_team(services, plain, people[6], started=at, failed=at + timedelta(hours=1))

    everything = services.db.run_sync(
        lambda s: reports.merchant_dashboard(s, staff.principal, merchant.id, days=3)
    )
    one_deal = services.db.run_sync(
        lambda s: reports.merchant_dashboard(
            s, staff.principal, merchant.id, days=3, deal_id=free_leader.id
        )
    )

    # The free leader seat sells for nothing; the failed team's paid seat was refunded.
    assert everything.total_sales("USD") == 1500 + 700 * 2
    assert one_deal.total_sales("USD") == 1500
    assert (one_deal.succeeded, one_deal.failed) == (1, 0)


def test_nearest_rank_percentiles_pick_real_values() -> None:
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([7], 0.9) == 7
    assert nearest_rank([1, 2, 3, 4], 0.5) == 2
    assert nearest_rank(list(range(1, 11)), 0.9) == 9
    assert nearest_rank(list(range(1, 12)), 0.9) == 10


def test_the_dashboard_endpoint_answers_days_in_the_merchants_zone(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="JPY", country="JP", time_zone="Asia/Tokyo")
    deal = past_deal(services, merchant, team_size=2, group_price=1200, list_price=2000)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    people = [create_account(services) for _ in range(2)]
    at = utc_now() - timedelta(hours=30)
    filled_team(services, deal, people, started=at, filled=at + timedelta(minutes=30))

    response = client.get(f"/v1/merchants/{merchant.id}/dashboard?days=3", headers=staff.headers)
    too_long = client.get(f"/v1/merchants/{merchant.id}/dashboard?days=400", headers=staff.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["time_zone"] == "Asia/Tokyo"
    assert len(body["days"]) == 3
    assert body["totals"]["sales"] == [{"amount": 2400, "currency": "JPY"}]
    assert body["totals"]["teams_succeeded"] == 1
    assert body["totals"]["success_rate"] == 1.0
    assert body["time_to_fill"]["median_seconds"] == 1800
    assert too_long.status_code == 422


# ---------------------------------------------------------------------------- teams


def test_teams_are_filtered_by_status_and_deal_and_found_by_member(
    services: Services,
) -> None:
    merchant = create_merchant(services.db)
    noodles = past_deal(services, merchant, title="Noodles")
    rice = past_deal(services, merchant, title="Rice")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    amy = create_account(services, name="Amy Lin", email="amy@example.com")
    bo = create_account(services, name="Bo Wang")
    cy = create_account(services, name="Cy")
    at = utc_now() - timedelta(days=1)
    won = filled_team(services, noodles, [amy, bo], started=at, filled=at + timedelta(minutes=9))
    lost = failed_team(services, rice, cy, started=at, failed=at + timedelta(hours=2))

    def teams_where(**filters: Any) -> list[str]:
        rows = services.db.run_sync(
            lambda s: reports.list_merchant_teams(
                s, staff.principal, merchant.id, TeamFilters(**filters), cursor=None, limit=10
            )
        )
        return [r.id for r in rows]

    assert teams_where() == [lost, won]
    assert teams_where(status=TeamStatus.SUCCEEDED) == [won]
    assert teams_where(deal_id=rice.id) == [lost]
    assert teams_where(text="bo wang") == [won]  # a member, not only the leader
    assert teams_where(text="AMY@EXAMPLE") == [won]
    assert teams_where(text=lost) == [lost]
    assert teams_where(text="%") == []  # wildcards are matched literally
    row = services.db.run_sync(
        lambda s: reports.merchant_team(s, staff.principal, merchant.id, won)
    )
    assert (row.deal_title, row.leader_name, row.paid, row.seats_left) == (
        "Noodles",
        "Amy Lin",
        2,
        0,
    )


def test_the_teams_endpoint_pages_with_a_cursor(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    deal = past_deal(services, merchant)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    at = utc_now() - timedelta(days=1)
    made = [
        failed_team(services, deal, create_account(services), started=at, failed=at)
        for _ in range(3)
    ]

    first = client.get(f"/v1/merchants/{merchant.id}/teams?limit=2", headers=staff.headers).json()
    second = client.get(
        f"/v1/merchants/{merchant.id}/teams?limit=2&cursor={first['next_cursor']}",
        headers=staff.headers,
    ).json()

    assert [t["id"] for t in first["data"] + second["data"]] == made[::-1]
    assert second["next_cursor"] is None
    assert first["data"][0]["status"] == "failed"


@pytest.mark.parametrize("path", ["teams", "orders", "refunds", "dashboard"])
def test_staff_of_another_merchant_cannot_read_this_merchants_reports(
    client: TestClient, services: Services, path: str
) -> None:
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    their_staff = create_account(services, role=Role.MERCHANT, merchant=theirs)
    shopper = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)

    as_other_staff = client.get(f"/v1/merchants/{mine.id}/{path}", headers=their_staff.headers)
    as_shopper = client.get(f"/v1/merchants/{mine.id}/{path}", headers=shopper.headers)
    anonymous = client.get(f"/v1/merchants/{mine.id}/{path}")
    as_operator = client.get(f"/v1/merchants/{mine.id}/{path}", headers=operator.headers)

    assert (as_other_staff.status_code, as_other_staff.json()["code"]) == (
        404,
        "merchant_not_found",
    )
    assert as_shopper.status_code == 404
    assert anonymous.status_code == 401
    assert as_operator.status_code == 200


def test_a_team_of_another_merchant_is_not_found_through_this_one(services: Services) -> None:
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=mine)
    at = utc_now() - timedelta(days=1)
    their_team = failed_team(
        services, past_deal(services, theirs), create_account(services), started=at, failed=at
    )
    operator = create_account(services, role=Role.OPERATOR)

    with pytest.raises(NotFound) as refused:
        services.db.run_sync(
            lambda s: reports.merchant_team(s, operator.principal, mine.id, their_team)
        )
    assert refused.value.code == "team_not_found"
    with pytest.raises(NotFound) as hidden:
        services.db.run_sync(
            lambda s: reports.merchant_team(s, staff.principal, theirs.id, their_team)
        )
    assert hidden.value.code == "merchant_not_found"


# ---------------------------------------------------------------------------- orders and refunds


def test_orders_show_each_seat_with_its_payments_and_can_be_searched(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3, title="Hotpot")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    leader = create_account(services, name="Lei Leader", email="lei@example.com")
    friend = create_account(services, name="Fay Friend")
    team = start_over_api(client, leader, deal.id)
    friend_seat = join_over_api(client, friend, team.team_id)
    payment_id = pay_over_api(client, leader, team.seat_id)

    def orders(**filters: Any) -> list[payment_reports.OrderRow]:
        return services.db.run_sync(
            lambda s: payment_reports.list_merchant_orders(
                s, staff.principal, merchant.id, OrderFilters(**filters), cursor=None, limit=10
            )
        )

    everything = orders()
    assert [o.id for o in everything] == [friend_seat.seat_id, team.seat_id]
    paid = everything[1]
    assert (paid.status, paid.shopper_email, paid.deal_title) == (
        "paid",
        "lei@example.com",
        "Hotpot",
    )
    assert [(p.id, p.status, p.provider) for p in paid.payments] == [
        (payment_id, "authorized", "sandbox")
    ]
    assert everything[0].payments == []
    assert [o.id for o in orders(status=SeatStatus.HELD)] == [friend_seat.seat_id]
    assert [o.id for o in orders(text="fay")] == [friend_seat.seat_id]
    assert [o.id for o in orders(text=team.seat_id)] == [team.seat_id]
    assert len(orders(text=team.team_id)) == 2
    assert len(orders(team_id=team.team_id, deal_id=deal.id)) == 2

    api = client.get(
        f"/v1/merchants/{merchant.id}/orders?status=paid", headers=staff.headers
    ).json()
    assert api["data"][0]["payments"][0]["amount"] == {"amount": 1500, "currency": "USD"}
    assert api["data"][0]["shopper"] == {"display_name": "Lei Leader", "email": "lei@example.com"}


def test_refunds_say_why_the_money_goes_back_and_whether_it_is_done(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    leader, quitter = create_account(services), create_account(services)
    team = start_over_api(client, leader, deal.id)
    quitter_seat = join_over_api(client, quitter, team.team_id)
    pay_over_api(client, leader, team.seat_id)
    pay_over_api(client, quitter, quitter_seat.seat_id)
    cancelled = client.post(f"/v1/seats/{quitter_seat.seat_id}/cancel", headers=quitter.headers)
    assert cancelled.status_code == 200, cancelled.text

    def refunds(state: RefundState | None = None) -> list[payment_reports.RefundRow]:
        return services.db.run_sync(
            lambda s: payment_reports.list_merchant_refunds(
                s, staff.principal, merchant.id, state=state, cursor=None, limit=10
            )
        )

    owed = refunds()
    assert [(r.reason, r.state, r.action) for r in owed] == [
        (RefundReason.SHOPPER_CANCELLED, RefundState.OWED, "void")
    ]

    clock.advance(timedelta(days=2))
    Worker(services).run_until_idle()

    done = refunds()
    assert [(r.reason, r.state) for r in done] == [  # newest payment first
        (RefundReason.SHOPPER_CANCELLED, RefundState.DONE),
        (RefundReason.TEAM_FAILED, RefundState.DONE),
    ]
    assert refunds(RefundState.OWED) == []
    api = client.get(f"/v1/merchants/{merchant.id}/refunds?state=done", headers=staff.headers)
    assert [r["reason"] for r in api.json()["data"]] == ["shopper_cancelled", "team_failed"]


def test_a_refund_whose_provider_call_keeps_failing_is_shown_as_failing(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=2)
    leader = create_account(services)
    team = start_over_api(client, leader, deal.id)
    payment_id = pay_over_api(client, leader, team.seat_id)
    assert (
        client.post(f"/v1/seats/{team.seat_id}/cancel", headers=leader.headers).status_code == 200
    )
    operator = create_account(services, role=Role.OPERATOR)

    def listed(state: RefundState) -> list[Any]:
        return services.db.run_sync(
            lambda s: payment_reports.list_all_refunds(
                s, operator.principal, state=state, cursor=None, limit=10
            )
        )

    # A void whose first call is under way (counted as taken) is owed, not failing
    limits = CallLimits.of(services.settings)
    services.db.run_sync(claim_due_actions, utc_now(), 10, PAYMENT_LEASE, limits)
    assert [(r.id, r.state) for r in listed(RefundState.OWED)] == [(payment_id, RefundState.OWED)]
    assert listed(RefundState.FAILING) == []

    # Given the provider has refused the void once already:
    services.db.run_sync(
        lambda s: s.execute(
            update(Payment)
            .where(Payment.id == payment_id)
            .values(attempts=1, last_error="provider timed out")
        )
    )
    failing = listed(RefundState.FAILING)

    assert [(r.id, r.state, r.last_error) for r in failing] == [
        (payment_id, RefundState.FAILING, "provider timed out")
    ]
