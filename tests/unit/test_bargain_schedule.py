"""The bargain's cut schedule and terms, as pure rules: every cut takes at least one minor unit,
the cuts add up exactly to what may be cut, the same seed always gives the same schedule, and
terms that could not give every helper a cut are refused."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.bargains import (
    BargainStatus,
    BargainTerms,
    cut_schedule,
    price_after,
    shown_status,
    terms_problems,
)

seeds = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[str, int, int]:
    helpers = draw(st.integers(min_value=1, max_value=100))
    total = draw(st.integers(min_value=helpers, max_value=10**12))
    return draw(seeds), total, helpers


@given(schedules())
def test_every_cut_takes_something_and_the_cuts_add_up_exactly(
    case: tuple[str, int, int],
) -> None:
    seed, total, helpers = case

    schedule = cut_schedule(seed, total, helpers)

    assert len(schedule) == helpers
    assert all(isinstance(amount, int) and amount >= 1 for amount in schedule)
    assert sum(schedule) == total
    assert price_after(total + 5, schedule, helpers) == 5


@given(schedules())
def test_the_same_seed_gives_the_same_schedule(case: tuple[str, int, int]) -> None:
    seed, total, helpers = case

    assert cut_schedule(seed, total, helpers) == cut_schedule(seed, total, helpers)


@given(seeds, st.integers(min_value=2, max_value=100))
def test_with_one_unit_per_helper_every_cut_is_one(seed: str, helpers: int) -> None:
    assert cut_schedule(seed, helpers, helpers) == [1] * helpers


def test_different_seeds_give_different_schedules() -> None:
    made = {tuple(cut_schedule(secrets.token_hex(32), 8000, 10)) for _ in range(20)}

    assert len(made) == 20


def test_earlier_helpers_tend_to_cut_more() -> None:
    # Weights are scaled by the helpers still to come: summed over many bargains, the first
    # cut takes several times the last.
    firsts = lasts = 0
    for _ in range(200):
        schedule = cut_schedule(secrets.token_hex(32), 100_000, 20)
        firsts += schedule[0]
        lasts += schedule[-1]

    assert firsts > 5 * lasts


def test_a_schedule_that_cannot_give_each_helper_a_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot make"):
        cut_schedule(secrets.token_hex(32), 4, 5)
    with pytest.raises(ValueError, match="at least one helper"):
        cut_schedule(secrets.token_hex(32), 4, 0)


@pytest.mark.parametrize(
    ("terms", "fields"),
    [
        (BargainTerms(2000, 10, 24), []),
        (BargainTerms(9990, 10, 24), []),  # exactly one unit per helper
        (BargainTerms(9991, 10, 24), ["floor_price.amount"]),
        (BargainTerms(10_000, 10, 24), ["floor_price.amount"]),
        (BargainTerms(0, 10, 24), ["floor_price.amount"]),
        (BargainTerms(2000, 1, 24), ["helpers"]),
        (BargainTerms(2000, 101, 24), ["helpers"]),
        (BargainTerms(2000, 10, 0), ["hours"]),
        (BargainTerms(2000, 10, 169), ["hours"]),
    ],
)
def test_terms_problems_name_their_fields(terms: BargainTerms, fields: list[str]) -> None:
    assert [p.field for p in terms_problems(terms, 10_000)] == fields


def test_a_bargain_reads_bought_once_paid_and_expired_past_its_deadline() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    later, earlier = now + timedelta(hours=1), now - timedelta(seconds=1)

    assert shown_status("open", later, None, now) is BargainStatus.OPEN
    assert shown_status("open", later, "released", now) is BargainStatus.OPEN
    assert shown_status("open", later, "paid", now) is BargainStatus.BOUGHT
    assert shown_status("open", earlier, "confirmed", now) is BargainStatus.BOUGHT
    assert shown_status("open", earlier, None, now) is BargainStatus.EXPIRED
    assert shown_status("open", earlier, "released", now) is BargainStatus.EXPIRED
    # A seat still held for its payment keeps the bargain open until its hold ends.
    assert shown_status("open", earlier, "held", now) is BargainStatus.OPEN
    assert shown_status("expired", later, None, now) is BargainStatus.EXPIRED
    assert shown_status("bought", earlier, "refunded", now) is BargainStatus.BOUGHT
