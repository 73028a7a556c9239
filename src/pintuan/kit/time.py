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
