"""The consoles in a real browser: a merchant creates and publishes a deal and sees the orders
shoppers place (in English and in Simplified Chinese); an operator approves a merchant and
runs the audit. The shoppers here use the JSON API: their pages have their own browser tests.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, ViewportSize, expect

from pintuan.domain.roles import Role
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import Account, create_account, create_merchant


def join_and_pay(server: LiveServer, deal_id: str, shoppers: list[Account]) -> str:
    """The shoppers start one team (the first) and join it, each paying on the sandbox."""
    with httpx.Client(base_url=server.url, timeout=10) as api:
        team_id = ""
        for shopper in shoppers:
            if not team_id:
                started = api.post(f"/v1/deals/{deal_id}/teams", headers=shopper.headers)
                assert started.status_code == 201, started.text
                team_id, seat_id = started.json()["team"]["id"], started.json()["seat"]["id"]
            else:
                joined = api.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
                assert joined.status_code == 201, joined.text
                seat_id = joined.json()["seat"]["id"]
            payment = api.post(
                f"/v1/seats/{seat_id}/payments",
                json={"provider": "sandbox"},
                headers=shopper.headers,
            )
            assert payment.status_code == 201, payment.text
            paid = api.post(
                f"/v1/test_helpers/payments/{payment.json()['id']}/succeed",
                headers=shopper.headers,
            )
            assert paid.status_code == 200, paid.text
    return team_id


def log_in_to_console(person: Shopper, email: str) -> Page:
    page = person.open("/console")
    expect(page).to_have_url(re.compile(r".*/login\?next=/console"))
    person.log_in(email)
    return page


def open_tab(page: Page, console: str, tab: str) -> None:
    """Follow one of the console's own tabs (the site's main menu has links of the same name)."""
    page.get_by_role("navigation", name=console).get_by_role("link", name=tab, exact=True).click()


def fill_deal_form(page: Page, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        if name == "vertical":
            page.locator("#deal-vertical").select_option(value)
        else:
            page.locator(f"#deal-{name}").fill(value)


def test_a_merchant_creates_and_publishes_a_deal_and_sees_the_orders(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db, slug="jade-garden")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Chen")
    chen = Shopper(browser, live_server.url)

    page = log_in_to_console(chen, staff.email)
    expect(page).to_have_url(re.compile(rf".*/console/merchants/{merchant.id}$"))
    open_tab(page, "Merchant console", "Deals")
    page.get_by_role("link", name="New deal").click()
    fill_deal_form(
        page,
        {
            "title": "Hotpot for two",
            "description": "Weekday lunch, all you can eat.",
            "vertical": "food",
            "list_price": "88.00",
            "group_price": "99.00",
            "team_size": "2",
        },
    )
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator("#group_price-error")).to_have_text(
        "The group price must be below the list price."
    )
    expect(page.locator("#deal-group_price")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "console-deal-form-invalid")
    page.locator("#deal-group_price").fill("59.00")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator(".notice")).to_have_text("The deal is saved as a draft.")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".notice")).to_have_text("The deal is live.")
    expect(page.locator("#deal-group_price")).to_be_disabled()
    screenshot(page, "console-deal-live")
    deal_id = page.url.split("/deals/")[1].split("?")[0]

    shoppers = [create_account(services, name=n) for n in ("Amy Lin", "Ben Ode")]
    join_and_pay(live_server, deal_id, shoppers)

    open_tab(page, "Merchant console", "Orders")
    orders = page.locator(".console-table tbody tr")
    expect(orders).to_have_count(2)
    expect(page.locator(".console-table")).to_contain_text("Amy Lin")
    expect(page.locator(".console-table")).to_contain_text("$59.00")
    reload_until(page, "Captured")  # the worker captured the holds of the full team
    screenshot(page, "console-orders")
    open_tab(page, "Merchant console", "Teams")
    expect(page.locator(".console-table")).to_contain_text("Succeeded")
    screenshot(page, "console-teams")
    page.locator(".console-table a").first.click()
    expect(page.locator("h2")).to_contain_text("Succeeded")
    screenshot(page, "console-team")
    open_tab(page, "Merchant console", "Dashboard")
    expect(page.locator(".kpis")).to_contain_text("$118.00")
    expect(page.locator(".kpis")).to_contain_text("100%")
    # one of the narrow and the wide chart shows, by the width (which the screenshots change)
    sales = page.get_by_role("img", name="Sales per day").filter(visible=True)
    expect(sales).to_have_count(1)
    screenshot(page, "console-dashboard")
    open_tab(page, "Merchant console", "Refunds")
    screenshot(page, "console-refunds")
    open_tab(page, "Merchant console", "Settlements")
    expect(page.locator(".kpis")).to_contain_text("Owed to you now")
    screenshot(page, "console-settlements")
    chen.close()


def test_a_chinese_merchant_works_in_chinese_with_yuan_prices(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(
        services.db, slug="hangzhou-tea", currency="CNY", country="CN", time_zone="Asia/Shanghai"
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="陈店长")
    speak_chinese(services, staff)
    chen = Shopper(browser, live_server.url, locale="zh-CN")

    page = log_in_to_console(chen, staff.email)
    open_tab(page, "商家后台", "活动")
    page.get_by_role("link", name="新建活动").click()
    expect(page.locator("legend").nth(1)).to_have_text("价格（CNY）")  # noqa: RUF001
    fill_deal_form(
        page,
        {
            "title": "龙井茶礼盒",
            "vertical": "goods",
            "list_price": "128",
            "group_price": "99",
            "team_size": "2",
        },
    )
    page.get_by_role("button", name="保存为草稿").click()
    page.get_by_role("button", name="发布").click()
    expect(page.locator(".notice")).to_have_text("活动已上线。")
    screenshot(page, "console-zh-deal-live")
    deal_id = page.url.split("/deals/")[1].split("?")[0]

    join_and_pay(live_server, deal_id, [create_account(services, name="李雷")])

    open_tab(page, "商家后台", "订单")
    table = page.locator(".console-table")
    expect(table).to_contain_text("李雷")
    expect(table).to_contain_text("¥99.00")
    expect(table).to_contain_text("已付款，拼团中")  # noqa: RUF001
    screenshot(page, "console-zh-orders")
    open_tab(page, "商家后台", "概览")
    # The narrow and the wide chart: the page shows the one that fits (both while its styles load).
    expect(page.get_by_role("img", name="每日销售额").first).to_be_visible()
    screenshot(page, "console-zh-dashboard")
    chen.close()


def test_an_operator_approves_a_merchant_moderates_and_runs_the_audit(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    pending = create_merchant(services.db, slug="kiez-kino", approved=False)
    operator = create_account(services, role=Role.OPERATOR, name="Olivia")
    olivia = Shopper(browser, live_server.url)

    page = log_in_to_console(olivia, operator.email)
    expect(page).to_have_url(re.compile(r".*/console/operator$"))
    screenshot(page, "operator-overview")
    open_tab(page, "Operator console", "Merchants")
    screenshot(page, "operator-merchants")
    page.get_by_role("button", name=f"Approve {pending.name}").click()
    expect(page.locator(".notice")).to_have_text("The merchant is approved.")
    expect(page.locator(".console-body")).not_to_contain_text(pending.name)

    open_tab(page, "Operator console", "Audit")
    page.get_by_role("button", name="Run the audit now").click()
    expect(page.locator(".audit-result")).to_have_text("Passed: no invariant is breached.")
    screenshot(page, "operator-audit")
    for tab, name in (
        ("Deals", "operator-deals"),
        ("Refunds", "operator-refunds"),
        ("Users", "operator-users"),
    ):
        open_tab(page, "Operator console", tab)
        screenshot(page, name)
    olivia.close()


BLOCKING = ("serious", "critical")


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for width, height in ((PHONE["width"], PHONE["height"]), (DESKTOP["width"], DESKTOP["height"])):
        viewport: ViewportSize = {"width": width, "height": height}
        page.set_viewport_size(viewport)
        results = Axe().run(page)
        found += [
            {"page": page.url, "width": viewport["width"], "rule": v["id"], "nodes": v["nodes"]}
            for v in results.response["violations"]
            if v["impact"] in BLOCKING
        ]
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    return found


def test_the_console_pages_have_no_serious_accessibility_violations(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    operator = create_account(services, role=Role.OPERATOR)
    person = Shopper(browser, live_server.url)
    log_in_to_console(person, operator.email)
    problems: list[dict[str, Any]] = []
    base = f"/console/merchants/{merchant.id}"
    for path in (
        base,
        f"{base}/deals",
        f"{base}/deals/new",
        f"{base}/teams",
        f"{base}/orders",
        f"{base}/refunds",
        f"{base}/settlements",
        "/console/operator",
        "/console/operator/merchants?status=all",
        "/console/operator/deals",
        "/console/operator/refunds",
        "/console/operator/users",
        "/console/operator/audit",
    ):
        problems += blocking_violations(person.open(path))
    person.close()

    assert problems == []
