"""The feed lab in a real browser, in English and Simplified Chinese: the latest simulation's
chart and table, and a policy judged on logged slates from the form, estimates beside the
logged value. Screenshots at 375 and 1280 px; no serious accessibility violation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect

from pintuan.domain.feed_simulator import SimulationSettings, simulate
from pintuan.domain.roles import Role
from pintuan.feed.simulation import write_simulation
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_account
from tests.features.feed_logs import log_slates

LANGUAGES = {"en": "en-US", "zh": "zh-CN"}


@pytest.fixture
def simulated(live_server: LiveServer) -> Iterator[LiveServer]:
    folder = live_server.services.settings.feed_simulation_dir
    small = SimulationSettings(visits=200, shoppers=40, catalogue=100, pool=20, slots=6, seed=5)
    write_simulation(simulate(small), folder)
    try:
        yield live_server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_operator_reads_the_simulation_and_judges_a_policy(
    browser: Browser, simulated: LiveServer, lang: str
) -> None:
    services = simulated.services
    services.db.run_sync(
        lambda s: log_slates(s, slates=150, start=datetime(2026, 11, 20, 8, tzinfo=UTC))
    )
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    if lang == "zh":
        speak_chinese(services, operator)
    olga = Shopper(browser, simulated.url, locale=LANGUAGES[lang])
    olga.page.set_viewport_size(DESKTOP)
    olga.open("/login")
    olga.log_in(operator.email)
    page = olga.open("/console/operator/feed/lab")

    chart = page.locator("img.chart")
    expect(chart).to_be_visible()
    assert page.evaluate("document.querySelector('img.chart').naturalWidth") == 1200
    expect(page.locator("tbody tr")).to_have_count(3)
    page.fill("input[name=policy]", "random")
    page.fill("input[name=first]", "2026-11-20")
    page.fill("input[name=last]", "2026-11-20")
    page.locator("form.filters button[type=submit]").click()

    table = page.locator("#evaluation")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table).to_contain_text("SNIPS")
    expect(page.locator("h1")).to_have_text("Feed lab" if lang == "en" else "信息流实验室")
    screenshot(page, f"feed-lab-{lang}")
    assert blocking_violations(page) == []
    olga.close()
