"""Growth analytics against a dataset whose every figure is counted by hand below.

The story, on deal D1 (teams of 3) unless said otherwise; times UTC, W49 = week of Mon 30 Nov
2026, W50 = week of Mon 7 Dec:

Mon W49 10:00 Alice starts team T1, pays 10:05; shares it on wechat (S1, 10:10) and whatsapp
       (S2, 10:11). WhatsApp's preview bot opens S2 (10:12), Alice opens S1 herself (11:30).
       Bob opens S1 (11:00, CN), signs in, joins T1 12:00, pays 12:05.
       Carol opens S2 (13:00, US), signs in, joins T1 13:30, pays 13:35: T1 fills (3h35m).
       Dan opens S1 (14:00, CN) and buys nothing.
       Alice shares deal D2 (another merchant) by sms (S5, 15:00); it is opened once (CN).
Tue W49 Bob shares D1 on wechat (S3, 09:00). Erin opens it (10:00, CN), starts T2 10:30, pays
       10:35. T2 never fills and fails on Wednesday.
Mon W50 Alice shares D1 on wechat (S4, 09:00). Frank opens it (10:00, US), starts T3 10:10,
       pays 10:15. T3 fails on Tuesday.
Tue W50 Gina opens S1 (09:00, CN) and buys nothing.

Hand counts for D1. Cohort = week the share was made: W49 holds S1-S3, W50 holds S4.
  shares 4 (W49 3, W50 1); qualifying visits 6: Bob, Dan, Carol, Erin, Gina (W49: 5) and
  Frank (W50: 1) — the bot and Alice's own visit do not count.
  orders: starts Erin, Frank; joins Bob, Carol. paid 4. successes 2 (Bob, Carol).
  buyers (paid orders of any source) by payment week: W49 Alice Bob Carol Erin = 4, W50 Frank.
  K = S/B x A/S: all 4/5 x 4/4 = 0.8; W49 3/4 x 3/3 = 0.75; W50 1/1 x 1/1 = 1.
  per channel (B is every buyer, 5): wechat 3/5 x 3/3 = 0.6, whatsapp 1/5 x 1/1 = 0.2.
  cycle = brought payment - the sharer's latest payment before it:
    Bob 12:05 - Alice 10:05 = 7200 s; Carol 13:35 - 10:05 = 12600 s;
    Erin Tue 10:35 - Bob Mon 12:05 = 81000 s; Frank Mon W50 10:15 - Alice Mon W49 10:05 =
    7 d 10 min = 605400 s. Median of all four (12600 + 81000) / 2 = 46800; W49 12600.
  teams: T1 succeeded, T2 and T3 failed: success rate 1/3 (W49 1/2, W50 0); fill 12900 s.
  decay by calendar week: wechat visits W49 Bob Dan Erin = 3, W50 Frank Gina = 2 (ratio 2/3),
  paid W49 Bob Erin = 2, W50 Frank = 1 (0.5); whatsapp W49 1 and 1, W50 0 and 0 (0.0).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.domain.traffic import Channel
from pintuan.growth.models import GrowthRollup
from pintuan.growth.service import rollup_day
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import PASSWORD, Account, create_account, create_merchant
from tests.features.sharing import (
    WHATSAPP_PREVIEW,
    join,
    long_deal,
    move_to,
    pay,
    share,
    sign_in,
    start,
    visit,
)

W49 = datetime(2026, 11, 30, tzinfo=UTC)
W50 = W49 + timedelta(days=7)


def at(week: datetime, day: int, hour: int, minute: int = 0) -> None:
    move_to(week + timedelta(days=day, hours=hour, minutes=minute))


@dataclass
class Story:
    d1: Deal
    d2: Deal
    m1: Merchant
    m2: Merchant
    alice: Account
    s1: str


def tell_the_story(services: Services) -> Story:
    at(W49, 0, 9)
    m1, m2 = create_merchant(services.db), create_merchant(services.db)
    d1, d2 = long_deal(services, m1, team_size=3), long_deal(services, m2)
    alice, bob, carol, erin, frank = (create_account(services) for _ in range(5))

    at(W49, 0, 10)
    t1 = start(services, alice, d1.id)
    at(W49, 0, 10, 5)
    pay(services, t1.seat.id)
    at(W49, 0, 10, 10)
    s1 = share(services, alice, team_id=t1.team_id, channel=Channel.WECHAT)
    at(W49, 0, 10, 11)
    s2 = share(services, alice, team_id=t1.team_id, channel=Channel.WHATSAPP)
    at(W49, 0, 10, 12)
    visit(services, s2, user_agent=WHATSAPP_PREVIEW)
    at(W49, 0, 11)
    bobs_phone = visit(services, s1, country="CN")
    at(W49, 0, 11, 30)
    visit(services, s1, user=alice)
    at(W49, 0, 11, 55)
    sign_in(services, bobs_phone, bob)
    at(W49, 0, 12)
    bobs_seat = join(services, bob, t1.team_id)
    at(W49, 0, 12, 5)
    pay(services, bobs_seat.id)
    at(W49, 0, 13)
    carols_phone = visit(services, s2, country="US")
    at(W49, 0, 13, 20)
    sign_in(services, carols_phone, carol)
    at(W49, 0, 13, 30)
    carols_seat = join(services, carol, t1.team_id)
    at(W49, 0, 13, 35)
    assert pay(services, carols_seat.id).team_succeeded
    at(W49, 0, 14)
    visit(services, s1, country="CN")
    at(W49, 0, 15)
    s5 = share(services, alice, deal_id=d2.id, channel=Channel.SMS)
    at(W49, 0, 15, 10)
    visit(services, s5, country="CN")

    at(W49, 1, 9)
    s3 = share(services, bob, deal_id=d1.id, channel=Channel.WECHAT)
    at(W49, 1, 10)
    erins_phone = visit(services, s3, country="CN")
    at(W49, 1, 10, 20)
    sign_in(services, erins_phone, erin)
    at(W49, 1, 10, 30)
    t2 = start(services, erin, d1.id)
    at(W49, 1, 10, 35)
    pay(services, t2.seat.id)

    at(W49, 2, 12)
    Worker(services).run_until_idle()  # fails T2; rolls up Monday and Tuesday

    at(W50, 0, 9)
    s4 = share(services, alice, deal_id=d1.id, channel=Channel.WECHAT)
    at(W50, 0, 10)
    franks_phone = visit(services, s4, country="US")
    at(W50, 0, 10, 5)
    sign_in(services, franks_phone, frank)
    at(W50, 0, 10, 10)
    t3 = start(services, frank, d1.id)
    at(W50, 0, 10, 15)
    pay(services, t3.seat.id)
    at(W50, 1, 9)
    visit(services, s1, country="CN")

    at(W50, 1, 12)
    Worker(services).run_until_idle()  # fails T3
    at(W50, 10, 12)
    Worker(services).run_until_idle()  # rolls up everything left
    return Story(d1, d2, m1, m2, alice, s1.id)


@pytest.fixture
def story(services: Services) -> Story:
    return tell_the_story(services)


@pytest.fixture
def operator(services: Services) -> Account:
    return create_account(services, role=Role.OPERATOR)


def get(client: TestClient, account: Account, path: str, **params: Any) -> Any:
    response = client.get(f"/v1/growth/{path}", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def funnel_numbers(row: dict[str, Any]) -> tuple[int, ...]:
    keys = ("shares", "visits", "starts", "joins", "orders", "paid", "successes")
    return tuple(row[k] for k in keys)


def test_the_funnel_matches_the_hand_count(
    client: TestClient, story: Story, operator: Account
) -> None:
    (total,) = get(client, operator, "funnel", deal_id=story.d1.id)["data"]

    assert funnel_numbers(total) == (4, 6, 2, 2, 4, 4, 2)
    assert total["visits_per_share"] == 6 / 4
    assert total["orders_per_visit"] == 4 / 6
    assert total["paid_per_order"] == 1.0
    assert total["successes_per_paid"] == 2 / 4
    assert total["teams"] == {
        "succeeded": 1,
        "failed": 2,
        "success_rate": 1 / 3,
        "median_time_to_fill_seconds": 12900.0,
    }


def test_the_funnel_by_cohort_week_channel_and_country_matches_the_hand_count(
    client: TestClient, story: Story, operator: Account
) -> None:
    by_week = get(client, operator, "funnel", deal_id=story.d1.id, group_by="week")["data"]
    by_channel = get(client, operator, "funnel", deal_id=story.d1.id, group_by="channel")
    by_country = get(client, operator, "funnel", deal_id=story.d1.id, group_by="country")

    assert {r["group"]: funnel_numbers(r) for r in by_week} == {
        "2026-W49": (3, 5, 1, 2, 3, 3, 2),
        "2026-W50": (1, 1, 1, 0, 1, 1, 0),
    }
    assert {r["group"]: r["teams"]["success_rate"] for r in by_week} == {
        "2026-W49": 0.5,
        "2026-W50": 0.0,
    }
    assert {r["group"]: funnel_numbers(r) for r in by_channel["data"]} == {
        "wechat": (3, 5, 2, 1, 3, 3, 1),
        "whatsapp": (1, 1, 0, 1, 1, 1, 1),
    }
    assert {r["group"]: funnel_numbers(r) for r in by_country["data"]} == {
        "CN": (4, 4, 1, 1, 2, 2, 1),
        "US": (0, 2, 1, 1, 2, 2, 1),
    }


def test_week_and_channel_filters_narrow_the_funnel(
    client: TestClient, story: Story, operator: Account
) -> None:
    (w50,) = get(client, operator, "funnel", deal_id=story.d1.id, **{"from": "2026-W50"})["data"]
    (wechat_w49,) = get(
        client,
        operator,
        "funnel",
        deal_id=story.d1.id,
        channel="wechat",
        **{"from": "2026-W49", "to": "2026-W49"},
    )["data"]

    assert funnel_numbers(w50) == (1, 1, 1, 0, 1, 1, 0)
    # S1 (Bob, Dan, Gina visit; Bob joins, pays, succeeds) and S3 (Erin starts and pays).
    assert funnel_numbers(wechat_w49) == (2, 4, 1, 1, 2, 2, 1)


def test_the_k_factor_and_cycle_time_match_the_hand_count(
    client: TestClient, story: Story, operator: Account
) -> None:
    (total,) = get(client, operator, "k-factor", deal_id=story.d1.id)["data"]
    by_week = get(client, operator, "k-factor", deal_id=story.d1.id, group_by="week")["data"]
    by_channel = get(client, operator, "k-factor", deal_id=story.d1.id, group_by="channel")

    assert total == {
        "group": None,
        "shares": 4,
        "buyers": 5,
        "brought": 4,
        "shares_per_buyer": 4 / 5,
        "buyers_per_share": 1.0,
        "k_factor": 4 / 5,
        "median_cycle_seconds": 46800.0,
        "cycles": 4,
    }
    assert {r["group"]: (r["k_factor"], r["median_cycle_seconds"]) for r in by_week} == {
        "2026-W49": (3 / 4, 12600.0),
        "2026-W50": (1.0, 605400.0),
    }
    channels = {r["group"]: r for r in by_channel["data"]}
    assert (channels["wechat"]["shares_per_buyer"], channels["wechat"]["k_factor"]) == (0.6, 0.6)
    assert channels["wechat"]["median_cycle_seconds"] == 81000.0
    assert (channels["whatsapp"]["k_factor"], channels["whatsapp"]["median_cycle_seconds"]) == (
        0.2,
        12600.0,
    )


def test_channel_decay_matches_the_hand_count(
    client: TestClient, story: Story, operator: Account
) -> None:
    decay = get(client, operator, "channels", deal_id=story.d1.id)["data"]

    assert decay == [
        {
            "channel": "wechat",
            "weeks": [
                {
                    "week": "2026-W49",
                    "visits": 3,
                    "conversions": 2,
                    "visits_ratio": None,
                    "conversions_ratio": None,
                },
                {
                    "week": "2026-W50",
                    "visits": 2,
                    "conversions": 1,
                    "visits_ratio": 2 / 3,
                    "conversions_ratio": 0.5,
                },
            ],
        },
        {
            "channel": "whatsapp",
            "weeks": [
                {
                    "week": "2026-W49",
                    "visits": 1,
                    "conversions": 1,
                    "visits_ratio": None,
                    "conversions_ratio": None,
                },
                {
                    "week": "2026-W50",
                    "visits": 0,
                    "conversions": 0,
                    "visits_ratio": 0.0,
                    "conversions_ratio": 0.0,
                },
            ],
        },
    ]


def test_reports_export_as_csv(client: TestClient, story: Story, operator: Account) -> None:
    funnel = client.get(
        "/v1/growth/funnel",
        params={"deal_id": story.d1.id, "group_by": "week", "format": "csv"},
        headers=operator.headers,
    )
    channels = client.get(
        "/v1/growth/export.csv",
        params={"report": "channels", "deal_id": story.d1.id},
        headers=operator.headers,
    )

    assert funnel.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(funnel.text)))
    assert [(r["group"], r["visits"], r["teams_failed"]) for r in rows] == [
        ("2026-W49", "5", "1"),
        ("2026-W50", "1", "1"),
    ]
    decay = list(csv.DictReader(io.StringIO(channels.text)))
    assert [(r["channel"], r["week"], r["visits"]) for r in decay] == [
        ("wechat", "2026-W49", "3"),
        ("wechat", "2026-W50", "2"),
        ("whatsapp", "2026-W49", "1"),
        ("whatsapp", "2026-W50", "0"),
    ]


def test_merchant_staff_read_only_their_own_deals(
    client: TestClient, services: Services, story: Story, operator: Account
) -> None:
    staff = create_account(services, role=Role.MERCHANT, merchant=story.m2)
    shopper = create_account(services)

    (own,) = get(client, staff, "funnel")["data"]
    (everything,) = get(client, operator, "funnel")["data"]
    other_deal = client.get(
        "/v1/growth/funnel", params={"deal_id": story.d1.id}, headers=staff.headers
    )
    other_merchant = client.get(
        "/v1/growth/k-factor", params={"merchant_id": story.m1.id}, headers=staff.headers
    )
    as_shopper = client.get("/v1/growth/channels", headers=shopper.headers)
    anonymous = client.get("/v1/growth/funnel")

    assert (own["shares"], own["visits"]) == (1, 1)
    assert (everything["shares"], everything["visits"]) == (5, 7)
    assert (other_deal.status_code, other_deal.json()["code"]) == (404, "deal_not_found")
    assert (other_merchant.status_code, other_merchant.json()["code"]) == (
        403,
        "not_merchant_staff",
    )
    assert as_shopper.status_code == 403
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


def test_bad_filters_are_refused_with_the_field_named(
    client: TestClient, operator: Account
) -> None:
    week = client.get("/v1/growth/funnel", params={"from": "last week"}, headers=operator.headers)
    order = client.get(
        "/v1/growth/funnel", params={"from": "2026-W50", "to": "2026-W49"}, headers=operator.headers
    )
    channel = client.get(
        "/v1/growth/funnel", params={"channel": "myspace"}, headers=operator.headers
    )

    assert (week.status_code, week.json()["errors"][0]["field"]) == (422, "from")
    assert (order.status_code, order.json()["errors"][0]["field"]) == (422, "to")
    assert (channel.status_code, channel.json()["errors"][0]["field"]) == (422, "channel")


def test_the_worker_rolls_up_each_past_day_once(services: Services, story: Story) -> None:
    days = services.db.run_sync(lambda s: s.scalars(select(GrowthRollup.day)).all())
    worker = Worker(services)
    again_today = worker.tick().days_rolled_up + worker.tick().days_rolled_up
    at(W50, 11, 0, 30)
    next_day = worker.tick().days_rolled_up

    # From the first order (Mon 30 Nov) to the day before the last run (Wed 16 Dec).
    assert sorted(days) == [date(2026, 11, 30) + timedelta(days=n) for n in range(17)]
    assert again_today == 0
    assert next_day == 1


def test_deleting_a_share_keeps_the_aggregates_and_a_second_roll_up_changes_nothing(
    client: TestClient, services: Services, story: Story, operator: Account
) -> None:
    before = get(client, operator, "funnel", deal_id=story.d1.id, group_by="channel")

    deleted = client.delete(f"/v1/me/shares/{story.s1}", headers=story.alice.headers)
    for day in (date(2026, 11, 30), date(2026, 12, 8)):
        services.db.run_sync(lambda s, d=day: rollup_day(s, d, utc_now()))
    after = get(client, operator, "funnel", deal_id=story.d1.id, group_by="channel")
    history = client.get("/v1/me/shares", headers=story.alice.headers).json()["data"]

    assert deleted.status_code == 204
    assert story.s1 not in [s["id"] for s in history]
    assert after == before


def log_in(client: TestClient, account: Account) -> None:
    response = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 201, response.text


def test_the_consoles_growth_pages_chart_the_same_figures(
    client: TestClient, services: Services, story: Story, operator: Account
) -> None:
    staff = create_account(services, role=Role.MERCHANT, merchant=story.m1)
    shopper = create_account(services)
    log_in(client, staff)
    merchant_page = client.get(f"/console/merchants/{story.m1.id}/growth", params={"weeks": 26})
    elsewhere = client.get(f"/console/merchants/{story.m2.id}/growth")
    client.cookies.clear()
    log_in(client, operator)
    operator_page = client.get("/console/operator/growth", params={"weeks": "26"})
    client.cookies.clear()
    log_in(client, shopper)
    refused = client.get("/console/operator/growth")

    assert merchant_page.status_code == 200, merchant_page.text
    html = merchant_page.text
    assert 'id="funnel-chart-title"' in html
    assert 'id="k-chart-title"' in html
    assert 'id="channel-wechat-chart-title"' in html
    assert '<dd class="kpi-value">0.8</dd>' in html  # K of deal D1, the merchant's only deal
    assert f"/v1/growth/export.csv?report=funnel&amp;merchant_id={story.m1.id}" in html
    assert elsewhere.status_code == 403
    assert operator_page.status_code == 200
    assert 'id="channel-sms-chart-title"' in operator_page.text  # the other merchant's deal too
    assert refused.status_code == 403
