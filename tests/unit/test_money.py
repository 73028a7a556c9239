"""Money is integer minor units plus an ISO 4217 code; splits never lose or invent a minor unit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.kit.money import (
    ISO_4217_CODES,
    MAX_MAJOR_UNITS,
    Money,
    MoneyError,
    exponent,
    is_currency,
    max_amount,
    split,
    split_evenly,
)

PROPERTY = settings(max_examples=200, deadline=None)
QUICK_PROPERTY = settings(max_examples=100, deadline=None)

currencies = st.sampled_from(sorted(ISO_4217_CODES))
totals = st.integers(min_value=-(10**15), max_value=10**15)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(
    lambda weights: sum(weights) > 0
)


# --- currencies and their minor units -------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("USD", 2),
        ("EUR", 2),
        ("CNY", 2),
        ("BHD", 3),
        ("KWD", 3),
        ("CLF", 4),
    ],
)
def test_exponent_is_the_iso_4217_minor_unit(currency: str, digits: int) -> None:
    # given an ISO 4217 currency
    # when / then its minor-unit exponent is the one ISO 4217 publishes
    assert exponent(currency) == digits


@pytest.mark.parametrize("code", ["XYZ", "usd", "US", "USDT", "", "BTC"])
def test_exponent_refuses_a_code_that_is_not_an_iso_4217_currency(code: str) -> None:
    # given a string that is not an active ISO 4217 code
    # when / then asking for its exponent is refused
    with pytest.raises(MoneyError, match="ISO 4217"):
        exponent(code)


def test_money_error_is_a_value_error_so_generic_handlers_catch_it() -> None:
    assert issubclass(MoneyError, ValueError)


def test_is_currency_tells_iso_codes_from_other_strings() -> None:
    assert is_currency("USD")
    assert is_currency("JPY")
    assert not is_currency("usd")
    assert not is_currency("XYZ")


@pytest.mark.parametrize(
    ("currency", "largest"),
    [
        ("JPY", MAX_MAJOR_UNITS),
        ("USD", MAX_MAJOR_UNITS * 100),
        ("BHD", MAX_MAJOR_UNITS * 1000),
    ],
)
def test_max_amount_is_the_major_unit_cap_in_minor_units(currency: str, largest: int) -> None:
    # given a currency / when its largest accepted amount is asked for
    result = max_amount(currency)

    # then it is the major-unit cap scaled to the currency's minor unit
    assert result == largest
    assert type(result) is int


def test_max_amount_fits_a_signed_64_bit_column_for_every_currency() -> None:
    # given every ISO currency / when its largest accepted amount is computed
    for currency in ISO_4217_CODES:
        largest = max_amount(currency)

        # then it fits a BigInteger column and matches the exponent
        assert 0 < largest < 2**63, currency
        assert largest == MAX_MAJOR_UNITS * 10 ** exponent(currency), currency


def test_max_amount_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        max_amount("XYZ")


# --- the Money value ------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [19.99, 1999.0, Decimal("19.99"), "1999", None])
def test_money_refuses_an_amount_that_is_not_an_integer(amount: object) -> None:
    # given a float, decimal, string or nothing as the amount
    # when / then building money from it is refused
    with pytest.raises(MoneyError, match="integer"):
        Money(amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [True, False])
def test_money_refuses_a_bool_even_though_bool_is_an_int(amount: bool) -> None:
    with pytest.raises(MoneyError, match="integer"):
        Money(amount, "USD")


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", "RMB"])
def test_money_refuses_an_unknown_currency(currency: str) -> None:
    with pytest.raises(MoneyError, match="ISO 4217"):
        Money(100, currency)


@pytest.mark.parametrize("amount", [0, -1999, 1, 10**15])
def test_money_accepts_any_integer_amount_including_zero_and_refunds(amount: int) -> None:
    # given an integer amount / when money is built
    money = Money(amount, "USD")

    # then it keeps the amount as given
    assert money.amount == amount
    assert money.currency == "USD"


def test_money_cannot_be_changed_after_it_is_made() -> None:
    # given some money
    money = Money(1999, "USD")

    # when / then changing its amount is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = 1  # type: ignore[misc]


def test_money_is_equal_by_amount_and_currency() -> None:
    assert Money(100, "USD") == Money(100, "USD")
    assert Money(100, "USD") != Money(100, "CAD")
    assert Money(100, "USD") != Money(101, "USD")
    assert hash(Money(100, "USD")) == hash(Money(100, "USD"))


def test_adding_money_of_one_currency_adds_the_amounts() -> None:
    # given two amounts in dollars / when they are added
    total = Money(1999, "USD") + Money(1, "USD")

    # then the result is their sum in dollars
    assert total == Money(2000, "USD")


def test_subtracting_money_of_one_currency_subtracts_the_amounts() -> None:
    # given two amounts in yen / when one is taken from the other
    rest = Money(500, "JPY") - Money(800, "JPY")

    # then the result may go negative but stays in yen
    assert rest == Money(-300, "JPY")


@pytest.mark.parametrize(
    "combine", [lambda a, b: a + b, lambda a, b: a - b], ids=["add", "subtract"]
)
def test_money_of_different_currencies_cannot_be_combined(
    combine: Callable[[Money, Money], Money],
) -> None:
    # given dollars and yuan
    dollars, yuan = Money(100, "USD"), Money(100, "CNY")

    # when / then adding or subtracting them is refused, naming both currencies
    with pytest.raises(MoneyError, match=r"USD.*CNY"):
        combine(dollars, yuan)


@QUICK_PROPERTY
@given(totals, totals, currencies)
def test_subtracting_what_was_added_gives_back_the_original(a: int, b: int, currency: str) -> None:
    # given two amounts in one currency
    first, second = Money(a, currency), Money(b, currency)

    # when the second is added and taken away again
    result = (first + second) - second

    # then nothing was gained or lost
    assert result == first


@pytest.mark.parametrize(
    ("money", "decimal"),
    [
        (Money(1999, "USD"), Decimal("19.99")),
        (Money(1999, "JPY"), Decimal("1999")),
        (Money(1999, "BHD"), Decimal("1.999")),
        (Money(-5, "EUR"), Decimal("-0.05")),
        (Money(0, "USD"), Decimal("0")),
    ],
)
def test_to_decimal_places_the_point_by_the_currency_exponent(
    money: Money, decimal: Decimal
) -> None:
    assert money.to_decimal() == decimal


@QUICK_PROPERTY
@given(totals, currencies)
def test_to_decimal_loses_no_minor_unit(amount: int, currency: str) -> None:
    # given any amount / when it is read as a decimal and scaled back
    scaled = Money(amount, currency).to_decimal().scaleb(exponent(currency))

    # then the exact minor-unit count comes back
    assert scaled == amount


@pytest.mark.parametrize(
    ("money", "shown"),
    [
        (Money(1999, "USD"), "19.99"),
        (Money(1999, "JPY"), "1,999"),
        (Money(1999, "BHD"), "1.999"),
        (Money(1999, "CNY"), "19.99"),
        (Money(123456789, "USD"), "1,234,567.89"),
    ],
)
def test_format_in_english_shows_the_amount_with_its_minor_unit_digits(
    money: Money, shown: str
) -> None:
    # given money / when it is formatted for an English reader
    text = money.format("en")

    # then the amount reads with the currency's decimals and English grouping
    assert shown in text


def test_format_in_english_uses_the_dollar_sign_for_us_dollars() -> None:
    assert Money(1999, "USD").format() == "$19.99"


def test_format_of_a_yen_amount_shows_no_decimal_point() -> None:
    assert "." not in Money(1999, "JPY").format("en")


def test_format_of_a_negative_amount_shows_the_minus_sign() -> None:
    # given a refund-like negative amount / when it is formatted
    text = Money(-1999, "USD").format("en")

    # then the reader sees that it is negative
    assert "-" in text
    assert "19.99" in text


@pytest.mark.parametrize(
    ("money", "shown"), [(Money(1999, "CNY"), "19.99"), (Money(1999, "USD"), "19.99")]
)
def test_format_in_simplified_chinese_shows_the_amount(money: Money, shown: str) -> None:
    # given money / when it is formatted for a reader whose account locale is zh-Hans
    text = money.format("zh-Hans")

    # then the amount reads with the currency's decimals
    assert shown in text


# --- splitting amounts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (10, [3, 1], [8, 2]),
        (10, [1, 3], [3, 7]),
        (1, [1, 1, 1], [1, 0, 0]),
        (5, [0, 1], [0, 5]),
        (0, [1, 2], [0, 0]),
        (1000, [7], [1000]),
        (999, [50, 30, 20], [499, 300, 200]),
    ],
)
def test_split_gives_the_largest_remainders_the_leftover_units(
    total: int, weights: list[int], parts: list[int]
) -> None:
    assert split(total, weights) == parts


@PROPERTY
@given(totals, weight_lists)
def test_split_parts_always_sum_to_the_total(total: int, weights: list[int]) -> None:
    # given any total, positive or negative, and weights that are not all zero
    # when it is split
    parts = split(total, weights)

    # then no minor unit is lost or invented, and there is one part per weight
    assert sum(parts) == total
    assert len(parts) == len(weights)
    assert all(type(part) is int for part in parts)


@PROPERTY
@given(totals, weight_lists)
def test_split_parts_are_within_one_unit_of_the_exact_share(total: int, weights: list[int]) -> None:
    # given any total and weights / when it is split
    parts = split(total, weights)

    # then each part is less than one minor unit away from its exact proportional share
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, weight_sum)) < 1


@QUICK_PROPERTY
@given(totals, weight_lists)
def test_split_is_deterministic(total: int, weights: list[int]) -> None:
    # given one total and one set of weights
    # when it is split twice, once from a tuple
    first, second = split(total, weights), split(total, tuple(weights))

    # then both splits agree
    assert first == second


@QUICK_PROPERTY
@given(totals, weight_lists)
def test_split_of_a_negative_total_mirrors_the_positive_split(
    total: int, weights: list[int]
) -> None:
    # given a total and its negation (a charge and its refund)
    # when both are split by the same weights
    charge, refund = split(abs(total), weights), split(-abs(total), weights)

    # then every refunded part exactly cancels its charged part
    assert refund == [-part for part in charge]


@QUICK_PROPERTY
@given(totals, weight_lists, st.lists(st.integers(min_value=0, max_value=10**6), max_size=10))
def test_split_gives_nothing_to_a_zero_weight(
    total: int, before: list[int], after: list[int]
) -> None:
    # given weights with a zero among them
    weights = [*before, 0, *after]

    # when a total is split by them
    parts = split(total, weights)

    # then the zero weight gets nothing
    assert parts[len(before)] == 0


@QUICK_PROPERTY
@given(st.integers(min_value=0, max_value=10**15), weight_lists)
def test_split_never_gives_a_heavier_weight_less(total: int, weights: list[int]) -> None:
    # given a non-negative total / when it is split
    parts = split(total, weights)

    # then a weight at least as large as another never gets a smaller part
    for i, (part_i, weight_i) in enumerate(zip(parts, weights, strict=True)):
        for part_j, weight_j in zip(parts[i + 1 :], weights[i + 1 :], strict=True):
            if weight_i >= weight_j:
                assert part_i >= part_j
            else:
                assert part_i <= part_j


def test_split_refuses_to_split_among_no_parts() -> None:
    with pytest.raises(MoneyError, match="no parts"):
        split(100, [])


@pytest.mark.parametrize("weights", [[-1], [1, -1], [3, 0, -2]])
def test_split_refuses_negative_weights(weights: list[int]) -> None:
    with pytest.raises(MoneyError, match="negative"):
        split(100, weights)


@pytest.mark.parametrize("weights", [[0], [0, 0, 0]])
def test_split_refuses_weights_that_are_all_zero(weights: list[int]) -> None:
    with pytest.raises(MoneyError, match="zero"):
        split(100, weights)


@PROPERTY
@given(totals, st.integers(min_value=1, max_value=200))
def test_split_evenly_parts_differ_by_at_most_one_unit(total: int, count: int) -> None:
    # given any total and a number of shoppers
    # when it is split evenly
    parts = split_evenly(total, count)

    # then everyone gets the same amount give or take one minor unit, and nothing is lost
    assert len(parts) == count
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1


@QUICK_PROPERTY
@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=1, max_value=200))
def test_split_evenly_gives_the_extra_units_to_the_earliest_parts(total: int, count: int) -> None:
    parts = split_evenly(total, count)
    assert parts == sorted(parts, reverse=True)


def test_split_evenly_shares_a_team_price_among_the_members() -> None:
    assert split_evenly(1000, 3) == [334, 333, 333]
    assert split_evenly(-1000, 3) == [-334, -333, -333]
    assert split_evenly(7, 7) == [1] * 7


@pytest.mark.parametrize("count", [0, -1, -100])
def test_split_evenly_refuses_fewer_than_one_part(count: int) -> None:
    with pytest.raises(MoneyError, match="at least 1"):
        split_evenly(100, count)
