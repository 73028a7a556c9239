"""Lottery coupons on the pages: the merchant console's deal editor sets the coupon each seat a
draw does not pick gets (refusals next to its fields); the deal page says it in the lottery's
line; a shopper's team page offers their coupons before paying a held seat and its form lowers
the price to pay; the orders page lists the shopper's coupons with their state and expiry, in
the viewer's language and time zone."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.accounts import service as accounts
from pintuan.coupons.models import Coupon
from pintuan.deals.models import Deal
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.web.kit.i18n import instant_text
from pintuan.worker import Worker
from tests.console_data import HTML, form_post, log_in
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_ledger import paid_team
from tests.features.test_mechanics_pages import is_disabled, shown_value
from tests.features.test_merchant_console import console, deal_fields, field_error

ZH = {**HTML, "accept-language": "zh-CN"}
OFF = 300
ZONE = "Asia/Shanghai"


def coupon_terms_deal(services: Services, merchant: Merchant) -> Deal:
    """A lottery team of three of which one seat wins; each other seat gets 3.00 off, 30 days."""
    return create_deal(
        services.db,
        merchant,
        team_size=3,
        lottery_winners=1,
        lottery_coupon=CouponTerms(OFF, 30),
    )


def not_drawn(
    client: TestClient, services: Services, *, locale: str = "en"
) -> tuple[Merchant, Account]:
    """A merchant whose lottery team of three was paid and drawn, and one of its shoppers whose
    seat was not drawn (so they hold the deal's coupon), reading in ``locale`` in ZONE."""
    merchant = create_merchant(services.db)
    deal = coupon_terms_deal(services, merchant)
    shoppers = [create_account(services) for _ in range(3)]
    _, seats = paid_team(client, deal.id, shoppers)
    Worker(services).run_until_idle()
    (winner,) = client.get(f"/v1/deals/{deal.id}/lottery").json()["draws"][0]["winners"]
    loser = next(s for s, seat in zip(shoppers, seats, strict=True) if seat != winner)
    services.db.run_sync(
        lambda s: accounts.update_profile(
            s, loser.user_id, locale="zh-Hans" if locale == "zh_Hans" else "en", time_zone=ZONE
        )
    )
    return merchant, loser


def the_coupon(services: Services, owner: Account) -> Coupon:
    return services.db.run_sync(
        lambda s: s.scalars(select(Coupon).where(Coupon.owner_id == owner.user_id)).one()
    )


def the_deal(services: Services) -> Deal:
    return services.db.run_sync(lambda s: s.scalars(select(Deal)).one())


# ---------------------------------------------------------------------------- the deal page

LINES = {
    "en": "Not drawn? Your money back in full, plus a $3.00 coupon for your next order at "
    "{merchant} (valid 30 days).",
    "zh": "未中奖？全额退款，另送一张 US$3.00 优惠券，可用于您在{merchant}的下一笔订单"  # noqa: RUF001
    "（30 天内有效）。",  # noqa: RUF001
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_deal_page_says_what_a_seat_not_drawn_gets_besides_its_refund(
    client: TestClient, services: Services, language: str
) -> None:
    merchant = create_merchant(services.db)
    with_coupon = coupon_terms_deal(services, merchant)
    without = create_deal(services.db, merchant, team_size=3, lottery_winners=1)
    headers = ZH if language == "zh" else HTML

    page = client.get(f"/deals/{with_coupon.id}", headers=headers).text
    plain = client.get(f"/deals/{without.id}", headers=headers).text

    assert LINES[language].format(merchant=merchant.name) in page
    assert 'class="lottery-coupon"' not in plain
    assert 'class="mechanic-lottery"' in plain


# ---------------------------------------------------------------------------- the orders page


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "en",
            {
                "heading": "Your coupons",
                "amount": "$3.00 off",
                "from": "from {merchant}",
                "available": "Available",
                "until": "Valid until {time}",
                "expired": "Expired",
                "expired_at": "Expired {time}",
            },
        ),
        (
            "zh_Hans",
            {
                "heading": "我的优惠券",
                "amount": "减 US$3.00",
                "from": "{merchant}发放",
                "available": "可使用",
                "until": "有效期至 {time}",
                "expired": "已过期",
                "expired_at": "已于 {time} 过期",
            },
        ),
    ],
)
def test_the_orders_page_lists_the_shoppers_coupons_with_state_and_expiry(
    client: TestClient, services: Services, locale: str, words: dict[str, str]
) -> None:
    merchant, shopper = not_drawn(client, services, locale=locale)
    coupon = the_coupon(services, shopper)
    log_in(client, shopper)

    page = client.get("/orders", headers=HTML).text
    services.db.run_sync(
        lambda s: s.execute(
            update(Coupon).where(Coupon.id == coupon.id).values(expires_at=utc_now())
        )
    )
    expired = the_coupon(services, shopper)
    later = client.get("/orders", headers=HTML).text

    listed = re.search(
        rf'<li class="coupon coupon-available" id="coupon-{coupon.id}">(.*?)</li>', page, re.S
    )
    assert words["heading"] in page
    assert listed, page
    item = listed.group(1)
    assert words["amount"] in item
    assert words["from"].format(merchant=merchant.name) in item
    assert words["available"] in item
    assert (
        words["until"].format(time=instant_text(coupon.expires_at, ZONE, locale, "short")) in item
    )
    gone = re.search(
        rf'<li class="coupon coupon-expired" id="coupon-{coupon.id}">(.*?)</li>', later, re.S
    )
    assert gone, later
    assert words["expired"] in gone.group(1)
    assert words["expired_at"].format(
        time=instant_text(expired.expires_at, ZONE, locale, "short")
    ) in gone.group(1)


