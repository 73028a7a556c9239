"""A share link in real browsers: one shopper shares her team from its page, a friend opens the
link, joins and pays, and the sharer's "My shares" page credits the join (and the rest) to that
share."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, Page, expect

from pintuan.domain.roles import Role
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import LiveServer
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_growth import tell_the_story


def figures(page: Page, channel: str) -> dict[str, int]:
    """The figures "My shares" shows for the one share of ``channel``."""
    item = page.locator(".share-item", has_text=channel)
    expect(item).to_have_count(1)
    names = item.locator(".share-stats dt").all_inner_texts()
    values = item.locator(".share-stats dd").all_inner_texts()
    return {name: int(value) for name, value in zip(names, values, strict=True)}


def wait_for_figures(
    page: Page, channel: str, expected: dict[str, int], seconds: float = 20
) -> None:
    """The worker credits orders in its own time: reload "My shares" until the figures arrive."""
    deadline = time.monotonic() + seconds
    while (found := figures(page, channel)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"the share's figures stayed {found}, expected {expected}")
        time.sleep(0.3)
        page.reload()


def test_a_friend_who_opens_a_share_link_joins_and_pays_is_credited_to_that_share(
    browser: Browser, live_server: LiveServer
) -> None:
    merchant = create_merchant(live_server.services.db)
    deal = create_deal(live_server.services.db, merchant, title="Hotpot for two", team_size=2)
    amy = Shopper(browser, live_server.url)
    ben = Shopper(browser, live_server.url)
    amy.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    amy.sign_up("Amy Lin", "amy@example.com")
    amy.open(f"/deals/{deal.id}").get_by_role("button", name="Start a team $15.00").click()
    amy.pay_on_sandbox()
    team_page = amy.page
    team_id = team_page.url.rsplit("/", 1)[1]
    team_page.locator("summary", has_text="A link for one app, to see what each brings").click()
    team_page.get_by_label("Where will you share it?").select_option("whatsapp")
    team_page.get_by_role("button", name="New link").click()
    team_page.locator("summary", has_text="Message for apps that block links").click()
    link = team_page.get_by_label("Your link").input_value()
    assert re.fullmatch(re.escape(f"{live_server.url}/s/") + "[1-9A-HJ-NP-Za-km-z]{10}", link)
    expect(team_page.get_by_label("Message for apps that block links")).to_have_value(
        re.compile(
            r"^Hotpot for two: \$15\.00 instead of \$20\.00 when our team fills\. "
            r"1 seat left, .*¥\w{11}¥$"
        )
    )
    team_page.get_by_role("button", name="Copy link").click()
    expect(team_page.locator("#share-status")).to_have_text("Link copied")
    assert team_page.evaluate("navigator.clipboard.readText()") == link
    screenshot(team_page, "team-share")
    team_page.get_by_role("link", name="QR poster").click()
    expect(team_page).to_have_url(f"{live_server.url}/v1/teams/{team_id}/poster.png?lang=en")
    screenshot(team_page, "team-poster")  # the QR code is her own qr share, made on first use

    ben_page = ben.open(link)
    expect(ben_page).to_have_url(re.compile(re.escape(f"{live_server.url}/teams/{team_id}?via=")))
    assert any(c["name"] == "pt_vid" and c["httpOnly"] for c in ben.context.cookies())
    ben_page.get_by_role("button", name="Join this team for $15.00").click()
    expect(ben_page).to_have_url(re.compile(r".*/login\?next=/teams/"))
    ben_page.get_by_role("link", name="Create an account").click()
    ben.sign_up("Ben Ode", "ben@example.com", on_this_page=True)
    ben.pay_on_sandbox()  # signing up finished the join he tapped
    expect(ben_page.locator(".status-banner")).to_contain_text("Team complete!")

    dashboard = amy.open("/orders")
    dashboard.get_by_role("link", name="My shares: what the links you shared brought").click()
    expect(dashboard.get_by_role("heading", name="My shares", exact=True)).to_be_visible()
    expect(dashboard.locator(".share-item", has_text="WhatsApp")).to_contain_text(link)
    wait_for_figures(
        dashboard,
        "WhatsApp",
        {"Visits": 1, "Teams started": 0, "Joins": 1, "Paid": 1, "Teams completed": 1},
    )
    screenshot(dashboard, "my-shares")
    dashboard.locator(".share-item", has_text="QR poster").get_by_role("button").click()
    expect(dashboard.locator(".status-banner")).to_contain_text("The share is out of your history")
    # Left: the WhatsApp link, and the one her team page made on the default channel.
    expect(dashboard.locator(".share-item")).to_have_count(2)
    expect(ben.open("/me/shares").locator(".empty")).to_contain_text("You have not shared")
    amy.close()
    ben.close()


def test_an_operator_reads_the_growth_page_and_a_merchant_sees_only_their_deal(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    story = tell_the_story(services)  # the known dataset of the growth tests, rolled up
    operator = create_account(services, role=Role.OPERATOR, email="olivia@example.com")
    staff = create_account(services, role=Role.MERCHANT, merchant=story.m1, email="sam@example.com")
    speak_chinese(services, staff)
    olivia = Shopper(browser, live_server.url)
    sam = Shopper(browser, live_server.url, locale="zh-CN")

    page = olivia.open("/login?next=/console/operator/growth?weeks=26")
    olivia.log_in(operator.email)
    expect(page.get_by_role("heading", name="Growth")).to_be_visible()
    expect(page.locator(".kpi").first).to_contain_text("0.8")  # 4 brought of 5, both deals
    expect(page.locator("#funnel-chart-title")).to_have_count(1)
    screenshot(page, "console-growth")

    page = sam.open(f"/login?next=/console/merchants/{story.m1.id}/growth?weeks=26")
    sam.log_in(staff.email)
    expect(page.get_by_role("heading", name="增长")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("微信")  # channels in Chinese
    expect(page.locator("table").first).not_to_contain_text("wechat")
    expect(page.locator("table").first).not_to_contain_text("短信")  # the other merchant's
    screenshot(page, "console-growth-zh")
    olivia.close()
    sam.close()
