"""Buying alone, sharing first and teams that stay true, in real browsers at 375 and 1280 px, in
English and Chinese: buy alone through to paid; the phone's share sheet offered (the page's
navigator.share stubbed to record the call) and the copy fallback where there is none; a leader
who leaves hands the team to the next member, and a full team says who still has to pay."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import create_deal, create_merchant


@dataclass(frozen=True)
class Language:
    tag: str
    locale: str
    currency: str
    country: str
    time_zone: str
    names: tuple[str, str, str]
    words: dict[str, str]


ENGLISH = Language(
    "en",
    "en-US",
    "USD",
    "US",
    "America/New_York",
    ("Amy Lin", "Ben Ode", "Cai Wen"),
    {
        "buy_alone": "Buy alone $20.00",
        "start": "Start a team $15.00",
        "join": "Join this team for $15.00",
        "paid_alone": "Paid: you bought it alone at the list price.",
        "share": "Share with friends",
        "copy": "Copy link",
        "copied": "Link copied",
        "invited": "{name} invited you · 2 seats left",
        "waits": "The team is full and waits for 1 payment.",
        "has_until": "{name} has until",
        "leave": "Leave this team",
        "confirm": "Yes, leave this team",
        "leader": "Leader",
        "left": "1 seat left",
        "team_of": "the team of {name}",
    },
)
CHINESE = Language(
    "zh",
    "zh-CN",
    "CNY",
    "CN",
    "Asia/Shanghai",
    ("王美", "李雷", "陈静"),
    {
        "buy_alone": "¥20.00 单独购买",
        "start": "¥15.00 开团",
        "join": "¥15.00 参团",
        "paid_alone": "已付款：你已按原价单独购买。",  # noqa: RUF001
        "share": "分享给好友",
        "copy": "复制链接",
        "copied": "链接已复制",
        "invited": "{name} 邀请你参团 · 还差 2 人",
        "waits": "团已满员，还在等 1 人付款。",  # noqa: RUF001
        "has_until": "{name} 需在",
        "leave": "退出此团",
        "confirm": "确定退出此团",
        "leader": "团长",
        "left": "还差 1 人",
        "team_of": "",
    },
)
LANGUAGES = [pytest.param(ENGLISH, id="en"), pytest.param(CHINESE, id="zh")]

# The page's own share sheet, replaced before any script of the page runs: it records what it
# was asked to share and resolves as a phone's does when the shopper picks an app.
RECORD_SHARE = """
  window.__shared = [];
  Object.defineProperty(Navigator.prototype, "share", {
    configurable: true,
    value: function (data) { window.__shared.push(data); return Promise.resolve(); }
  });
