"""The deal form's conversions between what a person types and what the deals API takes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pintuan.web.console.deal_form import (
    amount_text,
    example_price,
    local_text,
    parse_amount,
    parse_local,
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
