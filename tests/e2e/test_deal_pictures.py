"""Pictures and the deal list in a real browser, at 375 and 1280 px, in English and Chinese: a
merchant uploads two pictures and puts them in order; shoppers see them on the card and the deal
page; the home page sorts, narrows to the viewer's region and shows the teams forming now. axe
finds no serious or critical problem on any of these pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_consoles import log_in_to_console
from tests.factories import create_account, create_deal, create_merchant
from tests.media_pictures import picture

LANGUAGES = {"en": "en-US", "zh": "zh-CN"}


def image_loaded(page: Page, selector: str) -> bool:
    loaded: bool = page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")
    return loaded


def picture_ids(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "[data-image-id]", "items => items.map(i => i.dataset.imageId)"
    )
    return ids


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_a_merchant_uploads_and_orders_pictures_and_shoppers_see_them(
    browser: Browser, live_server: LiveServer, tmp_path: Path, language: str
) -> None:
    db = live_server.services.db
    merchant = create_merchant(db)
    deal = create_deal(db, merchant, title="Hand-pulled noodles", team_size=3)
    staff = create_account(
        live_server.services, role=Role.MERCHANT, merchant=merchant, email="chef@example.com"
    )
    if language == "zh":
        speak_chinese(live_server.services, staff)
    files = []
    for name, colour in (("bowl.jpg", "tomato"), ("kitchen.png", "seagreen")):
        path = tmp_path / name
        path.write_bytes(picture(colour, (1600, 1000), "PNG" if name.endswith("png") else "JPEG"))
        files.append(str(path))
    problems: list[dict[str, Any]] = []

    merchant_browser = Shopper(browser, live_server.url, locale=LANGUAGES[language])
    page = log_in_to_console(merchant_browser, staff.email)
    page = merchant_browser.open(f"/console/merchants/{merchant.id}/deals/{deal.id}")
    page.locator("#deal-pictures").set_input_files(files)
    page.locator("form.upload-form button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator(".picture-item")).to_have_count(2)
    first, second = picture_ids(page)
    page.locator(f"[data-image-id='{first}'] form[action$='/move'] button").click()
    page.wait_for_load_state()
    assert picture_ids(page) == [second, first]
    expect(page.locator(".notice, [role=status]").first).to_be_visible()
    if language == "zh":
        expect(page.get_by_text("图片已移动。")).to_be_visible()
    assert image_loaded(page, f"[data-image-id='{second}'] img")
    problems += blocking_violations(page)
    screenshot(page, f"pictures-editor-{language}")
    merchant_browser.close()

    start = httpx.post(
        f"{live_server.url}/v1/deals/{deal.id}/teams",
        headers=create_account(live_server.services).headers,
    )
    assert start.status_code == 201, start.text
    shopper = Shopper(
        browser,
        live_server.url,
        locale=LANGUAGES[language],
        timezone_id="America/New_York",
    )
    listed = shopper.open("/?sort=newest")  # the sorted list keeps the strip of teams forming
    expect(listed.locator(".forming-strip")).to_be_visible()
    home = shopper.open("/")
    card = home.locator(f"a.card-link[href$='/{deal.id}']")
    expect(card.locator("img")).to_have_attribute("src", f"/media/{second}-thumb.webp")
    assert image_loaded(home, f"a.card-link[href$='/{deal.id}'] img")
    expect(card.locator(".card-forming")).to_contain_text("1")
    expect(card.locator("[data-countdown]")).to_have_text(re.compile(r"\d+:\d\d:\d\d"))
    columns = home.eval_on_selector(
        ".cards", "el => getComputedStyle(el).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2  # two cards a row on a 375 px phone
    problems += blocking_violations(home)
    screenshot(home, f"pictures-home-{language}")

    card.click()
    deal_page = shopper.page
    expect(deal_page).to_have_url(re.compile(f".*/deals/{deal.id}"))
    gallery = deal_page.locator(".gallery img")
    expect(gallery).to_have_count(2)
    expect(gallery.first).to_have_attribute("src", f"/media/{second}-large.webp")
    expect(gallery.nth(1)).to_have_attribute("src", f"/media/{first}-large.webp")
    assert image_loaded(deal_page, ".gallery img")
    problems += blocking_violations(deal_page)
    screenshot(deal_page, f"pictures-deal-{language}")
    shopper.close()  # no Content-Security-Policy complaint: pictures come from our origin

    assert problems == [], repr([(p["rule"], p["targets"]) for p in problems])


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_home_page_sorts_and_narrows_to_the_viewers_region(
    browser: Browser, live_server: LiveServer, language: str
) -> None:
    db = live_server.services.db
    cn = create_merchant(db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    de = create_merchant(db, currency="EUR", country="DE", time_zone="Europe/Berlin")
    now = utc_now()
    made = {
        "Dumplings": (cn, 5, 9900, 6900),
        "Mooncakes": (cn, 1, 26800, 16800),
        "Cinema night": (de, 2, 2400, 1590),
    }
    for title, (shop, days, list_price, group_price) in made.items():
        deal = create_deal(db, shop, title=title, list_price=list_price, group_price=group_price)
        db.run_sync(
            lambda s, d=deal.id, days=days: s.execute(
                update(Deal).where(Deal.id == d).values(ends_at=now + timedelta(days=days))
            )
        )
    # A CDN in front of the site says where the visitor is (Cloudflare's header here).
    shopper = Shopper(
        browser,
        live_server.url,
        locale=LANGUAGES[language],
        extra_http_headers={"cf-ipcountry": "CN"},
    )

    def titles() -> list[str]:
        found: list[str] = shopper.page.eval_on_selector_all(
            ".card-title", "els => els.map(e => e.textContent)"
        )
        return found

    page = shopper.open("/")
    assert sorted(titles()) == ["Dumplings", "Mooncakes"]  # in China: the Chinese deals
    page.locator("#list-sort").select_option("ending_soon")
    page.wait_for_url(re.compile(r".*sort=ending_soon.*"))
    assert titles() == ["Mooncakes", "Dumplings"]
    screenshot(page, f"deal-list-sorted-{language}")
    page.locator("#list-region").select_option("all")
    page.wait_for_url(re.compile(r".*region=all.*"))
    assert titles() == ["Mooncakes", "Cinema night", "Dumplings"]
    page.locator("#list-region").select_option("DE")
    page.wait_for_url(re.compile(r".*region=DE.*"))
    assert titles() == ["Cinema night"]
    if language == "zh":
        expect(page.locator("label[for=list-sort]")).to_have_text("排序")
    assert blocking_violations(page) == []
    screenshot(page, f"deal-list-region-{language}")
    shopper.close()


def test_the_strip_of_teams_forming_now_refreshes_itself(
    browser: Browser, live_server: LiveServer
) -> None:
    db = live_server.services.db
    merchant = create_merchant(db)
    first = create_deal(db, merchant, title="Dim sum", team_size=3)
    second = create_deal(db, merchant, title="Hotpot", team_size=4)

    def start_team(deal_id: str) -> None:
        started = httpx.post(
            f"{live_server.url}/v1/deals/{deal_id}/teams",
            headers=create_account(live_server.services).headers,
        )
        assert started.status_code == 201, started.text

    start_team(first.id)
    shopper = Shopper(browser, live_server.url)
    shopper.page.clock.install()
    page = shopper.open("/?sort=newest")  # the sorted list: the feed mixes teams in instead
    expect(page.locator(".forming-item")).to_have_count(1)

    start_team(second.id)
    page.clock.fast_forward("00:31")

    expect(page.locator(".forming-item")).to_have_count(2)
    expect(page.locator(".forming-strip")).to_contain_text("Hotpot")
    shopper.close()
