"""axe-core finds no serious or critical accessibility problem on the shopper's pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.e2e.browsing import Shopper
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import create_deal, create_merchant

BLOCKING = ("serious", "critical")


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page, at phone and desktop widths."""
    found: list[dict[str, Any]] = []
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        results = Axe().run(page)
        found += [
            {
                "page": page.url,
                "width": viewport["width"],
                "rule": v["id"],
                "impact": v["impact"],
                "targets": [n["target"] for n in v["nodes"]],
            }
            for v in results.response["violations"]
            if v["impact"] in BLOCKING
        ]
    page.set_viewport_size(PHONE)
    return found


def test_the_shopper_pages_have_no_serious_accessibility_violations(
    browser: Browser, live_server: LiveServer
) -> None:
    merchant = create_merchant(live_server.services.db)
    deal = create_deal(live_server.services.db, merchant, title="Noodles for three")
    visitor = Shopper(browser, live_server.url)
    problems: list[dict[str, Any]] = []
    for path in ("/", f"/deals/{deal.id}", "/login", "/signup", "/deals/deal_missing"):
        problems += blocking_violations(visitor.open(path))

    visitor.sign_up("Amy Lin", "amy@example.com")
    page = visitor.open(f"/deals/{deal.id}")
    page.get_by_role("button", name="Start a team $15.00").click()
    visitor.pay_on_sandbox()
    team_id = page.url.rsplit("/", 1)[1]
    problems += blocking_violations(page)  # the team page, leading with her own link
    page.locator("summary", has_text="Message for apps that block links").click()
    page.locator("summary", has_text="Leave this team").click()
    problems += blocking_violations(page)  # with the message and the leave confirmation open
    page = visitor.open(f"/deals/{deal.id}")
    page.get_by_role("button", name="Get my link").click()
    problems += blocking_violations(page)  # the deal page with her link
    for path in (
        "/",
        "/orders",
        "/notifications",
        "/account",
        "/me/shares",
        "/?q=" + quote("¥Ab3kX9Ab3kX¥"),  # the paste box saying the token is unknown
        "/?q=nothing-matches",
    ):
        problems += blocking_violations(visitor.open(path))
    visitor.close()

    chinese = Shopper(browser, live_server.url, locale="zh-CN")
    for path in ("/", f"/deals/{deal.id}", f"/teams/{team_id}"):
        problems += blocking_violations(chinese.open(path))
    chinese.close()

    assert problems == []
