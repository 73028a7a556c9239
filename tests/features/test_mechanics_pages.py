"""Group-buy mechanics on the pages: the merchant console's deal form sets a leader reward, a
lottery and pickup terms on a draft (refusals next to their fields, in English and Chinese) and
locks them once the deal is published; the deal and team pages say each option the deal has in
a line of its own, and a lottery team's page tells each member whether their seat won or was
refunded."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.deals.models import Deal
from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.domain.roles import Role
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant
from tests.features.pickingup import pickup_deal
from tests.features.test_ledger import pay
from tests.features.test_merchant_console import console, deal_fields, field_error

ZH = {**HTML, "accept-language": "zh-CN"}


def the_deal(services: Services) -> Deal:
    return services.db.run_sync(lambda s: s.scalars(select(Deal)).one())


def shown_value(page: str, name: str) -> str:
    found = re.search(rf'<input id="deal-{name}" name="{name}" [^>]*value="([^"]*)"', page)
    assert found, f"no field {name}"
    return found.group(1)


def is_disabled(page: str, name: str) -> bool:
    found = re.search(rf'<(?:input|select) id="deal-{name}" name="{name}"[^>]*>', page)
    assert found, f"no field {name}"
    return " disabled" in found.group(0)


def test_the_editor_saves_each_option_on_a_draft_shows_it_and_locks_it_once_published(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    new, deals = console(merchant.id, "/deals/new"), console(merchant.id, "/deals")
    options = {
        "vertical": "goods",
        "leader_reward": "percent",
        "leader_reward_percent": "12.5",
        "lottery_winners": "2",
        "pickup_commission": "5",
        "pickup_unclaimed_days": "3",
    }

    form = client.get(new, headers=HTML).text
    made = form_post(client, new, deals, deal_fields(**options))

    assert "Leader reward" in form
    assert "Lottery: winners per team (optional)" in form
    assert "Days an order waits at its point" in form
    assert made.status_code == 303, made.text
    deal = the_deal(services)
    assert (deal.leader_reward_kind, deal.leader_reward_value) == ("percent", 1250)
    assert deal.lottery_winners == 2
    assert (deal.pickup_commission_bps, deal.pickup_unclaimed_days) == (500, 3)
    page = console(merchant.id, f"/deals/{deal.id}")
    shown = client.get(page, headers=HTML).text
    assert '<option value="percent" selected>A percentage back</option>' in shown
    assert shown_value(shown, "leader_reward_percent") == "12.5"
    assert shown_value(shown, "leader_reward_amount") == ""
    assert shown_value(shown, "lottery_winners") == "2"
    assert (
        shown_value(shown, "pickup_commission"),
        shown_value(shown, "pickup_unclaimed_days"),
    ) == (
        "5",
        "3",
    )

    # A draft's options change: a fixed amount instead, no lottery, delivered instead.
    changed = form_post(
        client,
        page,
        page,
        deal_fields(
            vertical="goods",
            leader_reward="fixed",
            leader_reward_amount="3.50",
            lottery_winners="",
            pickup_commission="",
            pickup_unclaimed_days="",
        ),
    )
    assert changed.status_code == 303, changed.text
    deal = the_deal(services)
    assert (deal.leader_reward_kind, deal.leader_reward_value) == ("fixed", 350)
    assert (deal.lottery_winners, deal.pickup_unclaimed_days) == (None, None)
    shown = client.get(page, headers=HTML).text
    assert shown_value(shown, "leader_reward_amount") == "3.50"
    assert shown_value(shown, "lottery_winners") == ""

    published = form_post(client, page, console(merchant.id, f"/deals/{deal.id}/publish"), {})
    assert published.status_code == 303, published.text
    locked = client.get(page, headers=HTML).text
    for name in ("leader_reward", "leader_reward_amount", "lottery_winners", "pickup_commission"):
        assert is_disabled(locked, name), name
    assert not is_disabled(locked, "title")
    # A tampered form sending a frozen option changes nothing, and says so by the field.
    sent = form_post(client, page, page, {"lottery_winners": "1"})
    assert sent.status_code == 409
    assert field_error(sent.text, "lottery_winners") == (
        "This cannot change once the deal is published."
    )
    assert the_deal(services).lottery_winners is None


@pytest.mark.parametrize(
    ("chinese", "messages"),
    [
        (
            False,
            {
                "leader_reward_amount": "Enter the amount the leader gets back, above zero.",
                "lottery_winners": "Each team draws 1 to 3 winners: fewer than its size.",
                "pickup_unclaimed_days": (
                    "Pickup points hand over goods: choose the category Goods."
                ),
            },
        ),
        (
            True,
            {
                "leader_reward_amount": "请填写返还给团长的金额，须大于零。",  # noqa: RUF001
                "lottery_winners": "每团可抽出 1 到 3 名中奖者，须少于成团人数。",  # noqa: RUF001
                "pickup_unclaimed_days": "自提点只交付实物商品：请将类别选为“商品”。",  # noqa: RUF001
            },
        ),
    ],
)
def test_the_editor_says_each_refusal_of_an_option_next_to_its_field(
    client: TestClient, services: Services, chinese: bool, messages: dict[str, str]
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    if chinese:
        speak_chinese(services, staff)
    log_in(client, staff)

    refused = form_post(
        client,
        console(merchant.id, "/deals/new"),
        console(merchant.id, "/deals"),
        deal_fields(
            vertical="food",
            leader_reward="fixed",
            leader_reward_amount="",
            leader_reward_percent="10",  # not read for a fixed reward
            lottery_winners="4",
            pickup_unclaimed_days="3",
        ),
    )

    assert refused.status_code == 422
    for name, message in messages.items():
        assert field_error(refused.text, name) == message, name
    assert 'name="lottery_winners" type="number" value="4"' in refused.text
    assert services.db.run_sync(lambda s: s.scalars(select(Deal)).first()) is None


WORDS = {
    "en": {
        "fixed": "The leader of each team that fills gets $3.00 back.",
        "free": "The leader of each team that fills gets their seat free.",
        "lottery": "Lottery: 1 of the 3 seats wins; the others are refunded in full.",
        "referral": "Share this deal and earn 7.5% of what your friends pay",
        "pickup": "Collect at a pickup point",
        "won": "Your seat won the lottery: your order goes ahead.",
        "refunded": "Your seat was not drawn, and was refunded in full.",
        "drawn": "Team complete! The draw has chosen its winners; the others are refunded in full.",
    },
    "zh": {
        "fixed": "每个成团的团长可返还 US$3.00。",
        "free": "每个成团的团长免单。",
        "lottery": "抽奖团：3 人中抽出 1 人中奖，其余全额退款。",  # noqa: RUF001
        "referral": "分享本活动，可获得好友实付金额的 7.5%",  # noqa: RUF001
        "pickup": "到自提点提货",
        "won": "您已中奖：订单将照常履行。",  # noqa: RUF001
        "refunded": "您未中奖，已全额退款。",  # noqa: RUF001
        "drawn": "成团啦！已抽出中签者，未中签者全额退款。",  # noqa: RUF001
    },
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_deal_page_says_each_option_of_the_deal_in_a_line(
    client: TestClient, services: Services, language: str
) -> None:
    words, headers = WORDS[language], (ZH if language == "zh" else HTML)
    merchant = create_merchant(services.db)
    rewarded = create_deal(
        services.db,
        merchant,
        leader_reward=LeaderReward(RewardKind.FIXED, 300),
        lottery_winners=1,
        referral_commission_bps=750,
    )
    free = create_deal(services.db, merchant, leader_reward=LeaderReward(RewardKind.FREE))
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    picked_up = pickup_deal(client, staff, merchant.id)

    page = client.get(f"/deals/{rewarded.id}", headers=headers).text
    free_page = client.get(f"/deals/{free.id}", headers=headers).text
    pickup_page = client.get(f"/deals/{picked_up}", headers=headers).text

    assert words["fixed"] in page
    assert words["lottery"] in page
    commitment = rewarded.lottery_commitment
    assert commitment
    assert f'<code title="{commitment}">{commitment[:12]}…</code>' in page
    assert f'href="/v1/deals/{rewarded.id}/lottery"' in page
    assert f'<a href="/me/commissions">{words["referral"]}</a>' in page
    assert words["pickup"] not in page
    assert words["free"] in free_page
    assert words["lottery"] not in free_page
    assert words["pickup"] in pickup_page
    assert (
        'class="deal-mechanics"'
        not in client.get(f"/deals/{create_deal(services.db, merchant).id}", headers=headers).text
    )


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_lottery_team_page_tells_each_member_whether_their_seat_won_or_was_refunded(
    client: TestClient, services: Services, language: str
) -> None:
    words = WORDS[language]
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3, lottery_winners=1)
    shoppers = [create_account(services) for _ in range(3)]
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shoppers[0].headers).json()
    team_id = started["team"]["id"]
    seats = [started["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers).json()
        seats.append(joined["seat"]["id"])
    for shopper, seat_id in zip(shoppers, seats, strict=True):
        pay(client, shopper, seat_id)
    Worker(services).run_until_idle()
    (drawn,) = client.get(f"/v1/deals/{deal.id}/lottery").json()["draws"]
    (winner,) = drawn["winners"]

    said = []
    for shopper, seat_id in zip(shoppers, seats, strict=True):
        if language == "zh":
            speak_chinese(services, shopper)
        log_in(client, shopper)
        page = client.get(f"/teams/{team_id}", headers=HTML).text
        assert words["lottery"] in page
        assert words["drawn"] in page
        said.append((seat_id == winner, words["won"] in page, words["refunded"] in page))

    assert sorted(said) == [(False, False, True), (False, False, True), (True, True, False)]
    client.cookies.clear()
    visitor = client.get(f"/teams/{team_id}", headers=HTML).text
    assert "lottery-outcome" not in visitor
