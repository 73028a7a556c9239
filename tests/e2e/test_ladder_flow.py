"""Ladder teams, tipping points and honest auto-fill in a real browser at 375 px, in English
and Chinese, with the worker running in the server's process: a shopper starts a ladder team,
reads on its page the tier reached and what one more member would bring, and once the top tier
fills reads the final price; on a tipping deal of teams of one, the shopper's paid purchase
waits for the deal to tip, and succeeds when another shopper's payment tips it; a team one seat
short at its window's end is filled by the merchant's budget, and its page says so. The phone
pages scroll down only, and axe finds no serious or critical problem on them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from pintuan.domain.autofill import AutoFill, FundedBy
from pintuan.domain.ladder import Tier
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import fits_the_width
from tests.e2e.test_mechanics_flow import api, pay_over_api
from tests.e2e.test_solo_and_sharing import LANGUAGES, Language
from tests.factories import create_account, create_deal, create_merchant

WORDS = {
    "en": {
        "ladder": "Ladder team: the more members, the lower everyone's price.",
        "tier_2": "Tier reached: 2 paid members",
        "one_more": "1 more and everyone pays",
        "complete": "Team complete at",
        "tipping": "Tipping point: this deal sells only if 2 seats are paid by its end",
        "waiting": "It succeeds when the deal tips: 1 of 2 seats paid so far.",
        "tipped": "Tipped: 2 seats were paid, so this deal sells.",
        "fill": "A team that ends 1 paid seat short still succeeds",
        "filled": "Filled by {merchant}",
    },
    "zh": {
        "ladder": "阶梯团：人越多，每人价格越低。",  # noqa: RUF001
        "tier_2": "已达阶梯：2 人已付款",  # noqa: RUF001
        "one_more": "再来 1 人，每人只需",  # noqa: RUF001
        "complete": "拼团成功，每人",  # noqa: RUF001
        "tipping": "成团门槛：活动结束前须有 2 个名额付款才成交",  # noqa: RUF001
        "waiting": "目前已付款 1 / 2 个名额。",
        "tipped": "已达门槛：2 个名额已付款，活动成交。",  # noqa: RUF001
        "fill": "拼团结束时最多差 1 个已付款名额",
        "filled": "由{merchant}补位",
    },
}


def merchant_of(services: Services, lang: Language) -> Merchant:
    """A merchant selling in the language's market (its currency, country and zone)."""
    return create_merchant(
        services.db, currency=lang.currency, country=lang.country, time_zone=lang.time_zone
    )


def signed_up(browser: Browser, server: LiveServer, lang: Language, email: str) -> Shopper:
    shopper = Shopper(browser, server.url, locale=lang.locale, timezone_id=lang.time_zone)
    shopper.sign_up(lang.names[0], email)
    return shopper


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_ladder_team_shows_its_tier_and_the_next_then_its_final_price(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    words, services = WORDS[lang.tag], live_server.services
    merchant = merchant_of(services, lang)
    deal = create_deal(services.db, merchant, title="Hotpot", team_size=2, ladder=(Tier(3, 1300),))
    amy = signed_up(browser, live_server, lang, f"amy-ladder-{lang.tag}@example.com")
    problems: list[dict[str, Any]] = []

    page = amy.open(f"/deals/{deal.id}")
    expect(page.locator(".mechanic-ladder")).to_contain_text(words["ladder"])
    expect(page.locator(".ladder-tiers li")).to_have_count(2)
    fits_the_width(page)
    problems += blocking_violations(page)
    page.get_by_role("button", name=lang.words["start"]).click()
    amy.pay_on_sandbox()
    team_url = amy.page.url
    team_id = re.search(r"/teams/([^/?#]+)", team_url)
    assert team_id is not None

    ben, cai = create_account(services), create_account(services)
    with api(live_server, ben) as client:
        joined = client.post(f"/v1/teams/{team_id.group(1)}/seats")
        assert joined.status_code == 201, joined.text
        pay_over_api(client, joined.json()["seat"]["id"])
    page = amy.open(f"/teams/{team_id.group(1)}")
    progress = page.locator("#ladder-progress")
    expect(progress).to_contain_text(words["tier_2"])
    expect(progress).to_contain_text(words["one_more"])
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"ladder-secured-{lang.tag}")

    with api(live_server, cai) as client:
        joined = client.post(f"/v1/teams/{team_id.group(1)}/seats")
        assert joined.status_code == 201, joined.text
        pay_over_api(client, joined.json()["seat"]["id"])
    reload_until(page, words["complete"])
    expect(page.locator(".status-banner.good")).to_contain_text("13.00")
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"ladder-complete-{lang.tag}")
    amy.close()
    assert problems == [], [p["targets"] for p in problems]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_paid_purchase_waits_for_the_deal_to_tip_then_succeeds(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    words, services = WORDS[lang.tag], live_server.services
    merchant = merchant_of(services, lang)
    deal = create_deal(
        services.db, merchant, title="Tea", team_size=1, tipping_point=2, allow_solo=False
    )
    amy = signed_up(browser, live_server, lang, f"amy-tipping-{lang.tag}@example.com")
    problems: list[dict[str, Any]] = []

    page = amy.open(f"/deals/{deal.id}")
    expect(page.locator(".mechanic-tipping")).to_contain_text(words["tipping"])
    fits_the_width(page)
    problems += blocking_violations(page)
    page.get_by_role("button", name=lang.words["start"]).click()
    amy.pay_on_sandbox()
    page = amy.page
    expect(page.locator("#tipping-banner")).to_contain_text(words["waiting"])
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"tipping-waiting-{lang.tag}")

    ben = create_account(services)
    with api(live_server, ben) as client:
        started = client.post(f"/v1/deals/{deal.id}/teams")
        assert started.status_code == 201, started.text
        pay_over_api(client, started.json()["seat"]["id"])
    reload_until(page, words["tipped"])
    expect(page.locator(".status-banner.good")).to_be_visible()
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"tipping-tipped-{lang.tag}")
    amy.close()
    assert problems == [], [p["targets"] for p in problems]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_team_one_seat_short_is_filled_by_the_merchant_and_says_so(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    words, services = WORDS[lang.tag], live_server.services
    merchant = merchant_of(services, lang)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    with api(live_server, staff) as client:
        limit = client.put(
            f"/v1/merchants/{merchant.id}/fill-budget",
            json={"limit": {"amount": 5000, "currency": lang.currency}},
        )
        assert limit.status_code == 200, limit.text
    deal = create_deal(
        services.db,
        merchant,
        title="Dumplings",
        team_size=2,
        auto_fill=AutoFill(1, FundedBy.MERCHANT),
    )
    amy = signed_up(browser, live_server, lang, f"amy-fill-{lang.tag}@example.com")
    problems: list[dict[str, Any]] = []

    page = amy.open(f"/deals/{deal.id}")
    expect(page.locator(".mechanic-fill")).to_contain_text(words["fill"])
    fits_the_width(page)
    problems += blocking_violations(page)
    page.get_by_role("button", name=lang.words["start"]).click()
    amy.pay_on_sandbox()
    page = amy.page

    clock.advance(timedelta(minutes=deal.team_window_minutes + 1))
    filled = words["filled"].format(merchant=merchant.name)
    reload_until(page, filled)
    expect(page.locator(".filled-seat")).to_have_count(1)
    expect(page.locator("#filled-note")).to_be_visible()
    expect(page.locator(".status-banner.good")).to_be_visible()
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"auto-fill-filled-{lang.tag}")
    amy.close()
    assert problems == [], [p["targets"] for p in problems]
