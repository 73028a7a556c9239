"""Goods from team to doorstep in a real browser, in English and in Chinese, at 375 and 1280 px:
the shopper keeps an address (every wrong field shown at once), chooses it for her seat, the team
succeeds, the merchant marks one order shipped on its row and another by CSV upload (with a bad
line reported), and the shopper confirms receipt and reads the order's timeline. axe finds no
serious or critical problem on any of these pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.fulfilment import CN_ADDRESS

WORDS = {
    "en": {
        "locale": "en-US",
        "saved": "Your delivery address is saved on the order.",
        "required": "Required.",
        "report": "1 shipped, 0 already shipped, 1 refused.",
        "no_address": "The shopper has not chosen an address yet.",
        "received": "Received",
    },
    "zh": {
        "locale": "zh-CN",
        "saved": "收货地址已保存到订单。",
        "required": "必填。",
        "report": "已发货 1 个，原已发货 0 个，被拒绝 1 个。",  # noqa: RUF001 - Chinese punctuation
        "no_address": "顾客尚未选择收货地址。",
        "received": "已收货",
    },
}


def api_seat(server: LiveServer, shopper: Account, team_id: str, *, address: bool) -> str:
    """A shopper joins through the API, perhaps choosing an address first, and pays."""
    with httpx.Client(base_url=server.url, timeout=10, headers=shopper.headers) as api:
        joined = api.post(f"/v1/teams/{team_id}/seats")
        assert joined.status_code == 201, joined.text
        seat_id = str(joined.json()["seat"]["id"])
        if address:
            made = api.post("/v1/me/addresses", json={**CN_ADDRESS, "recipient": "Wang Fang"})
            assert made.status_code == 201, made.text
            chosen = api.post(
                f"/v1/seats/{seat_id}/address", json={"address_id": made.json()["id"]}
            )
            assert chosen.status_code == 200, chosen.text
        payment = api.post(f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"})
        assert payment.status_code == 201, payment.text
        paid = api.post(f"/v1/test_helpers/payments/{payment.json()['id']}/succeed")
        assert paid.status_code == 200, paid.text
    return seat_id


def submit(page: Page, action: str) -> None:
    page.locator(f"form[action='{action}'] button[type=submit]").first.click()
    page.wait_for_load_state()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_address_then_success_then_shipped_one_by_one_and_by_csv_then_received(
    browser: Browser, live_server: LiveServer, language: str, tmp_path: Any
) -> None:
    words = WORDS[language]
    services = live_server.services
    merchant = create_merchant(
        services.db,
        currency="CNY",
        country="CN",
        time_zone="Asia/Shanghai",
        slug=f"fruit-{language}",
    )
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Zhou")
    deal = create_deal(
        services.db,
        merchant,
        team_size=3,
        vertical=Vertical.GOODS,
        title="Lychees 2 kg",
        list_price=12800,
        group_price=9900,
    )
    lin = create_account(services, name="Lin Mei")
    if language == "zh":
        speak_chinese(services, lin)
        speak_chinese(services, staff)
    problems: list[dict[str, Any]] = []
    shopper = Shopper(browser, live_server.url, locale=words["locale"])

    # The address book: a form with wrong fields shows every error at once.
    page = shopper.open("/login?next=/me/addresses/new%3Fcountry%3DCN")
    shopper.log_in(lin.email)
    page.locator("#recipient").fill(CN_ADDRESS["recipient"])
    page.locator("#phone").fill("12")
    submit(page, "/me/addresses")
    for field in ("phone", "region", "city", "district", "line1"):
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#city-error")).to_have_text(words["required"])
    problems += blocking_violations(page)
    screenshot(page, f"delivery-address-errors-{language}")
    for field in ("phone", "region", "city", "district", "line1", "postcode"):
        page.locator(f"#{field}").fill(CN_ADDRESS[field])
    submit(page, "/me/addresses")
    expect(page).to_have_url(re.compile(r".*/me/addresses$"))
    problems += blocking_violations(page)

    # She starts a team: for goods, checkout asks where it goes (her default is chosen), then
    # she pays.
    page = shopper.open(f"/deals/{deal.id}")
    submit(page, f"/deals/{deal.id}/teams")
    expect(page).to_have_url(re.compile(r".*/teams/team_\w+#delivery$"))
    team_id = page.url.rsplit("/", 1)[1].split("#")[0]
    seat_action = page.locator("form[action$='/address']").get_attribute("action")
    assert seat_action is not None
    lin_seat = seat_action.split("/")[2]
    problems += blocking_violations(page)
    screenshot(page, f"delivery-checkout-address-{language}")
    submit(page, seat_action)
    expect(page.locator("#delivery .notice")).to_have_text(words["saved"])
    submit(page, f"/seats/{lin_seat}/pay")
    shopper.pay_on_sandbox()
    expect(page.locator("#delivery address")).to_contain_text(CN_ADDRESS["line1"])
    problems += blocking_violations(page)
    screenshot(page, f"delivery-team-forming-{language}")

    # Two friends join: one with an address, one without; the team succeeds.
    wang_seat = api_seat(live_server, create_account(services), team_id, address=True)
    zhao_seat = api_seat(live_server, create_account(services), team_id, address=False)
    reload_until(page, 'class="status-banner good"')  # the team succeeded

    # The merchant ships hers on its row, and the others by CSV: one good line, one bad.
    console = Shopper(browser, live_server.url, locale=words["locale"])
    queue = f"/console/merchants/{merchant.id}/shipping"
    cpage = console.open(f"/login?next={queue}")
    console.log_in(staff.email)
    reload_until(cpage, lin_seat)
    problems += blocking_violations(cpage)
    screenshot(cpage, f"delivery-shipping-queue-{language}")
    row = cpage.locator(f"#order-{lin_seat}")
    row.locator("input[name=carrier]").fill("SF Express")
    row.locator("input[name=tracking_number]").fill("SF 1234 5678 90")
    row.locator("button[type=submit]").click()
    cpage.wait_for_load_state()
    expect(cpage.locator(".notice")).to_be_visible()
    csv_file = tmp_path / "shipping.csv"
    csv_file.write_text(
        "seat_id,carrier,tracking_number\n"
        f"{wang_seat},EMS,EE123456789CN\n"
        f"{zhao_seat},EMS,EE123456790CN\n",
        encoding="utf-8",
    )
    cpage.locator("#shipping-file").set_input_files(str(csv_file))
    submit(cpage, f"/console/merchants/{merchant.id}/shipping/upload")
    expect(cpage.locator(".shipping-report [role=status]")).to_have_text(words["report"])
    expect(cpage.locator(".shipping-report")).to_contain_text(words["no_address"])
    problems += blocking_violations(cpage)
    screenshot(cpage, f"delivery-shipping-csv-report-{language}")
    console.close()

    # She reads the timeline and confirms receipt.
    page = shopper.open("/orders")
    expect(page.locator(".timeline").first).to_contain_text("SF1234567890")
    submit(page, f"/seats/{lin_seat}/received")
    expect(page.locator(".timeline").first).to_contain_text(words["received"])
    problems += blocking_violations(page)
    screenshot(page, f"delivery-order-timeline-{language}")
    page = shopper.open(f"/teams/{team_id}")
    problems += blocking_violations(page)
    screenshot(page, f"delivery-team-received-{language}")
    shopper.close()

    assert problems == [], [p["targets"] for p in problems]
