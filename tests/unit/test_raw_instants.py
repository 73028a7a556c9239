"""The raw path's instants as SQLite stores them: each instant's own text, whichever order a
transaction writes them in and however many it writes (the texts are kept a few at a time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from pintuan.kit.rawsql import RawTx

BASE = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)


def _text(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=60))
def test_every_instant_is_written_as_its_own_text(offsets: list[int]) -> None:
    tx = RawTx(None, sqlite=True)
    for offset in offsets:
        at = BASE + timedelta(microseconds=offset)
        assert tx.instant(at) == _text(at)


def test_an_instant_in_another_zone_is_written_in_utc() -> None:
    tx = RawTx(None, sqlite=True)
    shanghai = BASE.astimezone(timezone(timedelta(hours=8)))
    assert tx.instant(BASE) == tx.instant(shanghai) == "2026-12-06 17:00:00.000000"


def test_postgresql_is_given_the_aware_instant_itself() -> None:
    tx = RawTx(None, sqlite=False)
    assert tx.instant(BASE) is BASE


def test_a_transaction_reads_the_clock_once_for_its_moment() -> None:
    tx = RawTx(None, sqlite=True)
    before = datetime.now(UTC)
    first = tx.moment()
    after = datetime.now(UTC)
    assert _text(before) <= first <= _text(after)
    assert tx.moment() is first
    assert RawTx(None, sqlite=True).moment() >= first  # another transaction reads it anew
