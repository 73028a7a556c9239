"""The home page's aggregated feed in a phone's browser, in English and Chinese: deals and a
team one seat from full side by side, and a click and a join logged against the slate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.feed.models import FeedReward
from pintuan.kit.migrations import upgrade
from pintuan.kit.serving import free_port, start_in_thread
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import service as teams
from tests.conftest import make_settings
from tests.console_data import speak_chinese
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import SERVER_TIMEOUT_SECONDS, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_account, create_deal, create_merchant

HOLD = timedelta(hours=1)


@pytest.fixture
def feed_server(tmp_path: object) -> Iterator[LiveServer]:
    """A server whose feed writes its log every fifth of a second (as a deployment does every
    half second) and whose worker credits joins as they come."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path}/feed.db"
    upgrade(database_url)
    settings = make_settings(
        database_url,
        base_url=url,
        worker_idle_seconds=0.2,
        feed_flush_seconds=0.2,
        feed_refresh_seconds=0.2,
    )
    services = build_services(settings)
    server = start_in_thread(create_app(settings, services, run_worker=True), port)
    try:
        server.wait_ready("/healthz", timeout=SERVER_TIMEOUT_SECONDS)
        yield LiveServer(url, services)
    finally:
        server.stop(timeout=SERVER_TIMEOUT_SECONDS)


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(0.2)


def _rewards(services: Services) -> set[tuple[str, int, str]]:
    return services.db.run_sync(
        lambda s: {(r.impression_id, r.position, r.event) for r in s.scalars(select(FeedReward))}
    )


def _team_one_seat_from_full(services: Services, deal_id: str) -> str:
    leader, other = create_account(services), create_account(services)
    now = utc_now()
    started = services.db.run_raw_sync(
        lambda tx: teams.start_team(tx, leader.user_id, deal_id, now, hold=HOLD)
    )
    services.db.run_raw_sync(
        lambda tx: teams.join_team(tx, other.user_id, started.team_id, now, hold=HOLD)
    )
    return started.team_id


@pytest.mark.parametrize(
    ("locale", "join_card", "join_words"),
    [("en-US", "Join this team", "1 seat left"), ("zh-CN", "加入这个团", "还差 1 人")],
)
def test_the_phone_home_page_mixes_deals_and_teams_and_logs_a_click_and_a_join(
    browser: Browser, feed_server: LiveServer, locale: str, join_card: str, join_words: str
) -> None:
    services = feed_server.services
    merchant = create_merchant(services.db)
    hotpot = create_deal(services.db, merchant, title="Hotpot for three", team_size=3)
    create_deal(services.db, merchant, title="Cinema night", vertical=Vertical.MOVIES)
    create_deal(services.db, merchant, title="Tea set", vertical=Vertical.GOODS)
    team_id = _team_one_seat_from_full(services, hotpot.id)
    shopper = create_account(services, email=f"feed-{locale}@example.com")
    if locale.startswith("zh"):
        speak_chinese(services, shopper)  # a signed-in shopper reads their account's language
    browser_of = Shopper(browser, feed_server.url, locale=locale)

    home = browser_of.open("/login")
    browser_of.log_in(shopper.email)
    home = browser_of.open("/")
    cards = home.locator(".cards")
    expect(cards.locator(".card-team")).to_contain_text(join_card)
    expect(cards.locator(".card-team")).to_contain_text(join_words)
    expect(cards.locator(".card")).to_have_count(4)
    boxes = [cards.locator(".card").nth(i).bounding_box() for i in range(2)]
    assert boxes[0] is not None
    assert boxes[1] is not None
    assert boxes[0]["y"] == boxes[1]["y"]  # two cards a row at 375 px
    screenshot(home, f"home-feed-{locale}")
    assert blocking_violations(home) == []
    impression = cards.get_attribute("data-impression")

    deal_card = cards.locator("a[data-feed-kind=deal]").first
    deal_position = int(deal_card.get_attribute("data-feed-position") or -1)
    deal_card.click()
    expect(home).to_have_url(re.compile(r".*/deals/deal_\w+$"))
    home.go_back()  # the page is drawn again: a new slate
    again = cards.get_attribute("data-impression")
    team_card = cards.locator("a[data-feed-kind=team]")
    team_position = int(team_card.get_attribute("data-feed-position") or -1)
    team_card.click()
    expect(home).to_have_url(re.compile(rf".*/teams/{team_id}$"))
    home.locator(f"form[action='/teams/{team_id}/join'] button[type=submit]").click()
    expect(home).to_have_url(re.compile(r".*/sandbox/checkout/.*"))
    screenshot(home, f"home-feed-joined-{locale}")

    wanted = {
        (impression, deal_position, "click"),
        (again, team_position, "click"),
        (again, team_position, "join"),
    }
    _wait_for(
        lambda: wanted <= _rewards(services),
        f"crediting {wanted} (credited: {_rewards(services)})",
    )
    browser_of.close()


def test_an_operator_splits_the_feed_between_two_policies_on_the_console(
    browser: Browser, feed_server: LiveServer
) -> None:
    operator = create_account(feed_server.services, role=Role.OPERATOR)
    console = Shopper(browser, feed_server.url)
    page = console.open("/login")
    console.log_in(operator.email)
    page = console.open("/console/operator/feed/rules")
    assert blocking_violations(page) == []
    screenshot(page, "console-feed-rules")

    page.locator("#arm_share_0").fill("0.8")
    page.locator("#arm_name_1").fill("control")
    page.locator("#arm_kind_1").select_option("random")
    page.locator("#arm_share_1").fill("0.2")
    page.locator("#share_travel").fill("0.1")
    page.get_by_role("button", name="Save the feed's rules").click()

    expect(page.locator(".notice")).to_contain_text("saved")
    expect(page.locator("#arm_name_1")).to_have_value("control")
    expect(page.locator("#share_travel")).to_have_value("0.1")
    console.close()
