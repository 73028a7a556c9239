"""A flash sale's opening in a real browser at 375 px, in English and Chinese: a few seconds
before it the page shows its badge and counts down with the start button off, even for a
shopper whose clock runs an hour fast; at zero the page loads again by itself and the shopper
starts a team and pays. The phone page scrolls down only, and axe finds no serious or critical
problem on it."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect

from pintuan.kit.time import utc_now
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import fits_the_width
from tests.e2e.test_solo_and_sharing import LANGUAGES, Language
from tests.factories import create_deal, create_merchant

OPENS_IN_SECONDS = 8
WORDS = {
    "en": {"badge": "Flash sale", "opens_in": "Opens in", "one_each": "One per shopper"},
    "zh": {"badge": "秒杀", "opens_in": "距开始还有", "one_each": "每人限购 1 件"},
}
# A shopper's clock an hour fast: a countdown read off it would end at once and reload forever.
FAST_CLOCK = """
  (() => {
    const realNow = Date.now;
    Date.now = () => realNow.call(Date) + 3600 * 1000;
  })();
"""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_flash_sale_counts_down_to_its_opening_then_sells(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    words = WORDS[lang.tag]
    amy = Shopper(browser, live_server.url, locale=lang.locale, timezone_id=lang.time_zone)
    amy.context.add_init_script(FAST_CLOCK)
    amy.sign_up(lang.names[0], f"amy-{lang.tag}@example.com")
    merchant = create_merchant(
        live_server.services.db,
        currency=lang.currency,
        country=lang.country,
        time_zone=lang.time_zone,
    )
    deal = create_deal(
        live_server.services.db,
        merchant,
        title="Hotpot",
        team_size=2,
        stock=10,
        starts_at=utc_now() + timedelta(seconds=OPENS_IN_SECONDS),
        flash_sale=True,
    )

    page = amy.open(f"/deals/{deal.id}")
    page.evaluate("window.__firstLoad = true")
    countdown = page.locator("[data-opens-in]")
    expect(page.locator(".badge.flash")).to_have_text(words["badge"])
    expect(page.locator(".facts")).to_contain_text(words["one_each"])
    expect(page.locator(".status-banner.opening")).to_contain_text(words["opens_in"])
    expect(countdown).to_have_text(re.compile(r"00:00:0\d"))
    start = page.get_by_role("button", name=lang.words["start"])
    expect(start).to_be_disabled()
    expect(page.locator(f"form[action='/deals/{deal.id}/teams']")).to_have_count(0)
    fits_the_width(page)
    screenshot(page, f"flash-sale-countdown-{lang.tag}")
    shown = countdown.text_content()
    time.sleep(1.5)
    assert countdown.text_content() != shown, "the countdown does not tick"

    # At zero the page loads again by itself: a new document, its start button working.
    expect(start).to_be_enabled(timeout=(OPENS_IN_SECONDS + 10) * 1000)
    assert page.evaluate("window.__firstLoad === undefined")
    expect(page.locator("[data-opens-in]")).to_have_count(0)
    expect(page.locator(".badge.flash")).to_have_text(words["badge"])
    fits_the_width(page)
    screenshot(page, f"flash-sale-opened-{lang.tag}")
    assert blocking_violations(page) == []
    start.click()
    amy.pay_on_sandbox()
    amy.close()
