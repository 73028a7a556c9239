"""A deal's terms are checked in one place, and every broken rule names its field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.deals import DealTerms, FieldProblem, check_deal_terms
from pintuan.kit.money import Money, max_amount

PROPERTY = settings(max_examples=100, deadline=None)

STARTS_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make_terms(
    *,
    list_price: Money | None = None,
    group_price: Money | None = None,
    starts_at: datetime = STARTS_AT,
    ends_at: datetime | None = None,
    stock: int = 100,
    committed: int = 0,
) -> DealTerms:
    """Valid CNY terms for a week-long deal, with whatever the test overrides."""
    return DealTerms(
        list_price=list_price or Money(2999, "CNY"),
        group_price=group_price or Money(1999, "CNY"),
        starts_at=starts_at,
        ends_at=ends_at or starts_at + timedelta(days=7),
        stock=stock,
        committed=committed,
    )


def fields(problems: list[FieldProblem]) -> list[str]:
    return [problem.field for problem in problems]


def test_valid_terms_have_no_problems() -> None:
    assert check_deal_terms(make_terms(), "CNY") == []


def test_a_price_in_another_currency_than_the_merchants_is_refused() -> None:
    # given a CNY merchant whose list price is in dollars
    terms = make_terms(list_price=Money(2999, "USD"))

    # when the terms are checked
    problems = check_deal_terms(terms, "CNY")

    # then the list price currency is named, and prices in different currencies are not compared
    assert problems == [
        FieldProblem("list_price.currency", "must be the merchant's currency CNY, not USD")
    ]


def test_a_group_price_in_another_currency_is_refused() -> None:
    terms = make_terms(group_price=Money(5000, "USD"))
    assert fields(check_deal_terms(terms, "CNY")) == ["group_price.currency"]


def test_both_prices_in_another_currency_are_both_named() -> None:
    terms = make_terms(list_price=Money(2999, "USD"), group_price=Money(1999, "USD"))
    assert fields(check_deal_terms(terms, "CNY")) == ["list_price.currency", "group_price.currency"]


@pytest.mark.parametrize("amount", [0, -1])
def test_a_list_price_below_one_minor_unit_is_refused(amount: int) -> None:
    # given a free or negative list price (and a group price below it)
    terms = make_terms(list_price=Money(amount, "CNY"), group_price=Money(amount - 1, "CNY"))

    # when the terms are checked
    problems = check_deal_terms(terms, "CNY")

    # then both prices are out of range
    assert fields(problems) == ["list_price.amount", "group_price.amount"]
    assert "between 1 and" in problems[0].message


def test_a_price_above_the_largest_accepted_amount_is_refused() -> None:
    # given a list price one minor unit above the cap
    too_much = max_amount("CNY") + 1
    terms = make_terms(list_price=Money(too_much, "CNY"))

    # when the terms are checked
    problems = check_deal_terms(terms, "CNY")

    # then the message says the accepted range and the currency's decimals
    assert problems == [
        FieldProblem(
            "list_price.amount",
            f"must be between 1 and {max_amount('CNY')} minor units of CNY (2 decimals)",
        )
    ]


def test_prices_at_the_edges_of_the_range_are_accepted() -> None:
    terms = make_terms(list_price=Money(max_amount("JPY"), "JPY"), group_price=Money(1, "JPY"))
    assert check_deal_terms(terms, "JPY") == []


def test_the_range_message_uses_the_currency_of_the_price() -> None:
    terms = make_terms(list_price=Money(0, "JPY"), group_price=Money(0, "JPY"))
    problems = check_deal_terms(terms, "JPY")
    assert problems[0].message.endswith("minor units of JPY (0 decimals)")


@pytest.mark.parametrize("group_amount", [2999, 3000])
def test_a_group_price_not_below_the_list_price_is_refused(group_amount: int) -> None:
    # given a group price equal to or above the list price
    terms = make_terms(list_price=Money(2999, "CNY"), group_price=Money(group_amount, "CNY"))

    # when / then the group price is refused
    assert check_deal_terms(terms, "CNY") == [
        FieldProblem("group_price.amount", "must be below the list price")
    ]


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_a_deal_that_ends_before_or_when_it_starts_is_refused(length: timedelta) -> None:
    terms = make_terms(ends_at=STARTS_AT + length)
    assert check_deal_terms(terms, "CNY") == [FieldProblem("ends_at", "must be after starts_at")]


def test_a_deal_of_one_second_is_accepted() -> None:
    terms = make_terms(ends_at=STARTS_AT + timedelta(seconds=1))
    assert check_deal_terms(terms, "CNY") == []


def test_the_deal_window_compares_instants_not_wall_clocks() -> None:
    # given a 09:00 UTC start, an end at 05:00 in New York (10:00 UTC) and one at 12:00 in
    # Shanghai (04:00 UTC)
    new_york_end = datetime(2026, 12, 1, 5, 0, tzinfo=ZoneInfo("America/New_York"))
    shanghai_end = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

    # when each is checked
    new_york_problems = check_deal_terms(make_terms(ends_at=new_york_end), "CNY")
    shanghai_problems = check_deal_terms(make_terms(ends_at=shanghai_end), "CNY")

    # then the earlier wall clock that is a later instant passes, and the reverse does not
    assert new_york_problems == []
    assert fields(shanghai_problems) == ["ends_at"]


def test_stock_below_the_units_already_committed_is_refused() -> None:
    # given a deal with 40 units already held or sold
    terms = make_terms(stock=39, committed=40)

    # when stock is lowered under that
    problems = check_deal_terms(terms, "CNY")

    # then it is refused, saying how many units are committed
    assert problems == [FieldProblem("stock", "cannot go below the 40 units already committed")]


def test_stock_equal_to_the_units_committed_is_accepted() -> None:
    assert check_deal_terms(make_terms(stock=40, committed=40), "CNY") == []


def test_negative_stock_is_refused() -> None:
    assert fields(check_deal_terms(make_terms(stock=-1), "CNY")) == ["stock"]


def test_every_broken_rule_is_reported_at_once() -> None:
    # given terms that break every rule
    terms = replace(
        make_terms(),
        list_price=Money(0, "USD"),
        group_price=Money(0, "USD"),
        ends_at=STARTS_AT,
        stock=0,
        committed=1,
    )

    # when they are checked
    problems = check_deal_terms(terms, "CNY")

    # then each broken rule is named, so a form can show them all together
    assert fields(problems) == [
        "list_price.currency",
        "list_price.amount",
        "group_price.currency",
        "group_price.amount",
        "group_price.amount",
        "ends_at",
        "stock",
    ]


@PROPERTY
@given(
    list_amount=st.integers(min_value=-10, max_value=max_amount("USD") + 10),
    group_amount=st.integers(min_value=-10, max_value=max_amount("USD") + 10),
    length_seconds=st.integers(min_value=-10, max_value=10),
    stock=st.integers(min_value=-5, max_value=5),
    committed=st.integers(min_value=0, max_value=5),
)
def test_terms_have_no_problems_exactly_when_every_rule_holds(
    list_amount: int, group_amount: int, length_seconds: int, stock: int, committed: int
) -> None:
    # given any dollar terms for a dollar merchant
    terms = DealTerms(
        list_price=Money(list_amount, "USD"),
        group_price=Money(group_amount, "USD"),
        starts_at=STARTS_AT,
        ends_at=STARTS_AT + timedelta(seconds=length_seconds),
        stock=stock,
        committed=committed,
    )

    # when they are checked
    problems = check_deal_terms(terms, "USD")

    # then they pass exactly when every rule holds
    in_range = all(1 <= amount <= max_amount("USD") for amount in (list_amount, group_amount))
    every_rule_holds = (
        in_range and group_amount < list_amount and length_seconds > 0 and stock >= committed
    )
    assert (problems == []) == every_rule_holds
    assert set(fields(problems)) <= {
        "list_price.amount",
        "group_price.amount",
        "ends_at",
        "stock",
    }
