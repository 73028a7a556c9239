"""Vouchers from team to counter in a real browser, in English and in Chinese: a team of a
hotpot deal succeeds and each shopper finds a voucher on her order (code and QR code, 375 px);
the merchant's staff type one code at the counter (1280 px), choose the shop, redeem it, undo
the mistake and redeem it again; the shopper reads where it was used; the other voucher runs out
unused and its shopper reads that it was refunded. axe finds no serious or critical problem, and
the phone pages scroll down only."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from pintuan.domain.roles import Role
from pintuan.domain.vouchers import SettleOn, VoucherTerms
from pintuan.kit.time import clock
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import fits_the_width
from tests.factories import Account, create_account, create_deal, create_merchant

VALID_DAYS = 2
WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "locale": "en-US",
        "shops": ("Jing'an shop", "Xuhui shop"),
        "ready": "Ready to use",
        "redeemed": "Redeemed: the shopper's order now shows the voucher as used.",
        "undone": "The redemption is undone: the voucher can be used again.",
        "used_at": re.compile(r"Used on .+ at Xuhui shop\."),
        "expired": re.compile(r"This voucher expired unused on .+ and was refunded\."),
        "expired_text": "and was refunded.",
    },
    "zh": {
        "locale": "zh-CN",
        "shops": ("静安店", "徐汇店"),
        "ready": "可使用",
        "redeemed": "已核销：顾客的订单中这张券显示为已使用。",  # noqa: RUF001 - Chinese punctuation
        "undone": "已撤销核销：这张券可以再次使用。",  # noqa: RUF001 - Chinese punctuation
        "used_at": re.compile(r"已于 .+ 在 徐汇店 使用。"),
        "expired": re.compile(r"这张券于 .+ 过期未使用，已退款。"),  # noqa: RUF001
        "expired_text": "过期未使用，已退款。",  # noqa: RUF001 - Chinese punctuation
    },
}


def join_and_pay(server: LiveServer, shoppers: list[Account], deal_id: str) -> None:
    """The first shopper starts the team and every one pays through the sandbox: it succeeds."""
    team_id = ""
    for shopper in shoppers:
        with httpx.Client(base_url=server.url, timeout=10, headers=shopper.headers) as api:
            taken = (
                api.post(f"/v1/teams/{team_id}/seats")
                if team_id
                else api.post(f"/v1/deals/{deal_id}/teams")
            )
            assert taken.status_code == 201, taken.text
            team_id = team_id or str(taken.json()["team"]["id"])
            payment = api.post(
                f"/v1/seats/{taken.json()['seat']['id']}/payments", json={"provider": "sandbox"}
            )
            assert payment.status_code == 201, payment.text
            paid = api.post(f"/v1/test_helpers/payments/{payment.json()['id']}/succeed")
            assert paid.status_code == 200, paid.text


def code_of(server: LiveServer, shopper: Account) -> str:
    with httpx.Client(base_url=server.url, timeout=10, headers=shopper.headers) as api:
        listed = api.get("/v1/me/vouchers")
    assert listed.status_code == 200, listed.text
    (voucher,) = listed.json()["data"]
    return str(voucher["code"])


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_voucher_is_shown_redeemed_at_the_counter_and_an_unused_one_is_refunded(
    browser: Browser, live_server: LiveServer, language: str
) -> None:
    words = WORDS[language]
    services = live_server.services
    chinese = {"currency": "CNY", "country": "CN", "time_zone": "Asia/Shanghai"}
    merchant = create_merchant(
        services.db, slug=f"hotpot-{language}", **(chinese if language == "zh" else {})
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Zhou")
    terms = VoucherTerms(VALID_DAYS, None, words["shops"], True, SettleOn.REDEMPTION)
    deal = create_deal(services.db, merchant, team_size=2, title="Hotpot for two", voucher=terms)
    lin = create_account(services, name="Lin Mei")
    wang = create_account(services, name="Wang Fang")
    if language == "zh":
        for account in (staff, lin, wang):
            speak_chinese(services, account)
    join_and_pay(live_server, [lin, wang], deal.id)
    code = code_of(live_server, lin)
    problems: list[dict[str, Any]] = []

    # Lin finds her voucher on her order: the code large, its QR code, its shops.
    shopper = Shopper(browser, live_server.url, locale=words["locale"])
    page = shopper.open("/login?next=/orders")
    shopper.log_in(lin.email)
    voucher = page.locator(".voucher").first
    expect(voucher.locator(".voucher-code")).to_contain_text(code)
    expect(voucher.locator(".voucher-qr svg")).to_be_visible()
    expect(voucher).to_contain_text(words["ready"])
    expect(voucher).to_contain_text(words["shops"][1])
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"voucher-order-issued-{language}")

    # At the counter, on a wide screen: the code typed as people type it, the shop chosen.
    counter = Shopper(browser, live_server.url, locale=words["locale"])
    cpage = counter.page
    cpage.set_viewport_size(DESKTOP)
    counter.open(f"/login?next=/console/merchants/{merchant.id}/vouchers")
    counter.log_in(staff.email)
    cpage.locator("#voucher-code").fill(code.lower().replace("-", " "))
    cpage.locator("form.counter-form button[type=submit]").click()
    cpage.wait_for_load_state()
    found = cpage.locator(".voucher-found")
    expect(found).to_contain_text("Hotpot for two")
    expect(found).to_contain_text(code)
    problems += blocking_violations(cpage)
    screenshot(cpage, f"voucher-counter-looked-up-{language}")
    cpage.set_viewport_size(DESKTOP)
    cpage.locator("#redeem-location").select_option(words["shops"][1])
    cpage.locator("form.redeem-form button[type=submit]").click()
    cpage.wait_for_load_state()
    expect(cpage.locator(".notice")).to_have_text(words["redeemed"])
    cpage.locator("form.undo-form button[type=submit]").click()
    cpage.wait_for_load_state()
    expect(cpage.locator(".notice")).to_have_text(words["undone"])
    cpage.locator("#redeem-location").select_option(words["shops"][1])
    cpage.locator("form.redeem-form button[type=submit]").click()
    cpage.wait_for_load_state()
    expect(cpage.locator(".notice")).to_have_text(words["redeemed"])
    expect(cpage.locator("form.undo-form")).to_be_visible()
    expect(cpage.locator(".console-table tbody tr")).to_have_count(2)
    problems += blocking_violations(cpage)
    screenshot(cpage, f"voucher-counter-redeemed-{language}")
    counter.close()

    # Lin reads where it was used, on her phone.
    page = shopper.open("/orders")
    expect(page.locator(".voucher").first).to_contain_text(words["used_at"])
    expect(page.locator(".voucher-qr")).to_have_count(0)
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"voucher-order-used-{language}")
    shopper.close()

    # Wang never uses hers: past its end the worker refunds it, and her order says so.
    clock.advance(timedelta(days=VALID_DAYS, minutes=1))
    other = Shopper(browser, live_server.url, locale=words["locale"])
    page = other.open("/login?next=/orders")
    other.log_in(wang.email)
    reload_until(page, words["expired_text"])
    expect(page.locator(".voucher").first).to_contain_text(words["expired"])
    expect(page.locator("form[action$='/refund']")).to_have_count(0)
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, f"voucher-order-expired-{language}")
    other.close()

    assert problems == [], [p["targets"] for p in problems]


# A browser that reads QR codes, for the scanner's script: the camera is a canvas's stream and
# the detector reads the code the test hands it once the video has frames (headless Chromium on
# Linux has neither a camera nor BarcodeDetector).
FAKE_SCANNER = """
window.BarcodeDetector = class {
  static getSupportedFormats() { return Promise.resolve(["qr_code"]); }
  detect(video) {
    return Promise.resolve(video.readyState >= 2 ? [{ rawValue: "%s" }] : []);
  }
};
navigator.mediaDevices.getUserMedia = function () {
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 64;
  canvas.getContext("2d").fillRect(0, 0, 64, 64);
  return Promise.resolve(canvas.captureStream(5));
};
"""


def test_the_counter_scans_a_qr_code_where_the_browser_can_and_hides_the_scanner_elsewhere(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db, slug="hotpot-scan")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Zhou")
    terms = VoucherTerms(VALID_DAYS, None, ("Jing'an shop",), True, SettleOn.REDEMPTION)
    deal = create_deal(services.db, merchant, team_size=2, title="Hotpot for two", voucher=terms)
    lin = create_account(services, name="Lin Mei")
    join_and_pay(live_server, [lin, create_account(services)], deal.id)
    code = code_of(live_server, lin)
    path = f"/console/merchants/{merchant.id}/vouchers"

    plain = Shopper(browser, live_server.url)
    plain.open(f"/login?next={path}")
    plain.log_in(staff.email)
    expect(plain.page.locator("[data-scanner]")).to_be_hidden()
    plain.close()

    counter = Shopper(browser, live_server.url)
    counter.context.add_init_script(FAKE_SCANNER % code.replace("-", ""))
    page = counter.open(f"/login?next={path}")
    counter.log_in(staff.email)
    page.get_by_role("button", name="Scan the QR code with the camera").click()

    expect(page.locator(".voucher-found")).to_contain_text(code)
    expect(page.locator("#voucher-code")).to_have_value(code)
    expect(page.locator("form.redeem-form")).to_be_visible()
    screenshot(page, "voucher-counter-scanned")
    counter.close()
