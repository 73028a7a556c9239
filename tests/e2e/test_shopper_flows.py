"""Shoppers team up in real browsers: start, share, join, pay, succeed; or fail and get refunded.

The merchant's side (creating and publishing a deal, then seeing the order) is tested with the
merchant console.
"""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Browser, expect

from pintuan.domain.deals import Vertical
from pintuan.kit.time import clock
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import LiveServer
from tests.factories import create_deal, create_merchant


def test_a_shared_team_fills_and_both_shoppers_see_it_succeed(
    browser: Browser, live_server: LiveServer
) -> None:
    merchant = create_merchant(live_server.services.db)
    create_deal(live_server.services.db, merchant, title="Hotpot for two", team_size=2)
    create_deal(
        live_server.services.db,
        merchant,
        title="Cinema night for four",
        vertical=Vertical.MOVIES,
        team_size=4,
        list_price=4800,
        group_price=2900,
    )
    create_deal(
        live_server.services.db,
        merchant,
        title="Ceramic tea set",
        vertical=Vertical.GOODS,
        list_price=6500,
        group_price=3900,
    )
    amy = Shopper(browser, live_server.url)
    ben = Shopper(browser, live_server.url)

    amy.sign_up("Amy Lin", "amy@example.com")
    home = amy.open("/")
    expect(home.locator(".card", has_text="Hotpot for two")).to_contain_text("$15.00")
    screenshot(home, "home")
    home.get_by_role("link", name=re.compile("Hotpot for two")).click()
    screenshot(amy.page, "deal")
    amy.page.get_by_role("button", name="Start a team $15.00").click()
    screenshot(amy.page, "sandbox-checkout")
    amy.pay_on_sandbox()
    team_page = amy.page
    expect(team_page.locator(".status-banner")).to_contain_text("1 seat left")
    screenshot(team_page, "team-forming")
    team_url = team_page.url
    shared_link = team_page.locator("#share-url").input_value()  # hers at once, no step
    assert shared_link.startswith(f"{live_server.url}/s/")

    ben_page = ben.open(shared_link)
    expect(ben_page).to_have_url(re.compile(re.escape(team_url) + r"\?via=\w+$"))
    expect(ben_page.locator("#invited")).to_contain_text("Amy Lin invited you")
    expect(ben_page.locator(".members")).to_contain_text("Amy Lin")
    ben_page.get_by_role("button", name="Join this team for $15.00").click()
    expect(ben_page).to_have_url(re.compile(r".*/login\?next=/teams/"))
    ben_page.get_by_role("link", name="Create an account").click()
    ben.sign_up("Ben Ode", "ben@example.com", on_this_page=True)
    ben.pay_on_sandbox()  # signing up finished the join he tapped: straight on to paying

    expect(ben_page.locator(".status-banner")).to_contain_text("Team complete!")
    team_page.reload()
    expect(team_page.locator(".status-banner")).to_contain_text("Team complete!")
    expect(team_page.locator(".members")).to_contain_text("Ben Ode")
    screenshot(team_page, "team-succeeded")
    orders = amy.open("/orders")
    reload_until(orders, "Paid</span>")  # the worker captured the hold
    expect(orders.locator(".order").first).to_contain_text("Confirmed")
    screenshot(orders, "orders")
    amy.close()
    ben.close()


def test_a_team_that_does_not_fill_in_time_fails_and_the_shopper_reads_nothing_was_charged(
    browser: Browser, live_server: LiveServer
) -> None:
    merchant = create_merchant(live_server.services.db)
    deal = create_deal(live_server.services.db, merchant, title="Tea for three", team_size=3)
    # Without JavaScript: every step of the flow is a plain form.
    cai = Shopper(browser, live_server.url, java_script_enabled=False)
    cai.sign_up("Cai Wen", "cai@example.com")
    page = cai.open(f"/deals/{deal.id}")
    page.get_by_role("button", name="Start a team $15.00").click()
    cai.pay_on_sandbox()
    expect(page.locator(".status-banner")).to_contain_text("2 seats left")

    clock.advance(timedelta(minutes=deal.team_window_minutes + 1))
    reload_until(page, "This team did not fill in time.")
    reload_until(page, "Hold released, nothing charged")

    expect(page.locator("#you-heading + *")).to_contain_text("Ended: nothing charged")
    released = "The hold of $15.00 was released: nothing was charged."
    expect(page.get_by_text(released)).to_be_visible()
    screenshot(page, "team-failed")
    orders = cai.open("/orders")
    expect(orders.locator(".order").first).to_contain_text(released)
    notices = cai.open("/notifications")
    expect(notices.locator(".notice-item")).to_have_count(1)
    expect(notices.locator(".notice-list")).to_contain_text("Your team did not fill in time.")
    screenshot(notices, "notifications")
    cai.close()


def test_in_simplified_chinese_the_pages_speak_chinese_and_show_yuan(
    browser: Browser, live_server: LiveServer
) -> None:
    merchant = create_merchant(
        live_server.services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai"
    )
    create_deal(
        live_server.services.db,
        merchant,
        title="小笼包双人套餐",
        team_size=2,
        list_price=16800,
        group_price=9900,
    )
    mei = Shopper(browser, live_server.url, locale="zh-CN")
    lei = Shopper(browser, live_server.url, locale="zh-CN")

    mei.sign_up("王美", "mei@example.com")
    home = mei.open("/")
    expect(home.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(home.get_by_role("heading", name="一起拼，更便宜")).to_be_visible()  # noqa: RUF001
    card = home.locator(".card", has_text="小笼包双人套餐")
    expect(card.locator(".group-price")).to_have_text("¥99.00")
    expect(card.locator(".list-price")).to_have_text("¥168.00")
    expect(card).to_contain_text("2 人团")
    screenshot(home, "home-zh")
    card.click()
    mei.page.get_by_role("button", name="¥99.00 开团").click()
    mei.pay_on_sandbox()
    expect(mei.page.locator(".status-banner")).to_contain_text("还差 1 人")
    screenshot(mei.page, "team-forming-zh")
    mei.page.locator("summary", has_text="口令消息（用于屏蔽链接的应用）").click()  # noqa: RUF001
    expect(mei.page.get_by_label("口令消息（用于屏蔽链接的应用）")).to_contain_text("【拼团】")  # noqa: RUF001
    screenshot(mei.page, "team-share-zh")
    shared_link = mei.page.locator("#share-url").input_value()

    lei.sign_up("李雷", "lei@example.com")
    lei.open(shared_link).get_by_role("button", name="¥99.00 参团").click()
    lei.pay_on_sandbox()

    expect(lei.page.locator(".status-banner")).to_contain_text("拼团成功")
    mei.page.reload()
    expect(mei.page.locator(".status-banner")).to_contain_text("拼团成功")
    orders = mei.open("/orders")
    expect(orders.get_by_role("heading", name="我的订单")).to_be_visible()
    expect(orders.locator(".order").first).to_contain_text("¥99.00")
    mei.close()
    lei.close()
