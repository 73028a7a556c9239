"""One clock, always aware UTC; naive datetimes are refused, never guessed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.kit.time import ensure_utc, is_time_zone, isoformat_z, utc_now, zone

PROPERTY = settings(max_examples=100, deadline=None)

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Zones with DST, half- and quarter-hour offsets, and both ends of the offset range.
ZONES = [
    UTC,
    SHANGHAI,
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Pacific/Kiritimati"),
    ZoneInfo("Pacific/Pago_Pago"),
    timezone(timedelta(hours=-3, minutes=-30)),
]
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by contract
    max_value=datetime(2060, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(ZONES),
)


class _ZoneWithoutOffset(tzinfo):
    """A tzinfo that knows no offset, which makes a datetime naive despite its tzinfo."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_utc_now_is_aware_and_in_utc() -> None:
    # given / when the clock is read
    now = utc_now()

    # then it carries UTC explicitly
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)


def test_utc_now_never_runs_backwards_between_two_reads() -> None:
    # given / when the clock is read twice in a row
    first = utc_now()
    second = utc_now()

    # then the second reading is not earlier than the first
    assert first <= second


def test_ensure_utc_refuses_a_naive_datetime() -> None:
    # given a datetime without a time zone
    naive = datetime(2026, 11, 25, 14, 0)  # noqa: DTZ001 - the naive value under test

    # when / then it is refused rather than assumed to be UTC or local time
    with pytest.raises(ValueError, match="naive"):
        ensure_utc(naive)


def test_ensure_utc_refuses_a_datetime_whose_zone_has_no_offset() -> None:
    value = datetime(2026, 11, 25, 14, 0, tzinfo=_ZoneWithoutOffset())
    with pytest.raises(ValueError, match="naive"):
        ensure_utc(value)


def test_ensure_utc_converts_another_zone_to_the_same_instant_in_utc() -> None:
    # given 22:00 in Shanghai (UTC+8)
    evening_in_shanghai = datetime(2026, 11, 25, 22, 0, tzinfo=SHANGHAI)

    # when it is brought to UTC
    result = ensure_utc(evening_in_shanghai)

    # then it is 14:00 UTC, the same instant
    assert result == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_ensure_utc_keeps_a_utc_datetime_as_it_is() -> None:
    value = datetime(2026, 11, 25, 14, 0, 0, 123456, tzinfo=UTC)
    assert ensure_utc(value) == value
    assert ensure_utc(value).tzinfo is UTC


def test_ensure_utc_accepts_a_fixed_offset() -> None:
    new_york_winter = timezone(timedelta(hours=-5))
    value = datetime(2026, 1, 1, 9, 0, tzinfo=new_york_winter)
    assert ensure_utc(value) == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)


def test_isoformat_z_writes_utc_with_a_z_suffix() -> None:
    # given an instant in Shanghai / when it is written out
    text = isoformat_z(datetime(2026, 11, 25, 22, 0, tzinfo=SHANGHAI))

    # then it is the ISO 8601 UTC form with Z
    assert text == "2026-11-25T14:00:00Z"


def test_isoformat_z_keeps_microseconds() -> None:
    value = datetime(2026, 11, 25, 14, 0, 0, 1, tzinfo=UTC)
    assert isoformat_z(value) == "2026-11-25T14:00:00.000001Z"


def test_isoformat_z_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        isoformat_z(datetime(2026, 11, 25, 14, 0))  # noqa: DTZ001 - the naive value under test


@PROPERTY
@given(aware_datetimes)
def test_isoformat_z_always_ends_with_z_and_reads_back_as_the_same_instant(
    value: datetime,
) -> None:
    # given an aware datetime in any zone
    # when it is written out
    text = isoformat_z(value)

    # then it ends with Z, carries no numeric offset, and parses back to the same instant
    assert text.endswith("Z")
    assert "+00:00" not in text
    assert datetime.fromisoformat(text) - value == timedelta(0)


@pytest.mark.parametrize("name", ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin"])
def test_is_time_zone_knows_iana_zones(name: str) -> None:
    assert is_time_zone(name)


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "+08:00", "GMT+8 ", "Asia/"])
def test_is_time_zone_refuses_names_that_are_not_iana_zones(name: str) -> None:
    assert not is_time_zone(name)


def test_zone_gives_the_named_iana_zone() -> None:
    shanghai = zone("Asia/Shanghai")
    assert shanghai.utcoffset(datetime(2026, 1, 1, tzinfo=UTC)) == timedelta(hours=8)
