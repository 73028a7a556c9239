"""An app's deep link in a real browser: a shopper arrives through a partner app's link, starts a
team and pays; the operator's growth page then shows that traffic under the app's own name, in
English and in Chinese, with no serious accessibility problem."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.domain.traffic import app_channel
from pintuan.growth.service import rollup_day
from pintuan.kit.time import utc_now
from pintuan.shares.models import ShareConversion
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_account, create_deal, create_merchant
from tests.partnering import create_app_record

APP = "Lumière Cinema"


def test_a_shopper_brought_by_an_app_is_credited_to_it_on_the_growth_page(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    deal = create_deal(services.db, create_merchant(services.db), title="Dune, 19:30", team_size=2)
    developer = create_account(services)
    app_id = create_app_record(services.db, developer.user_id, name=APP)
    amy = Shopper(browser, live_server.url)

    page = amy.open(f"/a/{app_id}/deals/{deal.id}")
    expect(page).to_have_url(f"{live_server.url}/deals/{deal.id}")
    amy.sign_up("Amy Lin", "amy@example.com")
    amy.open(f"/deals/{deal.id}").get_by_role("button", name="Start a team $15.00").click()
    amy.pay_on_sandbox()
    amy.close()

    def credited() -> bool:
        kinds = services.db.run_sync(
            lambda s: set(s.scalars(select(ShareConversion.kind))), write=False
        )
        return {"start", "pay"} <= kinds

    deadline = time.monotonic() + 20
    while not credited():
        assert time.monotonic() < deadline, "the worker never credited the app's share"
        time.sleep(0.2)
    services.db.run_sync(lambda s: rollup_day(s, utc_now().date(), utc_now()))

    operator = create_account(services, role=Role.OPERATOR, email="olivia@example.com")
    olivia = Shopper(browser, live_server.url)
    page = olivia.open("/login?next=/console/operator/growth")
    olivia.log_in(operator.email)
    page.get_by_label("Channel", exact=True).select_option(label=f"App: {APP}")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_label("Channel", exact=True)).to_have_value(app_channel(app_id))
    expect(page.locator("table").first.get_by_role("rowheader").first).to_have_text(f"App: {APP}")
    expect(page.get_by_role("heading", name=f"Visits per week: App: {APP}")).to_be_visible()
    screenshot(page, "console-growth-app")
    assert blocking_violations(page) == []
    olivia.close()

    speak_chinese(services, operator)
    chen = Shopper(browser, live_server.url, locale="zh-CN")
    page = chen.open("/login?next=/console/operator/growth")
    chen.log_in(operator.email)
    expect(
        page.get_by_role(
            "option",
            name=f"应用\uff1a{APP}",  # a full-width colon, as Chinese writes it
        )
    ).to_have_count(1)
    screenshot(page, "console-growth-app-zh")
    assert blocking_violations(page) == []
    chen.close()
