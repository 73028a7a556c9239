"""In real browsers, in English and Chinese: a friend pays and the team fails (each side reads
where the money went), the orders tabs with pay now, and log-in keeping the tapped action
(signing up, and after the session expired). Screenshots at 375 and 1280 px."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.deals.models import Deal
from pintuan.kit.time import clock
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_deal, create_merchant


@dataclass(frozen=True)
class Words:
    """What each language's pages say, for the steps below."""

    locale: str
    suffix: str
    shopper: str
    friend: str
    money: str
    to_friend: str  # the shopper reads that the friend's hold was released
    friend_reads: str  # the friend reads it in their orders
    paid_for: str
    team_failed_link: str
    unread: str
    to_pay_tab: str
    pay_now: str
    kept_notice: str
    create_account: str


ENGLISH = Words(
    locale="en-US",
    suffix="",
    shopper="Amy Lin",
    friend="Ben Ode",
    money="$15.00",
    to_friend="The hold of $15.00 that Ben Ode placed for you was released: nothing was "
    "charged to Ben Ode.",
    friend_reads="The hold of $15.00 was released: nothing was charged.",
    paid_for="You paid for the seat of Amy Lin.",
    team_failed_link="This team did not fill in time, so nobody pays",
    unread="1 unread",
    to_pay_tab="To pay",
    pay_now="Pay now",
    kept_notice="we will finish what you started",
    create_account="Create an account",
)
CHINESE = Words(
    locale="zh-CN",
    suffix="-zh",
    shopper="王美",
    friend="李雷",
    money="¥15.00",
    to_friend="李雷 为你代付的 ¥15.00 预授权已解除：没有向 李雷 扣款。",  # noqa: RUF001
    friend_reads="¥15.00 的预授权已解除：没有扣款。",  # noqa: RUF001
    paid_for="你为 王美 代付了这个席位。",
    team_failed_link="这个拼团未能按时成团",
    unread="1 条未读",
    to_pay_tab="待付款",
    pay_now="立即付款",
    kept_notice="我们会帮你完成刚才的操作",
    create_account="注册账户",
)
LANGUAGES = [pytest.param(ENGLISH, id="en"), pytest.param(CHINESE, id="zh")]


def a_deal(live_server: LiveServer, words: Words, **options: object) -> Deal:
    chinese = words is CHINESE
    merchant = create_merchant(
        live_server.services.db,
        **({"currency": "CNY", "country": "CN", "time_zone": "Asia/Shanghai"} if chinese else {}),
    )
    return create_deal(live_server.services.db, merchant, team_size=2, **options)  # type: ignore[arg-type]


def tap_start(page: Page, deal: Deal) -> None:
    page.locator(f"form[action='/deals/{deal.id}/teams'] button[type=submit]").click()


@pytest.mark.parametrize("words", LANGUAGES)
def test_a_friend_pays_the_team_fails_and_each_side_reads_where_the_money_went(
    browser: Browser, live_server: LiveServer, words: Words
) -> None:
    deal = a_deal(live_server, words, title="Hotpot for two")
    amy = Shopper(browser, live_server.url, locale=words.locale)
    ben = Shopper(browser, live_server.url, locale=words.locale)
    amy.sign_up(words.shopper, "amy@example.com")
    page = amy.open(f"/deals/{deal.id}")
    tap_start(page, deal)
    expect(page).to_have_url(re.compile(".*/sandbox/checkout/.*"))
    # Amy leaves her checkout and asks Ben instead
    orders = amy.open("/orders")
    orders.locator(".order .card-title a").first.click()
    team_url = orders.url
    page.locator("form[action$='/pay-link'] button").click()
    pay_link = page.locator("input.share-link").input_value()

    ben_page = ben.open(pay_link)
    ben_page.locator("main a[href^='/login?next=/pay/']").click()
    ben_page.locator("main a[href^='/signup']").click()
    ben.sign_up(words.friend, "ben@example.com", on_this_page=True)
    ben_page.locator("form[action^='/pay/'] button").click()
    ben.pay_on_sandbox()
    ben_orders = ben.open("/orders")
    expect(ben_orders.locator(".order").first).to_contain_text(words.paid_for)
    screenshot(ben_orders, f"friend-pays-friend-orders{words.suffix}")

    clock.advance(timedelta(minutes=deal.team_window_minutes + 1))
    amy_team = amy.open(team_url)
    reload_until(amy_team, words.to_friend)
    screenshot(amy_team, f"friend-pays-team-failed-shopper{words.suffix}")
    amy_orders = amy.open("/orders")
    expect(amy_orders.locator(".order").first).to_contain_text(words.to_friend)
    badge = amy_orders.get_by_role("link", name=re.compile(re.escape(words.unread)))
    expect(badge).to_be_visible()
    screenshot(amy_orders, f"friend-pays-shopper-orders{words.suffix}")
    notices = amy.open("/notifications")
    expect(notices.locator(".notice-item")).to_have_count(1)
    expect(notices.get_by_role("link", name=re.compile(re.escape(words.unread)))).to_have_count(0)
    screenshot(notices, f"friend-pays-shopper-notifications{words.suffix}")

    ben_orders = ben.open("/orders")
    reload_until(ben_orders, words.friend_reads)
    screenshot(ben_orders, f"friend-pays-friend-orders-failed{words.suffix}")
    link_page = ben.open(pay_link)
    expect(link_page.locator(".status-banner")).to_contain_text(words.team_failed_link)
    expect(link_page.locator("form[action^='/pay/']")).to_have_count(0)
    screenshot(link_page, f"friend-pays-link-after-failure{words.suffix}")

    problems = [*blocking_violations(amy.open("/orders")), *blocking_violations(link_page)]
    problems += blocking_violations(amy.open("/notifications"))
    assert problems == []
    amy.close()
    ben.close()


