"""How a refund after success comes back from the merchant and the platform's fee: integer
minor units, in proportion on the running total, exact in full."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.ledger import fee_for
from pintuan.domain.refunds import fee_back, split_refund


@st.composite
def refunds_of_a_payment(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """A payment, its fee at some commission rate, and refunds of parts of it (perhaps all)."""
    paid = draw(st.integers(1, 10**9))
    fee = fee_for(paid, draw(st.integers(0, 10_000)))
    parts: list[int] = []
    left = paid
    for _ in range(draw(st.integers(1, 8))):
        if left == 0:
            break
        part = draw(st.integers(1, left))
        parts.append(part)
        left -= part
    if draw(st.booleans()) and left:
        parts.append(left)  # the rest, so that the payment is refunded in full
    return paid, fee, parts


@given(refunds_of_a_payment())
def test_each_refund_is_split_in_whole_minor_units_that_add_up_to_it(
    case: tuple[int, int, list[int]],
) -> None:
    paid, fee, parts = case
    before = 0
    for amount in parts:
        split = split_refund(paid, fee, before, amount)
        assert split.merchant >= 0
        assert split.fee >= 0
        assert split.merchant + split.fee == amount
        before += amount


@given(refunds_of_a_payment())
def test_the_fee_given_back_stays_within_half_a_unit_of_its_exact_share(
    case: tuple[int, int, list[int]],
) -> None:
    paid, fee, parts = case
    before = given_back = 0
    for amount in parts:
        given_back += split_refund(paid, fee, before, amount).fee
        before += amount
        exact = Fraction(fee * before, paid)
        assert abs(given_back - exact) <= Fraction(1, 2)


@given(refunds_of_a_payment())
def test_a_payment_refunded_in_full_gives_back_exactly_the_fee_and_the_merchants_share(
    case: tuple[int, int, list[int]],
) -> None:
    paid, fee, parts = case
    if sum(parts) != paid:
        parts = [*parts, paid - sum(parts)]
    before = merchant = platform = 0
    for amount in parts:
        split = split_refund(paid, fee, before, amount)
        merchant += split.merchant
        platform += split.fee
        before += amount
    assert (merchant, platform) == (paid - fee, fee)


def test_the_remainder_goes_where_the_running_total_says() -> None:
    # A 10% fee of 5 on 50: three refunds of 15, 15 and 20 give back 1.5, 1.5 and 2 of fee,
    # rounded on the running total: 2 (1.5 rounds up), 1 (3.0 in all), 2 (5.0 in all).
    assert [split_refund(50, 5, b, a).fee for b, a in ((0, 15), (15, 15), (30, 20))] == [2, 1, 2]
    assert fee_back(50, 5, 50) == 5


@pytest.mark.parametrize(("before", "amount"), [(0, 0), (0, -1), (40, 11), (-1, 5)])
def test_a_refund_that_is_not_positive_or_exceeds_what_was_paid_is_refused(
    before: int, amount: int
) -> None:
    with pytest.raises(ValueError, match="refund"):
        split_refund(50, 5, before, amount)
