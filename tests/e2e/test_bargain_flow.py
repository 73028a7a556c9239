"""A bargain in real browsers at 375 px, with the worker running in the server's process: Lin
opens a bargain from the deal page (in English), two friends on their own phones and networks
(one reading Chinese) help cut it, Lin's page shows them and the price they reached, and she
buys at that price and pays on the sandbox's page; her bargain then reads bought. axe finds no
serious or critical problem, and the phone pages scroll down only.

The server believes ``X-Forwarded-For`` from loopback (a trusted proxy, as behind a load
balancer), so each browser can come from a network of its own: a bargain takes one cut per
network address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.domain.roles import Role
from pintuan.kit.serving import free_port, start_in_thread
from pintuan.web.kit.i18n import gettext
from tests.conftest import make_settings
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import SERVER_TIMEOUT_SECONDS, LiveServer, copy_database
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import fits_the_width
from tests.e2e.test_mechanics_flow import api
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_bargains import seasoned


@pytest.fixture
def proxied_server(tmp_path: Path, migrated_template: Path) -> Iterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    copy_database(migrated_template, tmp_path / "e2e.db")
    settings = make_settings(
        f"sqlite:///{tmp_path / 'e2e.db'}",
        base_url=url,
        worker_idle_seconds=0.2,
        trusted_proxies=["127.0.0.1"],
    )
    services = build_services(settings)
    server = start_in_thread(create_app(settings, services, run_worker=True), port)
    try:
        server.wait_ready("/healthz", timeout=SERVER_TIMEOUT_SECONDS)
        yield LiveServer(url, services)
    finally:
        server.stop(timeout=SERVER_TIMEOUT_SECONDS)


def from_network(browser: Browser, server: LiveServer, n: int, **options: Any) -> Shopper:
    return Shopper(
        browser, server.url, extra_http_headers={"X-Forwarded-For": f"198.51.100.{n}"}, **options
    )


def logged_in(shopper: Shopper, account: Account, path: str) -> None:
    shopper.open(f"/login?next={path}")
    shopper.log_in(account.email)


def test_friends_cut_a_bargain_on_their_phones_and_its_owner_buys_at_the_price_reached(
    browser: Browser, proxied_server: LiveServer
) -> None:
    server = proxied_server
    services = server.services
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, list_price=10_000, title="Rice cooker")
    with api(server, staff) as client:
        terms = client.put(
            f"/v1/deals/{deal.id}/bargain",
            json={"floor_price": {"amount": 2_000, "currency": "USD"}, "helpers": 3, "hours": 24},
        )
        assert terms.status_code == 200, terms.text
    lin = create_account(services, name="Lin Mei")
    wang, zhao = create_account(services, name="Wang"), create_account(services, name="Zhao")
    seasoned(services, wang, zhao)
    speak_chinese(services, zhao)
    problems: list[dict[str, Any]] = []

    # Lin opens a bargain from the deal page.
    owner = from_network(browser, server, 1)
    logged_in(owner, lin, f"/deals/{deal.id}")
    page = owner.page
    page.get_by_role("button", name="Start a bargain: friends cut it to $20.00").click()
    page.wait_for_load_state()
    expect(page.locator("#bargain .notice")).to_have_text(
        "Your bargain is open: share it so friends cut the price."
    )
    expect(page.locator(".price-now")).to_have_text("$100.00")
    expect(page.locator("#bargain-url")).to_have_value(re.compile(r".*/bargains/bargain_\w+$"))
    bargain_path = "/bargains/" + page.url.split("/bargains/", 1)[1].split("?")[0]
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "bargain-opened")

    # Two friends, each on their own phone and network; Zhao reads Chinese.
    for n, (friend, name, locale) in enumerate(
        ((wang, "Wang", "en-US"), (zhao, "Zhao", "zh-CN")), start=2
    ):
        helper = from_network(browser, server, n, locale=locale)
        logged_in(helper, friend, bargain_path)
        hpage = helper.page
        label = (
            "Help cut the price" if locale == "en-US" else gettext("zh_Hans", "Help cut the price")
        )
        hpage.get_by_role("button", name=label).click()
        hpage.wait_for_load_state()
        thanks = (
            "Thank you: you cut the price."
            if locale == "en-US"
            else gettext("zh_Hans", "Thank you: you cut the price.")
        )
        expect(hpage.locator("#bargain .notice")).to_have_text(thanks)
        expect(hpage.locator(".bargain-helpers li").first).to_contain_text(name)
        fits_the_width(hpage)
        problems += blocking_violations(hpage)
        screenshot(hpage, f"bargain-cut-{locale}")
        helper.close()

    # Lin sees her friends, newest first, and the price they reached; she buys and pays.
    page = owner.open(bargain_path)
    helpers = page.locator(".bargain-helpers li")
    expect(helpers).to_have_count(2)
    expect(helpers.nth(0)).to_contain_text("Zhao")
    expect(helpers.nth(1)).to_contain_text("Wang")
    expect(page.locator("#bargain-progress")).to_have_attribute("value", "2")
    price = (page.locator(".price-now").text_content() or "").strip()
    assert re.fullmatch(r"\$\d+\.\d\d", price), price
    assert 20 < float(price[1:]) < 100
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "bargain-helped")
    page.get_by_role("button", name=f"Buy at {price}").click()
    owner.pay_on_sandbox()
    reload_until(page, "Paid")
    page = owner.open(bargain_path)
    reload_until(page, f"You bought it for {price}.")
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "bargain-bought")
    owner.close()

    assert problems == [], [p["targets"] for p in problems]