@pytest.mark.parametrize("words", LANGUAGES)
def test_the_orders_tabs_show_an_unpaid_seat_with_pay_now_and_its_countdown(
    browser: Browser, live_server: LiveServer, words: Words
) -> None:
    deal = a_deal(live_server, words, title="Tea for two")
    cai = Shopper(browser, live_server.url, locale=words.locale)
    cai.sign_up(words.shopper, "cai@example.com")
    page = cai.open(f"/deals/{deal.id}")
    tap_start(page, deal)
    expect(page).to_have_url(re.compile(".*/sandbox/checkout/.*"))

    orders = cai.open("/orders")
    orders.get_by_role("link", name=re.compile(words.to_pay_tab)).click()
    expect(orders).to_have_url(re.compile(r".*/orders\?tab=to_pay"))
    order = orders.locator(".order").first
    expect(order.locator("time[data-countdown]")).to_be_visible()
    expect(orders.locator(".order-tabs [aria-current=page] .tab-count")).to_have_text("1")
    screenshot(orders, f"orders-to-pay{words.suffix}")
    assert blocking_violations(orders) == []
    order.get_by_role("button", name=re.compile(words.pay_now)).click()
    cai.pay_on_sandbox()

    orders = cai.open("/orders?tab=to_pay")
    expect(orders.locator(".order")).to_have_count(0)
    orders = cai.open("/orders?tab=forming")
    expect(orders.locator(".order")).to_have_count(1)
    screenshot(orders, f"orders-forming{words.suffix}")
    cai.close()


@pytest.mark.parametrize("words", LANGUAGES)
def test_signing_up_comes_back_to_the_deal_with_the_team_started(
    browser: Browser, live_server: LiveServer, words: Words
) -> None:
    deal = a_deal(live_server, words, title="Noodles for two")
    dan = Shopper(browser, live_server.url, locale=words.locale)
    page = dan.open(f"/deals/{deal.id}")

    tap_start(page, deal)
    expect(page).to_have_url(re.compile(r".*/login\?next=/deals/.*&action=.*"))
    expect(page.get_by_role("status")).to_contain_text(words.kept_notice)
    screenshot(page, f"kept-action-login{words.suffix}")
    assert blocking_violations(page) == []
    page.get_by_role("link", name=words.create_account).click()
    dan.sign_up(words.shopper, "dan@example.com", on_this_page=True)

    # straight on to paying for the team the tap started
    expect(page).to_have_url(re.compile(".*/sandbox/checkout/.*"))
    dan.pay_on_sandbox()
    expect(page.locator(".members")).to_contain_text(words.shopper)
    screenshot(page, f"kept-action-team-started{words.suffix}")
    dan.close()


@pytest.mark.parametrize("words", LANGUAGES)
def test_a_tap_after_the_session_expired_logs_in_and_performs_the_action(
    browser: Browser, live_server: LiveServer, words: Words
) -> None:
    deal = a_deal(live_server, words, title="Dumplings for two")
    eve = Shopper(browser, live_server.url, locale=words.locale)
    eve.sign_up(words.shopper, "eve@example.com")
    page = eve.open(f"/deals/{deal.id}")
    # the session cookie runs out while the page stays open
    kept = [c for c in eve.context.cookies() if c.get("name") != SESSION_COOKIE]
    eve.context.clear_cookies()
    eve.context.add_cookies(kept)  # type: ignore[arg-type]

    tap_start(page, deal)
    expect(page).to_have_url(re.compile(r".*/login\?next=/deals/.*&action=.*"))
    assert "csrf_failed" not in page.content()
    screenshot(page, f"expired-session-login{words.suffix}")
    eve.log_in("eve@example.com")

    expect(page).to_have_url(re.compile(".*/sandbox/checkout/.*"))
    eve.pay_on_sandbox()
    expect(page.locator(".members")).to_contain_text(words.shopper)
    screenshot(page, f"expired-session-team-started{words.suffix}")
    eve.close()
