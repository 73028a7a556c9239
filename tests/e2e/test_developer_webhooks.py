"""The developer's webhook page in a real browser, in English and Chinese, at phone and desktop
widths: an app's endpoint and its latest deliveries, one delivered to a receiver on loopback and
one still failing against a receiver that is down. No serious or critical axe-core finding."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from pintuan.webhooks import service as webhooks
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_account, create_deal, create_merchant
from tests.fakes.webhook_receiver import Receiver
from tests.features.webhooks_world import create_partner_app


def test_a_developer_sees_the_endpoints_and_deliveries_of_their_apps(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    developer = create_account(services, name="Lin")
    app = create_partner_app(services, developer, installed_on=(merchant,))
    stranger_app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    working, broken = Receiver().up(), Receiver()  # the second never listens
    try:

        def register(session: Any) -> None:
            webhooks.create_endpoint(session, app.id, working.url, ["order.created"])
            webhooks.create_endpoint(session, app.id, broken.url, ["order.created"])
            webhooks.create_endpoint(
                session, stranger_app.id, "http://127.0.0.1:9/theirs", ["order.created"]
            )

        services.db.run_sync(register)
        deal = create_deal(services.db, merchant)
        with httpx.Client(base_url=live_server.url, timeout=10) as api:
            shopper = create_account(services)
            started = api.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
            assert started.status_code == 201, started.text

        lin = Shopper(browser, live_server.url)
        page = lin.open("/console/developer/webhooks")
        lin.log_in(developer.email)
        page.goto("/console/developer/webhooks")
        reload_until(page, "Delivered")
        reload_until(page, "ConnectError")
        expect(page.get_by_role("heading", name="Webhooks of my apps")).to_be_visible()
        expect(page.get_by_text(working.url)).to_be_visible()
        expect(page.get_by_text(broken.url)).to_be_visible()
        assert "127.0.0.1:9/theirs" not in page.content()
        screenshot(page, "developer-webhooks")
        assert blocking_violations(page) == []
        lin.close()

        speak_chinese(services, developer)
        chinese = Shopper(browser, live_server.url, locale="zh-CN")
        page = chinese.open("/console/developer/webhooks")
        chinese.log_in(developer.email)
        page.goto("/console/developer/webhooks")
        expect(page.get_by_role("heading", name="我的应用的 Webhook")).to_be_visible()
        expect(page.get_by_text("已送达")).to_be_visible()
        screenshot(page, "developer-webhooks-zh")
        assert blocking_violations(page) == []
        chinese.close()
    finally:
        working.down()
