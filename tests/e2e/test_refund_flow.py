"""A refund after success in a real browser, in English and in Chinese: the merchant's staff
open an order of a team that succeeded (1280 px), refund part of it with a reason (a wrong
amount refused first, on the form), and its shopper sees the refund in /orders (375 px). axe
finds no serious or critical problem on these pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from pintuan.domain.roles import Role
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import Account, create_account, create_deal, create_merchant

WORDS = {
    "en": {
        "locale": "en-US",
        "too_much": "That is more than is left to refund of this order",
        "recorded": "The refund is recorded; the shopper sees it in their orders.",
        "refunds": "Refunds",
        "done": "Refund done",
    },
    "zh": {
        "locale": "zh-CN",
        "too_much": "超出了该订单剩余可退的金额",
        "recorded": "退款已记录；顾客可在其订单中看到。",  # noqa: RUF001 - Chinese punctuation
        "refunds": "退款",
        "done": "退款完成",
    },
}


def paid_seat(server: LiveServer, shopper: Account, deal_id: str, team_id: str | None) -> Any:
    """A shopper starts or joins a team through the API and pays at the sandbox."""
    with httpx.Client(base_url=server.url, timeout=10, headers=shopper.headers) as api:
        made = api.post(f"/v1/teams/{team_id}/seats" if team_id else f"/v1/deals/{deal_id}/teams")
        assert made.status_code == 201, made.text
        seat = made.json()["seat"]
        payment = api.post(f"/v1/seats/{seat['id']}/payments", json={"provider": "sandbox"})
        assert payment.status_code == 201, payment.text
        paid = api.post(f"/v1/test_helpers/payments/{payment.json()['id']}/succeed")
        assert paid.status_code == 200, paid.text
        return made.json()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_merchant_refunds_part_of_a_seat_and_the_shopper_sees_it_in_orders(
    browser: Browser, live_server: LiveServer, language: str
) -> None:
    words = WORDS[language]
    services = live_server.services
    merchant = create_merchant(services.db, slug=f"dumplings-{language}")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Zhou")
    deal = create_deal(services.db, merchant, team_size=2, title="Dumplings for two")
    lin = create_account(services, name="Lin Mei")
    if language == "zh":
        speak_chinese(services, lin)
        speak_chinese(services, staff)
    started = paid_seat(live_server, lin, deal.id, None)
    paid_seat(live_server, create_account(services), deal.id, started["team"]["id"])
    seat_id = started["seat"]["id"]
    problems: list[dict[str, Any]] = []

    # The staff open the order once the worker captured the team's holds
    console = Shopper(browser, live_server.url, locale=words["locale"])
    order = f"/console/merchants/{merchant.id}/seats/{seat_id}"
    page = console.open(f"/login?next={order}")
    page.set_viewport_size(DESKTOP)
    console.log_in(staff.email)
    reload_until(page, 'id="refund-amount"')

    # Too much is refused on the form, what was typed kept
    page.locator("#refund-amount").fill("99")
    page.locator("#refund-reason").fill("Box arrived dented")
    page.locator("form.refund-form button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#refund-error")).to_contain_text(words["too_much"])
    expect(page.locator("#refund-reason")).to_have_value("Box arrived dented")
    problems += blocking_violations(page)
    screenshot(page, f"refund-order-refused-{language}")

    # Part of it goes through
    page.set_viewport_size(DESKTOP)
    page.locator("#refund-amount").fill("5.00")
    page.locator("form.refund-form button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator(".notice")).to_have_text(words["recorded"])
    expect(page.locator("#refund-left")).to_contain_text("10.00")
    problems += blocking_violations(page)
    screenshot(page, f"refund-order-refunded-{language}")
    console.close()

    # The shopper sees it in her orders, done once the worker made it at the provider
    shopper = Shopper(browser, live_server.url, locale=words["locale"])
    page = shopper.open("/login?next=/orders")
    shopper.log_in(lin.email)
    reload_until(page, words["done"])
    refunds = page.locator(f"#order-{seat_id} .order-refunds")
    expect(refunds).to_contain_text(words["refunds"])
    expect(refunds).to_contain_text("5.00")
    expect(refunds).to_contain_text("Box arrived dented")
    problems += blocking_violations(page)
    screenshot(page, f"refund-shopper-orders-{language}")
    shopper.close()

    assert problems == [], [p["targets"] for p in problems]
