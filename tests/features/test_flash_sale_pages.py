"""Flash sales on the pages: the deal page counts down to the opening from the server's seconds
(a shopper's clock may be wrong) with its buttons off until then, a start form sent early says
why and changes nothing, and the merchant console's form makes flash sales of one per shopper."""

from __future__ import annotations

import re
from datetime import timedelta
from math import ceil

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from tests.console_data import HTML, csrf_of, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_merchant_console import console, deal_fields, field_error

NOT_STARTED = "This deal has not opened yet; the page counts down to its opening."


def opening_countdown(page: str) -> tuple[int, str]:
    """The seconds the page counts down from, and the text it shows for them."""
    found = re.search(
        r'<time class="countdown" datetime="[^"]+" data-opens-in="(\d+)"[^>]*>([^<]*)</time>', page
    )
    assert found, "the page has no countdown to the opening"
    return int(found.group(1)), found.group(2)


def count(services: Services, model: type[Team] | type[Seat] | type[Deal]) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(model))))


def test_before_its_opening_a_flash_sales_page_counts_down_with_its_buttons_off(
    client: TestClient, services: Services
) -> None:
    opening = utc_now() + timedelta(hours=2, minutes=3, seconds=5)
    deal = create_deal(
        services.db, create_merchant(services.db), stock=40, starts_at=opening, flash_sale=True
    )

    asked = utc_now()
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    answered = utc_now()

    seconds, shown = opening_countdown(page)
    # Rounded up, at the instant the page was made (however slow a loaded machine is).
    assert ceil((opening - answered).total_seconds()) <= seconds
    assert seconds <= ceil((opening - asked).total_seconds())
    assert shown == f"02:03:{seconds - 7380:02d}"
    assert "Opens in" in page
    assert "Opens on " in page
    assert '<span class="badge flash">Flash sale</span>' in page
    assert "One per shopper" in page
    assert "40 units left" in page
    assert 'type="button" disabled>Start a team $15.00</button>' in page
    assert f'action="/deals/{deal.id}/teams"' not in page
    assert f'action="/deals/{deal.id}/solo"' not in page
    assert "/static/opening.js?v=" in page


def test_a_deal_opening_days_away_counts_its_days_in_the_viewers_language(
    client: TestClient, services: Services
) -> None:
    opening = utc_now() + timedelta(days=3, hours=1, seconds=30)
    deal = create_deal(services.db, create_merchant(services.db), starts_at=opening)

    page = client.get(f"/deals/{deal.id}", headers={**HTML, "accept-language": "zh-CN"}).text

    seconds, shown = opening_countdown(page)
    assert seconds // 86400 == 3
    assert shown.startswith("3天 01:00:")
    assert "距开始还有" in page
    assert "秒杀" not in page  # not a flash sale: it only waits for its start


def test_a_start_form_sent_before_the_opening_says_so_and_takes_nothing_until_then(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(
        services.db,
        create_merchant(services.db),
        starts_at=utc_now() + timedelta(minutes=5),
        flash_sale=True,
    )
    log_in(client, create_account(services))
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    fields = {"csrf_token": csrf_of(page), "form_key": "early-start"}

    early = client.post(f"/deals/{deal.id}/teams", data=fields, headers=HTML)
    alone = client.post(
        f"/deals/{deal.id}/solo", data={**fields, "form_key": "early-solo"}, headers=HTML
    )

    assert early.status_code == 409
    assert NOT_STARTED in early.text
    assert opening_countdown(early.text)[0] <= 300
    assert alone.status_code == 409
    assert NOT_STARTED in alone.text
    assert (count(services, Team), count(services, Seat)) == (0, 0)

    clock.offset = timedelta(minutes=5, seconds=1)
    opened = client.get(f"/deals/{deal.id}", headers=HTML).text
    assert "data-opens-in" not in opened
    assert "/static/opening.js" not in opened
    start = re.search(
        rf'<form method="post" action="/deals/{deal.id}/teams".*?</form>', opened, re.S
    )
    assert start, "the opened deal has no start form"
    started = client.post(
        f"/deals/{deal.id}/teams",
        data=dict(re.findall(r'name="([^"]+)" value="([^"]*)"', start.group(0))),
        headers=HTML,
        follow_redirects=False,
    )

    assert started.status_code == 303, started.text
    assert "/sandbox/checkout/" in started.headers["location"]
    assert (count(services, Team), count(services, Seat)) == (1, 1)


def test_a_flash_sale_card_in_the_deal_list_carries_its_badge(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    create_deal(services.db, merchant, title="Flash hotpot", flash_sale=True)
    create_deal(services.db, merchant, title="Plain hotpot")

    page = client.get("/?sort=newest", headers=HTML).text

    assert page.count('<span class="badge flash card-flash">Flash sale</span>') == 1


def test_the_console_form_makes_a_flash_sale_of_one_per_shopper(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    new, deals = console(merchant.id, "/deals/new"), console(merchant.id, "/deals")

    form = client.get(new, headers=HTML).text
    two = form_post(client, new, deals, deal_fields(flash_sale="on", per_user_limit="2"))
    one = form_post(client, new, deals, deal_fields(flash_sale="on", per_user_limit="1"))

    assert "Flash sale (opens at the start time, one per shopper)" in form
    assert two.status_code == 422
    assert field_error(two.text, "per_user_limit") == (
        "A flash sale sells one unit to each shopper: set units per shopper to 1."
    )
    assert 'name="flash_sale" checked' in two.text
    assert one.status_code == 303, one.text
    made = services.db.run_sync(lambda s: s.scalars(select(Deal)).one())
    assert (made.flash_sale, made.per_user_limit) == (True, 1)
    listed = client.get(deals, headers=HTML).text
    assert '<span class="badge flash">Flash sale</span>' in listed


def test_the_console_says_a_flash_sale_is_one_per_shopper_in_chinese(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    speak_chinese(services, staff)
    log_in(client, staff)

    two = form_post(
        client,
        console(merchant.id, "/deals/new"),
        console(merchant.id, "/deals"),
        deal_fields(flash_sale="on", per_user_limit="2"),
    )

    assert two.status_code == 422
    assert field_error(two.text, "per_user_limit") == (
        "秒杀活动每人只能购买 1 件：请将每人限购数量设为 1。"  # noqa: RUF001 - Chinese punctuation
    )
    assert "秒杀（到开始时间才开抢，每人限购 1 件）" in two.text  # noqa: RUF001
    assert count(services, Deal) == 0