"""
# A desktop browser without a share sheet.
NO_SHARE_SHEET = "delete Navigator.prototype.share; delete navigator.share;"


def shopper(browser: Browser, server: LiveServer, lang: Language, **options: object) -> Shopper:
    return Shopper(browser, server.url, locale=lang.locale, timezone_id=lang.time_zone, **options)


def a_deal(server: LiveServer, lang: Language, *, team_size: int = 3) -> str:
    merchant = create_merchant(
        server.services.db, currency=lang.currency, country=lang.country, time_zone=lang.time_zone
    )
    return create_deal(
        server.services.db, merchant, title="Hotpot", team_size=team_size, per_user_limit=2
    ).id


def start_and_pay(person: Shopper, deal_id: str, lang: Language) -> Page:
    page = person.open(f"/deals/{deal_id}")
    page.get_by_role("button", name=lang.words["start"]).click()
    person.pay_on_sandbox()
    return page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_buying_alone_goes_through_to_paid(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    deal_id = a_deal(live_server, lang)
    amy = shopper(browser, live_server, lang)
    amy.sign_up(lang.names[0], f"amy-{lang.tag}@example.com")

    page = amy.open(f"/deals/{deal_id}")
    buy_alone = page.get_by_role("button", name=lang.words["buy_alone"])
    expect(buy_alone).to_be_visible()
    expect(page.get_by_role("button", name=lang.words["start"])).to_be_visible()
    screenshot(page, f"deal-buy-alone-{lang.tag}")
    assert blocking_violations(page) == []
    buy_alone.click()
    amy.pay_on_sandbox()

    expect(page.locator(".status-banner")).to_have_text(lang.words["paid_alone"])
    expect(page.locator("#share")).to_have_count(0)
    expect(page.locator(".members")).to_have_count(0)
    screenshot(page, f"solo-paid-{lang.tag}")
    assert blocking_violations(page) == []
    amy.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_team_page_offers_the_phones_share_sheet_in_one_tap(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    deal_id = a_deal(live_server, lang)
    amy = shopper(browser, live_server, lang)
    amy.context.add_init_script(RECORD_SHARE)
    amy.sign_up(lang.names[0], f"amy-{lang.tag}@example.com")

    page = start_and_pay(amy, deal_id, lang)
    share = page.get_by_role("button", name=lang.words["share"])
    expect(share).to_be_visible()
    expect(page.get_by_role("button", name=lang.words["copy"], exact=True)).to_be_hidden()
    screenshot(page, f"team-share-sheet-{lang.tag}")
    link = page.locator("#share-url").input_value()
    share.click()

    page.wait_for_function("window.__shared.length === 1")
    [shared] = page.evaluate("window.__shared")
    assert shared["url"] == link
    assert re.fullmatch(re.escape(f"{live_server.url}/s/") + r"\w{10}", link)
    assert "Hotpot" in shared["title"]
    assert "Hotpot" in shared["text"]
    amy.close()


def test_without_a_share_sheet_one_tap_copies_the_link(
    browser: Browser, live_server: LiveServer
) -> None:
    lang = ENGLISH
    deal_id = a_deal(live_server, lang)
    amy = shopper(browser, live_server, lang)
    amy.page.set_viewport_size(DESKTOP)  # a desktop browser: no share sheet there
    amy.context.add_init_script(NO_SHARE_SHEET)
    amy.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    amy.sign_up(lang.names[0], "amy@example.com")

    page = start_and_pay(amy, deal_id, lang)
    expect(page.get_by_role("button", name=lang.words["share"])).to_be_hidden()
    copy = page.get_by_role("button", name=lang.words["copy"], exact=True)
    copy.click()

    expect(page.locator("#share-status")).to_have_text(lang.words["copied"])
    link = page.locator("#share-url").input_value()
    assert page.evaluate("navigator.clipboard.readText()") == link
    expect(page.locator(".share-actions").get_by_role("link")).to_have_attribute(
        "href", re.compile(r"/poster\.png\?lang=en$")
    )
    screenshot(page, "team-share-copy")
    amy.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_leader_who_leaves_hands_the_team_to_the_next_member(
    browser: Browser, live_server: LiveServer, lang: Language
) -> None:
    deal_id = a_deal(live_server, lang)
    amy_name, ben_name, cai_name = lang.names
    amy, ben, cai = (shopper(browser, live_server, lang) for _ in range(3))
    amy.sign_up(amy_name, f"amy-{lang.tag}@example.com")
    ben.sign_up(ben_name, f"ben-{lang.tag}@example.com")
    cai.sign_up(cai_name, f"cai-{lang.tag}@example.com")
    team_page = start_and_pay(amy, deal_id, lang)
    link = team_page.locator("#share-url").input_value()

    ben_page = ben.open(link)
    expect(ben_page.locator("#invited")).to_have_text(lang.words["invited"].format(name=amy_name))
    screenshot(ben_page, f"team-invited-{lang.tag}")
    assert blocking_violations(ben_page) == []
    ben_page.get_by_role("button", name=lang.words["join"]).click()
    ben.pay_on_sandbox()
    cai.open(link).get_by_role("button", name=lang.words["join"]).click()  # and does not pay

    team_page.reload()
    expect(team_page.locator(".status-banner")).to_contain_text(lang.words["waits"])
    expect(team_page.locator("#waiting")).to_contain_text(
        lang.words["has_until"].format(name=cai_name)
    )
    screenshot(team_page, f"team-waiting-{lang.tag}")
    team_page.locator("summary", has_text=lang.words["leave"]).click()
    screenshot(team_page, f"team-leave-confirm-{lang.tag}")
    found = blocking_violations(team_page)
    assert found == []  # full, waiting, the confirmation open
    team_page.get_by_role("button", name=lang.words["confirm"]).click()

    ben_page.reload()
    leader = ben_page.locator(".member", has_text=lang.words["leader"])
    expect(leader).to_have_count(1)
    expect(leader).to_contain_text(ben_name)
    expect(ben_page.locator(".members")).not_to_contain_text(amy_name)
    expect(ben_page.locator(".status-banner")).to_contain_text(lang.words["left"])
    screenshot(ben_page, f"team-leader-left-{lang.tag}")
    assert blocking_violations(ben_page) == []
    deal_page = amy.open(f"/deals/{deal_id}")
    if lang.words["team_of"]:
        expect(deal_page.locator(".teams-list")).to_contain_text(
            lang.words["team_of"].format(name=ben_name)
        )
    expect(deal_page.locator(".team-row")).to_have_count(1)
    for person in (amy, ben, cai):
        person.close()
