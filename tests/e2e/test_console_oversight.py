"""The consoles' oversight and the viewer's zone in a real browser, in English at 375 px and in
Simplified Chinese at 1280 px (each screenshot at both widths): applying to sell and an
operator's approval; a suspension with its reason, read back in the merchant's audit log; the
deal editor naming every problem at once; and a first visit shown on the browser's own
clock."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from pintuan.domain.roles import Role
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_consoles import join_and_pay
from tests.factories import Account, create_account, create_deal, create_merchant

LANGUAGES = {"en": "en-US", "zh": "zh-CN"}
WIDTHS: dict[str, ViewportSize] = {"375": PHONE, "1280": DESKTOP}
# Each language once, each at one width of its own: every screenshot is taken at both widths
# anyway (``screenshot``), so the other two runs only repeated the same flow.
CASES = [("en", "375"), ("zh", "1280")]


def person(browser: Browser, server: LiveServer, lang: str, width: str, **options: Any) -> Shopper:
    someone = Shopper(browser, server.url, locale=LANGUAGES[lang], **options)
    someone.page.set_viewport_size(WIDTHS[width])
    return someone


def signed_in(
    browser: Browser, server: LiveServer, account: Account, lang: str, width: str
) -> tuple[Shopper, Page]:
    if lang == "zh":
        speak_chinese(server.services, account)
    someone = person(browser, server, lang, width)
    page = someone.open("/login")
    someone.log_in(account.email)
    return someone, page


def no_word_breaks_in_cells(page: Page) -> None:
    """No word of a table cell is split across two lines (the 375 px stacked rows once broke
    "Dumplings" into "Dumpl" / "ings"). Chinese may break between any two characters, so only
    words in Latin letters are checked."""
    broken = page.evaluate(
        """() => {
          const broken = [];
          const cells = document.querySelectorAll(
            '.console-table tbody td, .console-table tbody th');
          for (const cell of cells) {
            if (cell.offsetParent === null) continue;
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              if (node.parentElement.closest('code')) continue;  // ids may break anywhere
              for (const m of node.textContent.matchAll(/[A-Za-z][A-Za-z']+/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (lines.size > 1) broken.push(m[0]);
              }
            }
          }
          return broken;
        }"""
    )
    assert broken == []


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_someone_applies_to_sell_and_an_operator_approves(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    services = live_server.services
    applicant = create_account(services, name="Siti")
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    siti, page = signed_in(browser, live_server, applicant, lang, width)

    page = siti.open("/sell")
    problems = blocking_violations(page)
    page.locator("#apply-name").fill("Bakso Pak Min")
    page.locator("#apply-slug").fill(f"bakso-{lang}-{width}")
    page.locator("#apply-country").select_option("ID")
    page.locator("#apply-currency").fill("IDR")
    page.locator("#apply-time_zone").fill("Asia/Jakarta")
    page.locator("#apply-pitch").fill("Meatball soup for four, delivered in Menteng.")
    page.locator("form[action='/sell'] button[type=submit]").click()
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator(".application-list")).to_contain_text("Bakso Pak Min")
    screenshot(page, f"sell-applied-{lang}-{width}")

    olga, console = signed_in(browser, live_server, operator, lang, width)
    console = olga.open("/console/operator/applications")
    expect(console.locator(".console-table")).to_contain_text("Bakso Pak Min")
    problems += blocking_violations(console)
    no_word_breaks_in_cells(console)
    screenshot(console, f"operator-applications-{lang}-{width}")
    console.locator("form[action$='/approve'] button").click()
    expect(console.locator(".notice")).to_be_visible()
    olga.close()

    page = siti.open("/sell")
    expect(page.locator(".application-list .badge")).to_have_text(
        "Approved" if lang == "en" else "已通过"
    )
    page.locator(".application-list a").click()
    expect(page.locator("h2").first).to_be_visible()
    assert "/console/merchants/" in page.url
    screenshot(page, f"sell-approved-console-{lang}-{width}")
    siti.close()
    assert problems == [], problems


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_a_suspension_asks_why_and_the_merchant_reads_it_in_its_log(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db, slug="kopi-kenangan")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Budi")
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    reason = "Selling counterfeit sneakers" if lang == "en" else "销售假冒球鞋"

    olga, page = signed_in(browser, live_server, operator, lang, width)
    page = olga.open("/console/operator/merchants?status=approved")
    no_word_breaks_in_cells(page)
    page.locator("details.confirm summary").first.click()
    textarea = page.locator("details.confirm[open] textarea[name=reason]")
    expect(textarea).to_be_visible()
    problems = blocking_violations(page)
    screenshot(page, f"operator-suspend-confirm-{lang}-{width}")
    page.locator("details.confirm[open] button[type=submit]").click()  # no reason yet
    expect(textarea).to_be_visible()  # the browser keeps the form: a reason is required
    textarea.fill(reason)
    page.locator("details.confirm[open] button[type=submit]").click()
    expect(page.locator(".notice")).to_be_visible()
    olga.close()

    budi, dashboard = signed_in(browser, live_server, staff, lang, width)
    dashboard = budi.open(f"/console/merchants/{merchant.id}")
    log = dashboard.locator("#audit-log-heading").locator("xpath=..")
    expect(log).to_contain_text(reason)
    expect(log).to_contain_text("Olga")
    expect(log).to_contain_text("Suspended" if lang == "en" else "已暂停合作")
    log.scroll_into_view_if_needed()
    no_word_breaks_in_cells(dashboard)
    problems += blocking_violations(dashboard)
    screenshot(dashboard, f"merchant-audit-log-{lang}-{width}")
    budi.close()
    assert problems == [], problems


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_the_deal_editor_names_every_problem_after_one_submit(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    chen, page = signed_in(browser, live_server, staff, lang, width)

    page = chen.open(f"/console/merchants/{merchant.id}/deals/new")
    page.locator("#deal-title").fill("")
    page.locator("#deal-list_price").fill("88.00")
    page.locator("#deal-group_price").fill("99.00")
    page.locator("#deal-team_size").fill("1")
    page.locator("#deal-starts_at").fill("2030-01-10T10:00")
    page.locator("#deal-ends_at").fill("2030-01-09T10:00")
    page.locator("form.deal-form button[type=submit]").first.click()

    for field in ("title", "group_price", "team_size", "ends_at"):
        expect(page.locator(f"#{field}-error")).to_be_visible()
        expect(page.locator(f"#deal-{field}")).to_have_attribute("aria-invalid", "true")
    if lang == "zh":
        expect(page.locator("#group_price-error")).not_to_contain_text("must")
    problems = blocking_violations(page)
    screenshot(page, f"deal-editor-all-errors-{lang}-{width}")
    chen.close()
    assert problems == [], problems


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_a_first_visit_is_shown_on_the_browsers_clock(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    deal = create_deal(live_server.services.db, create_merchant(live_server.services.db))
    visitor = person(browser, live_server, lang, width, timezone_id="Asia/Jakarta")

    page = visitor.open(f"/deals/{deal.id}")

    expect(page.locator("footer")).to_contain_text("Asia/Jakarta")
    assert page.locator('meta[name="time-zone-guessed"]').count() == 0
    zone = [c for c in visitor.context.cookies() if c["name"] == "tz"]
    assert [c["value"] for c in zone] == ["Asia/Jakarta"]
    expect(page.locator("time.countdown").first).not_to_contain_text("in in")
    if lang == "zh":
        page.wait_for_timeout(1200)  # the live countdown has ticked
        assert "d " not in page.locator("time.countdown").first.inner_text()
    screenshot(page, f"first-visit-time-zone-{lang}-{width}")
    visitor.close()


def fits_the_width(page: Page) -> None:
    """Nothing sticks out sideways: the page scrolls down only."""
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_orders_table_reads_as_cards_on_a_phone(
    browser: Browser, live_server: LiveServer, lang: str
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db, slug="jade-garden")
    deal = create_deal(services.db, merchant, team_size=2, title="Hotpot for two with extras")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Chen")
    join_and_pay(live_server, deal.id, [create_account(services, name="Amy Lin") for _ in "ab"])
    chen, page = signed_in(browser, live_server, staff, lang, "375")

    page = chen.open(f"/console/merchants/{merchant.id}/orders")
    expect(page.locator(".console-table tbody tr")).to_have_count(2)

    no_word_breaks_in_cells(page)
    fits_the_width(page)
    screenshot(page, f"merchant-orders-phone-{lang}")
    chen.close()
