"""The merchant console in a browser's shoes: who may open it, the deal editor and its inline
messages, publish / pause / end, teams, orders, refunds and the dashboard, in two languages."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.ledger import settlement
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import (
    HTML,
    failed_team,
    filled_team,
    form_post,
    join_over_api,
    log_in,
    past_deal,
    pay_over_api,
    speak_chinese,
    start_over_api,
)
from tests.factories import create_account, create_deal, create_merchant


def console(merchant_id: str, rest: str = "") -> str:
    return f"/console/merchants/{merchant_id}{rest}"


def deal_fields(**overrides: str) -> dict[str, str]:
    """A valid deal form as a person fills it in (prices in major units, local times)."""
    now = utc_now()
    fields = {
        "title": "Hotpot for four",
        "description": "All you can eat.",
        "vertical": "food",
        "list_price": "88.00",
        "group_price": "59.00",
        "leader_price": "",
        "team_size": "4",
        "team_window_minutes": "1440",
        "stock": "50",
        "per_user_limit": "2",
        "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
    }
    fields.update(overrides)
    return fields


def deal_count(services: Services) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Deal))))


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    assert found, f"no message next to {name}"
    return found.group(1)


# ---------------------------------------------------------------------------- who may see it


PAGES = ["", "/deals", "/deals/new", "/teams", "/orders", "/refunds", "/settlements"]


@pytest.mark.parametrize("rest", PAGES)
def test_staff_of_another_merchant_are_refused_every_page(
    client: TestClient, services: Services, rest: str
) -> None:
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=theirs))

    response = client.get(console(mine.id, rest), headers=HTML)

    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert mine.name not in response.text


def test_deals_and_teams_of_another_merchant_are_not_found_through_this_merchants_pages(
    client: TestClient, services: Services
) -> None:
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    their_deal = past_deal(services, theirs)
    at = utc_now() - timedelta(days=1)
    their_team = failed_team(services, their_deal, create_account(services), started=at, failed=at)
    staff = create_account(services, role=Role.MERCHANT, merchant=mine)
    log_in(client, staff)

    assert client.get(console(mine.id, f"/deals/{their_deal.id}"), headers=HTML).status_code in (
        403,
        404,
    )
    assert client.get(console(mine.id, f"/teams/{their_team}"), headers=HTML).status_code == 404
    assert client.get(console(theirs.id, f"/teams/{their_team}"), headers=HTML).status_code == 403

    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)
    assert client.get(console(mine.id, f"/deals/{their_deal.id}"), headers=HTML).status_code == 404
    assert (
        client.get(console(theirs.id, f"/deals/{their_deal.id}"), headers=HTML).status_code == 200
    )


def test_a_visitor_is_sent_to_log_in_and_a_shopper_is_refused(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)

    anonymous = client.get(console(merchant.id), headers=HTML, follow_redirects=False)
    log_in(client, create_account(services))
    shopper = client.get(console(merchant.id), headers=HTML)
    home = client.get("/console", headers=HTML, follow_redirects=False)

    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=/console/merchants/")
    assert shopper.status_code == 403
    assert home.status_code == 403


def test_the_console_entry_takes_staff_to_their_merchant(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    response = client.get("/console", headers=HTML, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == console(merchant.id)


# ---------------------------------------------------------------------------- the deal editor


def test_a_valid_deal_form_creates_a_draft_in_minor_units_and_merchant_time(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    fields = deal_fields(starts_at="2030-01-01T09:30", ends_at="2030-01-08T22:00")

    response = form_post(
        client, console(merchant.id, "/deals/new"), console(merchant.id, "/deals"), fields
    )

    assert response.status_code == 303, response.text
    deal = services.db.run_sync(lambda s: s.scalars(select(Deal)).one())
    assert response.headers["location"] == console(merchant.id, f"/deals/{deal.id}?done=created")
    assert (deal.status, deal.currency) == ("draft", "CNY")
    assert (deal.list_price_amount, deal.group_price_amount) == (8800, 5900)
    assert deal.starts_at.isoformat() == "2030-01-01T01:30:00+00:00"  # 09:30 in Shanghai
    page = client.get(response.headers["location"], headers=HTML).text
    assert "The deal is saved as a draft." in page
    assert 'value="2030-01-01T09:30"' in page


def test_deal_rules_are_shown_next_to_their_fields_and_nothing_is_created(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    fields = deal_fields(
        group_price="99.00", starts_at="2030-01-08T10:00", ends_at="2030-01-01T10:00"
    )

    response = form_post(
        client, console(merchant.id, "/deals/new"), console(merchant.id, "/deals"), fields
    )

    assert response.status_code == 422
    assert (
        field_error(response.text, "group_price") == "The group price must be below the list price."
    )
    assert field_error(response.text, "ends_at") == "The end must be after the start."
    assert 'id="deal-group_price" name="group_price" type="text" value="99.00"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert deal_count(services) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("team_size", "1", "A team has 2 to 100 members (1 only with a tipping point)."),
        ("title", "", "Enter a title of 1 to 200 characters."),
        ("list_price", "ten dollars", "Enter an amount like 19.99, with at most 2 decimals."),
        ("list_price", "19.999", "Enter an amount like 19.99, with at most 2 decimals."),
        ("starts_at", "tomorrow", "Enter the start as a date and time."),
    ],
)
def test_the_api_schema_limits_are_shown_next_to_their_fields(
    client: TestClient, services: Services, field: str, value: str, message: str
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    response = form_post(
        client,
        console(merchant.id, "/deals/new"),
        console(merchant.id, "/deals"),
        deal_fields(**{field: value}),
    )

    assert response.status_code == 422
    assert field_error(response.text, field) == message
    assert deal_count(services) == 0


def test_validation_messages_are_in_chinese_for_a_chinese_account(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="JPY", country="JP", time_zone="Asia/Tokyo")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    speak_chinese(services, staff)
    log_in(client, staff)

    response = form_post(
        client,
        console(merchant.id, "/deals/new"),
        console(merchant.id, "/deals"),
        deal_fields(list_price="1000", group_price="1000.5"),
    )

    assert response.status_code == 422
    assert field_error(response.text, "group_price") == "请输入类似 1999 的金额，最多 0 位小数。"  # noqa: RUF001
    assert "新建活动" in response.text
    assert '<html lang="zh-Hans">' in response.text


def test_a_deal_form_without_its_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    client.get(console(merchant.id, "/deals/new"), headers=HTML)  # the browser has its nonce

    missing = client.post(console(merchant.id, "/deals"), data=deal_fields(), headers=HTML)
    forged = client.post(
        console(merchant.id, "/deals"), data={**deal_fields(), "csrf_token": "0" * 64}, headers=HTML
    )

    assert missing.status_code == forged.status_code == 403
    assert "csrf_failed" in missing.text
    assert deal_count(services) == 0


def test_one_deal_form_submitted_twice_creates_one_deal(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    page = client.get(console(merchant.id, "/deals/new"), headers=HTML).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    data = {**deal_fields(), "csrf_token": token.group(1), "form_key": "same-form"}

    first = client.post(
        console(merchant.id, "/deals"), data=data, headers=HTML, follow_redirects=False
    )
    again = client.post(
        console(merchant.id, "/deals"), data=data, headers=HTML, follow_redirects=False
    )

    assert first.headers["location"] == again.headers["location"]
    assert deal_count(services) == 1


def test_publish_pause_and_end_move_the_deal_through_its_states(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, live=False)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    page = console(merchant.id, f"/deals/{deal.id}")

    statuses = []
    for action in ("publish", "pause", "publish", "end"):
        why = {"reason": f"Testing {action}"}
        response = form_post(client, page, f"{console(merchant.id)}/deals/{deal.id}/{action}", why)
        assert response.status_code == 303, response.text
        assert response.headers["location"].endswith(f"?done={action}")
        statuses.append(services.db.run_sync(lambda s: s.get(Deal, deal.id).status))

    assert statuses == ["live", "paused", "live", "ended"]
    ended = client.get(page, headers=HTML).text
    assert "This deal has ended; it can no longer change." in ended
    assert f"/deals/{deal.id}/publish" not in ended


def test_a_deal_of_an_unapproved_merchant_cannot_go_live_and_the_page_says_why(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, approved=False)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    created = form_post(
        client, console(merchant.id, "/deals/new"), console(merchant.id, "/deals"), deal_fields()
    )
    deal_page = created.headers["location"].split("?")[0]

    refused = form_post(client, deal_page, deal_page + "/publish", {})

    assert refused.status_code == 409
    assert "An operator must approve this merchant before its deals can go live." in refused.text
    assert services.db.run_sync(lambda s: s.scalars(select(Deal.status)).one()) == "draft"


def test_a_live_deal_changes_its_copy_but_keeps_its_prices(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, title="Dumplings")
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    page = console(merchant.id, f"/deals/{deal.id}")
    editor = client.get(page, headers=HTML).text
    assert re.search(r'name="group_price" type="text" value="15.00"[^>]* disabled', editor)

    saved = form_post(client, page, page, {"title": "Dumplings for four", "stock": "80"})
    sneaked = form_post(client, page, page, {"title": "Dumplings for four", "group_price": "1.00"})

    assert saved.status_code == 303
    kept = services.db.run_sync(lambda s: s.get(Deal, deal.id))
    assert (kept.title, kept.stock, kept.group_price_amount) == ("Dumplings for four", 80, 1500)
    assert sneaked.status_code == 409
    assert (
        field_error(sneaked.text, "group_price") == "This cannot change once the deal is published."
    )


# ---------------------------------------------------------------------------- what happened


def test_teams_orders_and_refunds_show_what_shoppers_did(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3, title="Hotpot")
    leader = create_account(services, name="Lei Leader", email="lei@example.com")
    friend = create_account(services, name="Fay Friend")
    quitter = create_account(services, name="Quinn Quits")
    team = start_over_api(client, leader, deal.id)
    pay_over_api(client, leader, team.seat_id)
    joined = join_over_api(client, friend, team.team_id)
    opened = client.post(f"/v1/seats/{joined.seat_id}/payments", json={}, headers=friend.headers)
    assert opened.status_code == 201  # a checkout opened, not paid yet: the worker will ask
    gone = join_over_api(client, quitter, team.team_id)
    pay_over_api(client, quitter, gone.seat_id)
    assert (
        client.post(f"/v1/seats/{gone.seat_id}/cancel", headers=quitter.headers).status_code == 200
    )
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    teams = client.get(console(merchant.id, "/teams?status=forming&text=fay"), headers=HTML)
    none = client.get(console(merchant.id, "/teams?status=failed"), headers=HTML)
    detail = client.get(console(merchant.id, f"/teams/{team.team_id}"), headers=HTML)
    orders = client.get(console(merchant.id, "/orders?text=lei%40example"), headers=HTML)
    refunds = client.get(console(merchant.id, "/refunds"), headers=HTML)

    assert team.team_id in teams.text
    assert "Lei Leader" in teams.text
    assert "No teams match." in none.text
    assert all(name in detail.text for name in ("Lei Leader", "Fay Friend", "Quinn Quits"))
    assert "Authorised (held)" in detail.text
    assert "(asking the provider)" in detail.text
    assert "lei@example.com" in orders.text
    assert "Fay Friend" not in orders.text
    assert "Quinn Quits" in refunds.text
    assert "Shopper cancelled" in refunds.text
    assert "Release the hold" in refunds.text


def test_the_dashboard_draws_its_charts_and_figures_in_the_merchants_days(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = past_deal(services, merchant, team_size=2)
    people = [create_account(services) for _ in range(3)]
    at = utc_now() - timedelta(days=2)
    filled_team(services, deal, people[:2], started=at, filled=at + timedelta(minutes=20))
    failed_team(services, deal, people[2], started=at, failed=at + timedelta(hours=4))
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    page = client.get(console(merchant.id, "?days=7"), headers=HTML)

    assert page.status_code == 200
    assert page.text.count('role="img"') == 4  # each chart drawn for phones and for desktops
    assert '<title id="sales-chart-wide-title">Sales per day</title>' in page.text
    assert '<title id="rate-chart-narrow-title">Team success rate per day</title>' in page.text
    assert "$30.00" in page.text  # two confirmed seats at 15.00
    assert "50%" in page.text
    assert "20 minutes" in page.text
    assert "<script>" not in page.text
    assert " style=" not in page.text


def test_the_dashboard_speaks_chinese_with_the_merchants_currency(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    deal = past_deal(services, merchant, team_size=2, group_price=9900, list_price=12900)
    people = [create_account(services) for _ in range(2)]
    at = utc_now() - timedelta(days=1)
    filled_team(services, deal, people, started=at, filled=at + timedelta(minutes=45))
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    speak_chinese(services, staff)
    log_in(client, staff)

    page = client.get(console(merchant.id), headers=HTML).text

    assert "每日销售额" in page
    assert "成团率" in page
    assert "¥198.00" in page
    assert "45分钟" in page
    assert "商家后台" in page


def test_settlements_show_what_the_merchant_is_owed_per_business_day(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, time_zone="Asia/Tokyo", currency="JPY", country="JP")
    deal = create_deal(services.db, merchant, team_size=2, list_price=3000, group_price=2000)
    shoppers = [create_account(services) for _ in range(2)]
    team = start_over_api(client, shoppers[0], deal.id)
    pay_over_api(client, shoppers[0], team.seat_id)
    pay_over_api(client, shoppers[1], join_over_api(client, shoppers[1], team.team_id).seat_id)
    Worker(services).run_until_idle()  # the holds are captured: the merchant earned
    today = utc_now().astimezone(ZoneInfo("Asia/Tokyo")).date()
    clock.advance(timedelta(days=2))
    written = services.db.run_sync(lambda s: settlement.settle_day(s, merchant.id, today))
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    page = client.get(console(merchant.id, "/settlements"), headers=HTML)

    assert written == 1
    assert page.status_code == 200
    assert "Owed to you now" in page.text
    assert "¥4,000" in page.text  # the day's gross: two seats at 2,000 yen
