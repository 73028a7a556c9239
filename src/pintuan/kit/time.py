"""One clock for the whole application. Storage and arithmetic are always in aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones


class Clock:
    """The application's idea of now: real time plus an offset that only tests and demos move.

    Moving the clock lets a test watch a team window end without waiting for it; production
    never sets an offset (``PINTUAN_CLOCK_OFFSET_SECONDS`` is refused when ``PINTUAN_ENV=prod``).
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


clock = Clock()


def utc_now() -> datetime:
    return clock.now()


def ensure_utc(value: datetime) -> datetime:
    """``value`` in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: an instant must carry its time zone")
    return value.astimezone(UTC)


def isoformat_z(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2026-11-25T14:00:00Z``."""
    text = ensure_utc(value).isoformat()
    return text.replace("+00:00", "Z")


_ZONES: frozenset[str] | None = None


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone known to this system."""
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return name in _ZONES


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def wall_clock_text(value: datetime, time_zone: str, locale: str) -> str:
    """An instant as people of ``locale`` write a date with a time, on ``time_zone``'s clock:
    ``Nov 26, 2026, 12:30 AM``, ``2026年11月26日 00:30``. The month is a word (or the
    locale's own date order), never the numeric short date that reads differently in each
    country (``11/26/26``)."""
    # Imported here: Babel's date tables are only needed where text is made for people.
    from babel import Locale
    from babel.dates import format_date, format_time

    local = ensure_utc(value).astimezone(zone(time_zone))
    reader = Locale.parse(locale.replace("-", "_"))
    pattern = str(reader.datetime_formats["medium"])
    return pattern.replace("{1}", str(format_date(local, "medium", locale=reader))).replace(
        "{0}", str(format_time(local, "short", locale=reader))
    )