def test_a_shopper_without_coupons_sees_no_coupons_section(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    log_in(client, shopper)

    page = client.get("/orders", headers=HTML).text

    assert 'id="coupons"' not in page


# ---------------------------------------------------------------------------- the team page


def held_seat(
    client: TestClient, services: Services, merchant: Merchant, shopper: Account
) -> tuple[str, str]:
    """A held seat of ``shopper`` in a new team of a new deal of ``merchant``: (team, seat)."""
    deal = create_deal(services.db, merchant, team_size=2, title="Noodles for two")
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    assert started.status_code == 201, started.text
    assert started.json()["seat"]["status"] == "held"
    return started.json()["team"]["id"], started.json()["seat"]["id"]


def offered_coupons(page: str) -> list[str]:
    return re.findall(r'<input type="radio" name="coupon_id" value="([^"]+)"', page)


def test_a_coupon_taken_through_the_team_page_lowers_the_price_to_pay(
    client: TestClient, services: Services
) -> None:
    merchant, shopper = not_drawn(client, services)
    coupon = the_coupon(services, shopper)
    team_id, seat_id = held_seat(client, services, merchant, shopper)
    log_in(client, shopper)
    team_page = f"/teams/{team_id}"

    before = client.get(team_page, headers=HTML).text
    applied = form_post(client, team_page, f"/seats/{seat_id}/coupon", {"coupon_id": coupon.id})
    after = client.get(applied.headers["location"], headers=HTML).text
    again = client.get(team_page, headers=HTML).text
    orders = client.get("/orders", headers=HTML).text

    until = instant_text(coupon.expires_at, ZONE, "en", "short")
    assert "Use a coupon" in before
    assert f"$3.00 off, from {merchant.name}, until {until}" in before
    assert offered_coupons(before) == [coupon.id]
    assert "Pay $15.00" in before
    assert applied.status_code == 303, applied.text
    assert applied.headers["location"] == f"/teams/{team_id}?coupon=applied#you-heading"
    assert "Coupon applied: you now pay $12.00." in after
    assert "Pay $12.00" in after
    assert "Pay $15.00" not in after
    assert offered_coupons(after) == []
    assert "Coupon applied: you now pay" not in again
    assert "A coupon of $3.00 is taken off this price." in again
    assert re.search(rf'<li class="coupon coupon-applied" id="coupon-{coupon.id}">', orders)
    assert "On an order" in orders
    seat = services.db.run_sync(lambda s: s.get(Seat, seat_id))
    assert (seat.price_amount, seat.coupon_id) == (1500 - OFF, coupon.id)


def test_a_coupon_on_another_order_is_refused_on_the_page_with_the_reason(
    client: TestClient, services: Services
) -> None:
    merchant, shopper = not_drawn(client, services)
    coupon = the_coupon(services, shopper)
    first_team, first_seat = held_seat(client, services, merchant, shopper)
    second_team, second_seat = held_seat(client, services, merchant, shopper)
    log_in(client, shopper)
    taken = form_post(
        client, f"/teams/{first_team}", f"/seats/{first_seat}/coupon", {"coupon_id": coupon.id}
    )
    assert taken.status_code == 303, taken.text

    # A form opened before the coupon went on the first seat, sent afterwards.
    refused = form_post(
        client, f"/teams/{second_team}", f"/seats/{second_seat}/coupon", {"coupon_id": coupon.id}
    )

    back = client.get(refused.headers["location"], headers=HTML).text
    crafted = client.get(f"/teams/{second_team}?coupon_error=Pay+us+elsewhere", headers=HTML)

    assert refused.status_code == 303
    assert refused.headers["location"] == (
        f"/teams/{second_team}?coupon_error=coupon_applied#you-heading"
    )
    assert (
        '<p class="form-error" role="alert">This coupon is on another order; it comes back if '
        "that order ends without a sale.</p>"
    ) in back
    assert "Pay $15.00" in back
    assert offered_coupons(back) == []
    assert 'class="form-error"' not in crafted.text
    assert "Pay us elsewhere" not in crafted.text


def test_a_lottery_deals_own_seat_is_offered_no_coupon(
    client: TestClient, services: Services
) -> None:
    merchant, shopper = not_drawn(client, services)
    lottery = coupon_terms_deal(services, merchant)
    started = client.post(f"/v1/deals/{lottery.id}/teams", headers=shopper.headers).json()
    log_in(client, shopper)

    page = client.get(f"/teams/{started['team']['id']}", headers=HTML).text

    assert "Pay $15.00" in page
    assert "Use a coupon" not in page


# ---------------------------------------------------------------------------- the deal editor


def test_the_editor_saves_the_lottery_coupon_shows_it_and_removes_it(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    new, deals = console(merchant.id, "/deals/new"), console(merchant.id, "/deals")

    form = client.get(new, headers=HTML).text
    made = form_post(
        client,
        new,
        deals,
        deal_fields(lottery_winners="1", lottery_coupon_amount="5.00", lottery_coupon_days="14"),
    )

    assert "Lottery: coupon for each seat not drawn (optional)" in form
    assert shown_value(form, "lottery_coupon_amount") == ""
    assert shown_value(form, "lottery_coupon_days") == "30"
    assert made.status_code == 303, made.text
    deal = the_deal(services)
    assert (deal.lottery_coupon_amount, deal.lottery_coupon_days) == (500, 14)
    page = console(merchant.id, f"/deals/{deal.id}")
    shown = client.get(page, headers=HTML).text
    assert shown_value(shown, "lottery_coupon_amount") == "5.00"
    assert shown_value(shown, "lottery_coupon_days") == "14"

    # Only the amount changes: the winners and days typed before are kept.
    cheaper = form_post(client, page, page, {"lottery_coupon_amount": "2.50"})
    assert cheaper.status_code == 303, cheaper.text
    deal = the_deal(services)
    assert (deal.lottery_winners, deal.lottery_coupon_amount, deal.lottery_coupon_days) == (
        1,
        250,
        14,
    )

    removed = form_post(
        client, page, page, deal_fields(lottery_winners="1", lottery_coupon_amount="")
    )
    assert removed.status_code == 303, removed.text
    deal = the_deal(services)
    assert (deal.lottery_winners, deal.lottery_coupon_amount, deal.lottery_coupon_days) == (
        1,
        None,
        None,
    )
    shown = client.get(page, headers=HTML).text
    assert shown_value(shown, "lottery_coupon_amount") == ""
    assert shown_value(shown, "lottery_coupon_days") == "30"

    published = form_post(client, page, console(merchant.id, f"/deals/{deal.id}/publish"), {})
    assert published.status_code == 303, published.text
    locked = client.get(page, headers=HTML).text
    assert is_disabled(locked, "lottery_coupon_amount")
    assert is_disabled(locked, "lottery_coupon_days")


@pytest.mark.parametrize(
    ("chinese", "messages"),
    [
        (
            False,
            {
                "lottery_coupon_amount": (
                    "The coupon is worth more than zero and less than the group price."
                ),
                "lottery_coupon_days": "Enter how many days the coupon is valid, from 1 to 365.",
            },
        ),
        (
            True,
            {
                "lottery_coupon_amount": "优惠券金额须大于零且低于拼团价。",
                "lottery_coupon_days": "请输入优惠券的有效天数，1 至 365 天。",  # noqa: RUF001
            },
        ),
    ],
)
def test_the_editor_says_each_refusal_of_the_coupon_next_to_its_field(
    client: TestClient, services: Services, chinese: bool, messages: dict[str, str]
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    if chinese:
        services.db.run_sync(lambda s: accounts.update_profile(s, staff.user_id, locale="zh-Hans"))
    log_in(client, staff)

    refused = form_post(
        client,
        console(merchant.id, "/deals/new"),
        console(merchant.id, "/deals"),
        deal_fields(lottery_winners="1", lottery_coupon_amount="59.00", lottery_coupon_days="400"),
    )

    assert refused.status_code == 422
    for name, message in messages.items():
        assert field_error(refused.text, name) == message, name
    assert 'name="lottery_coupon_amount" type="text" value="59.00"' in refused.text
    assert services.db.run_sync(lambda s: s.scalars(select(Deal)).first()) is None
