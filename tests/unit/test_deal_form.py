"""The deal form's conversions between what a person types and what the deals API takes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pintuan.domain.coupons import CouponTerms
from pintuan.web.console.deal_form import (
    amount_text,
    example_price,
    form_field,
    local_text,
    parse_amount,
    parse_local,
    parse_percent,
    percent_text,
)


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("19,99", "EUR", 1999),
        ("1 299.50", "CNY", 129950),
        ("1200", "JPY", 1200),
        ("1.5", "BHD", 1500),
        ("7", "USD", 700),
    ],
)
def test_typed_prices_become_minor_units(typed: str, currency: str, minor: int) -> None:
    assert parse_amount(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency"),
    [
        ("19.999", "USD"),
        ("12.5", "JPY"),
        ("-5", "USD"),
        ("1e3", "USD"),
        ("", "USD"),
        ("1,2,3", "USD"),
    ],
)
def test_what_is_not_a_price_in_the_currency_is_refused(typed: str, currency: str) -> None:
    with pytest.raises(ValueError, match=r"positive number|decimals"):
        parse_amount(typed, currency)


def test_prices_are_shown_with_the_currencys_decimals() -> None:
    assert amount_text(1999, "USD") == "19.99"
    assert amount_text(1200, "JPY") == "1200"
    assert amount_text(None, "USD") == ""
    assert (example_price("USD"), example_price("JPY"), example_price("BHD")) == (
        "19.99",
        "1999",
        "19.990",
    )


def test_wall_clock_times_are_read_and_shown_in_the_merchants_zone() -> None:
    instant = parse_local("2030-03-10T09:30", "Asia/Shanghai")

    assert instant == datetime(2030, 3, 10, 1, 30, tzinfo=UTC)
    assert local_text(instant, "Asia/Shanghai") == "2030-03-10T09:30"
    assert local_text(instant, "America/New_York") == "2030-03-09T20:30"
    with pytest.raises(ValueError, match="does not match"):
        parse_local("next tuesday", "UTC")


def test_every_problem_of_a_new_deal_is_named_after_one_submit() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    typed = {
        "title": "",
        "vertical": "food",
        "list_price": "10",
        "group_price": "12",
        "leader_price": "",
        "team_size": "1",
        "team_window_minutes": "60",
        "stock": "10",
        "per_user_limit": "1",
        "starts_at": "2026-12-10T10:00",
        "ends_at": "2026-12-09T10:00",
    }

    form, draft = parse_new_deal(typed, "mch_1", "USD", "UTC", "en")

    assert draft is None
    assert set(form.errors) == {"title", "team_size", "group_price", "ends_at"}
    assert form.errors["group_price"] == "The group price must be below the list price."
    assert form.errors["ends_at"] == "The end must be after the start."


def test_a_missing_price_is_one_message_not_also_a_comparison() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    typed = {
        "title": "Tea",
        "vertical": "food",
        "list_price": "",
        "group_price": "12",
        "team_size": "2",
        "team_window_minutes": "60",
        "stock": "10",
        "per_user_limit": "1",
        "starts_at": "2026-12-10T10:00",
        "ends_at": "2026-12-19T10:00",
    }

    form, _ = parse_new_deal(typed, "mch_1", "USD", "UTC", "en")

    assert form.errors == {"list_price": "Enter the list price."}


def test_the_flash_sale_box_is_read_into_the_draft() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    typed = {
        "title": "Tea",
        "vertical": "food",
        "list_price": "20",
        "group_price": "12",
        "team_size": "2",
        "team_window_minutes": "60",
        "stock": "10",
        "per_user_limit": "1",
        "starts_at": "2026-12-10T10:00",
        "ends_at": "2026-12-19T10:00",
    }

    _, ticked = parse_new_deal({**typed, "flash_sale": "on"}, "mch_1", "USD", "UTC", "en")
    _, left_empty = parse_new_deal(typed, "mch_1", "USD", "UTC", "en")

    assert ticked is not None
    assert left_empty is not None
    assert (ticked.flash_sale, left_empty.flash_sale) == (True, False)


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        ("en", "A flash sale sells one unit to each shopper: set units per shopper to 1."),
        ("zh_Hans", "秒杀活动每人只能购买 1 件：请将每人限购数量设为 1。"),  # noqa: RUF001
    ],
)
def test_a_flash_sale_of_more_than_one_per_shopper_is_refused_next_to_that_field(
    locale: str, message: str
) -> None:
    from pintuan.errors import InvalidInput
    from pintuan.web.console.deal_form import DealForm, apply_refusal

    form = DealForm({"flash_sale": "on", "per_user_limit": "2"})
    refused = InvalidInput(
        "per_user_limit: a flash sale sells one unit to each shopper: 1",
        extra={
            "errors": [
                {
                    "field": "per_user_limit",
                    "message": "a flash sale sells one unit to each shopper: 1",
                }
            ]
        },
    )

    apply_refusal(form, refused, "USD", locale)

    assert form.errors == {"per_user_limit": message}
    assert form.form_error is None


@pytest.mark.parametrize(
    ("typed", "bps"),
    [("5", 500), ("2.5", 250), ("2,5", 250), ("12.34 %", 1234), ("", 0), ("0", 0), ("31", 3100)],
)
def test_a_typed_referral_percentage_becomes_basis_points(typed: str, bps: int) -> None:
    assert parse_percent(typed) == bps


@pytest.mark.parametrize("typed", ["2.555", "-1", "five", "1e1"])
def test_what_is_not_a_percentage_of_two_decimals_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match=r"positive number|decimals"):
        parse_percent(typed)


def test_basis_points_are_shown_as_a_plain_percentage() -> None:
    assert [percent_text(bps) for bps in (0, 250, 1000, 1234, 3000)] == [
        "0",
        "2.5",
        "10",
        "12.34",
        "30",
    ]


def test_the_referral_commission_is_read_into_the_draft_and_checked_like_the_api() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    typed = {
        "title": "Dumplings",
        "vertical": "food",
        "list_price": "20",
        "group_price": "15",
        "team_size": "3",
        "team_window_minutes": "60",
        "stock": "10",
        "per_user_limit": "1",
        "starts_at": "2030-01-01T10:00",
        "ends_at": "2030-01-08T10:00",
    }

    form, draft = parse_new_deal(
        {**typed, "referral_commission": "7.5"}, "mch_1", "USD", "UTC", "en"
    )
    too_much, refused = parse_new_deal(
        {**typed, "referral_commission": "30.5"}, "mch_1", "USD", "UTC", "en"
    )
    unread, nothing = parse_new_deal(
        {**typed, "referral_commission": "a tenth"}, "mch_1", "USD", "UTC", "en"
    )

    assert form.valid
    assert draft is not None
    assert draft.referral_commission_bps == 750
    assert refused is None
    assert nothing is None
    for refusal in (too_much, unread):
        assert list(refusal.errors) == ["referral_commission"]
        assert refusal.errors["referral_commission"].startswith("Enter a percentage from 0 to 30")


MECHANICS_DEAL = {
    "title": "Lychees",
    "vertical": "goods",
    "list_price": "20",
    "group_price": "15",
    "team_size": "3",
    "team_window_minutes": "60",
    "stock": "10",
    "per_user_limit": "1",
    "starts_at": "2030-01-01T10:00",
    "ends_at": "2030-01-08T10:00",
}


@pytest.mark.parametrize(
    ("typed", "reward"),
    [
        ({"leader_reward": "fixed", "leader_reward_amount": "2.50"}, ("fixed", 250)),
        # Only the value the kind needs is read: the other field may keep what it had.
        (
            {
                "leader_reward": "percent",
                "leader_reward_percent": "12.5",
                "leader_reward_amount": "9",
            },
            ("percent", 1250),
        ),
        ({"leader_reward": "free", "leader_reward_percent": "10"}, ("free", None)),
        ({"leader_reward": "", "leader_reward_amount": "2"}, None),
    ],
)
def test_the_leader_reward_is_read_into_the_draft(
    typed: dict[str, str], reward: tuple[str, int | None] | None
) -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    form, draft = parse_new_deal({**MECHANICS_DEAL, **typed}, "mch_1", "USD", "UTC", "en")

    assert form.valid, form.errors
    assert draft is not None
    read = draft.leader_reward
    assert ((read.kind.value, read.value) if read else None) == reward


def test_the_lottery_and_pickup_terms_are_read_and_empty_means_none() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    _, with_both = parse_new_deal(
        {
            **MECHANICS_DEAL,
            "lottery_winners": "2",
            "pickup_commission": "2.5",
            "pickup_unclaimed_days": "7",
        },
        "mch_1",
        "USD",
        "UTC",
        "en",
    )
    _, without = parse_new_deal(
        {**MECHANICS_DEAL, "lottery_winners": " ", "pickup_commission": ""},
        "mch_1",
        "USD",
        "UTC",
        "en",
    )

    assert with_both is not None
    assert with_both.lottery_winners == 2
    assert with_both.pickup is not None
    assert (with_both.pickup.commission_bps, with_both.pickup.unclaimed_days) == (250, 7)
    assert without is not None
    assert (without.lottery_winners, without.pickup) == (None, None)


def test_every_problem_of_the_options_is_named_next_to_its_field_after_one_submit() -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    form, draft = parse_new_deal(
        {
            **MECHANICS_DEAL,
            "vertical": "food",
            "leader_reward": "percent",
            "leader_reward_percent": "0",
            "lottery_winners": "3",
            "pickup_commission": "31",
            "pickup_unclaimed_days": "",
        },
        "mch_1",
        "USD",
        "UTC",
        "en",
    )

    assert draft is None
    assert form.errors == {
        "leader_reward_percent": "Enter a percentage from 0.01 to 100, with at most 2 decimals, "
        "such as 10 or 12.5.",
        "lottery_winners": "Each team draws 1 to 2 winners: fewer than its size.",
        "pickup_unclaimed_days": "Enter 1 to 30 days, or leave both pickup fields empty when the "
        "deal is not collected at pickup points.",
    }


@pytest.mark.parametrize(
    ("service_field", "message", "name", "said"),
    [
        (
            "lottery.winners",
            "must be 1 to 4: fewer than the team's size",
            "lottery_winners",
            "每团可抽出 1 到 4 名中奖者，须少于成团人数。",  # noqa: RUF001
        ),
        (
            "pickup",
            "pickup points hand over goods; use a goods deal",
            "pickup_unclaimed_days",
            "自提点只交付实物商品：请将类别选为“商品”。",  # noqa: RUF001
        ),
        (
            "leader_reward.amount",
            "must be at least 1 minor unit",
            "leader_reward_amount",
            "must be at least 1 minor unit",
        ),
        (
            "lottery.coupon.amount",
            "must be at least 0.01 and below the group price",
            "lottery_coupon_amount",
            "优惠券金额须大于零且低于拼团价。",
        ),
        (
            "lottery.coupon.valid_days",
            "must be 1 to 365",
            "lottery_coupon_days",
            "请输入优惠券的有效天数，1 至 365 天。",  # noqa: RUF001
        ),
        (
            "lottery.coupon",
            "is given only by a lottery deal",
            "lottery_coupon_amount",
            "只有抽奖团才能给未中奖名额发优惠券：请同时填写每团中奖人数。",  # noqa: RUF001
        ),
    ],
)
def test_the_services_refusal_of_an_option_is_put_next_to_its_field(
    service_field: str, message: str, name: str, said: str
) -> None:
    from pintuan.errors import InvalidInput
    from pintuan.web.console.deal_form import DealForm, apply_refusal

    form = DealForm({})
    refused = InvalidInput(
        f"{service_field}: {message}",
        extra={"errors": [{"field": service_field, "message": message}]},
    )

    apply_refusal(form, refused, "USD", "zh_Hans")

    assert form.errors == {name: said}
    assert form.form_error is None


@pytest.mark.parametrize(
    ("typed", "coupon"),
    [
        ({"lottery_coupon_amount": "3", "lottery_coupon_days": "14"}, CouponTerms(300, 14)),
        ({"lottery_coupon_amount": "2,50", "lottery_coupon_days": ""}, CouponTerms(250, 30)),
        # No amount: no coupon, whatever the days say.
        ({"lottery_coupon_amount": " ", "lottery_coupon_days": "14"}, None),
    ],
)
def test_the_lottery_coupon_is_read_into_the_draft_and_empty_days_are_thirty(
    typed: dict[str, str], coupon: CouponTerms | None
) -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    form, draft = parse_new_deal(
        {**MECHANICS_DEAL, "lottery_winners": "1", **typed}, "mch_1", "USD", "UTC", "en"
    )

    assert form.valid, form.errors
    assert draft is not None
    assert draft.lottery_winners == 1
    assert draft.lottery_coupon == coupon


@pytest.mark.parametrize(
    ("typed", "name", "message"),
    [
        (
            {"lottery_winners": "", "lottery_coupon_amount": "3"},
            "lottery_coupon_amount",
            "A coupon for the seats not drawn needs a lottery: enter the winners per team too.",
        ),
        (
            {"lottery_winners": "1", "lottery_coupon_amount": "15"},
            "lottery_coupon_amount",
            "The coupon is worth more than zero and less than the group price.",
        ),
        (
            {"lottery_winners": "1", "lottery_coupon_amount": "3.001"},
            "lottery_coupon_amount",
            "Enter an amount like 19.99, with at most 2 decimals.",
        ),
        (
            {"lottery_winners": "1", "lottery_coupon_amount": "3", "lottery_coupon_days": "400"},
            "lottery_coupon_days",
            "Enter how many days the coupon is valid, from 1 to 365.",
        ),
        (
            {
                "lottery_winners": "1",
                "lottery_coupon_amount": "3",
                "lottery_coupon_days": "a month",
            },
            "lottery_coupon_days",
            "Enter how many days the coupon is valid, from 1 to 365.",
        ),
    ],
)
def test_a_coupon_the_deals_api_would_refuse_is_refused_next_to_its_field(
    typed: dict[str, str], name: str, message: str
) -> None:
    from pintuan.web.console.deal_form import parse_new_deal

    form, draft = parse_new_deal({**MECHANICS_DEAL, **typed}, "mch_1", "USD", "UTC", "en")

    assert draft is None
    assert form.errors == {name: message}


def test_an_api_field_is_shown_next_to_the_form_field_of_its_longest_known_part() -> None:
    assert form_field("lottery.coupon.amount.currency") == "lottery_coupon_amount"
    assert form_field("lottery.coupon.valid_days") == "lottery_coupon_days"
    assert form_field("lottery.winners") == "lottery_winners"
    assert form_field("list_price.amount") == "list_price"
    assert form_field("ladder[1].price") == "ladder"
