# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The words of copy-paste texts and posters, in each supported language.

They are few and sit inside images and chat messages rather than pages, so they live here as
data instead of in the pages' message catalogues.
"""

from __future__ import annotations

from datetime import datetime

from babel import Locale, UnknownLocaleError

from pintuan.kit.money import Money
from pintuan.kit.time import is_time_zone, wall_clock_text

LOCALES = ("en", "zh_Hans")
DEFAULT_LOCALE = "en"

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "team_text": (
            "{title}: {price} instead of {list_price} when our team fills. "
            "{seats_left} left, until {ends}. "
            "Copy this whole message and open Pintuan to join: {token}"
        ),
        "seats_left_one": "1 seat",
        "seats_left_many": "{n} seats",
        "poster_group_price": "Group price",
        "poster_seats_left": "{seats} left",
        "poster_team_of": "Teams of {n}",
        "poster_ends": "Ends {ends}",
        "poster_scan": "Scan to join",
    },
    "zh_Hans": {
        "team_text": (
            "【拼团】{title}，拼团价 {price}（原价 {list_price}），还差{seats_left}，"
            "{ends} 截止。复制整段文字，打开拼团即可加入：{token}"
        ),
        "seats_left_one": "1人",
        "seats_left_many": "{n}人",
        "poster_group_price": "拼团价",
        "poster_seats_left": "还差{seats}",
        "poster_team_of": "{n}人团",
        "poster_ends": "{ends} 截止",
        "poster_scan": "扫码参团",
    },
}


def supported_locale(tag: str | None) -> str | None:
    """``en`` or ``zh_Hans`` for a tag such as ``zh-Hans``, ``zh_Hans``, ``zh-CN`` or ``en-GB``."""
    if not tag:
        return None
    try:
        parsed = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "zh":
        # Traditional script readers still read Simplified better than English.
        return "zh_Hans"
    if parsed.language == "en":
        return "en"
    return None


def locale_from_accept_language(header: str | None) -> str | None:
    """The first supported language of an ``Accept-Language`` header, by preference."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    for _, _, tag in sorted(weighted):
        found = supported_locale(tag)
        if found:
            return found
    return None


def words(locale: str) -> dict[str, str]:
    return WORDS.get(locale, WORDS[DEFAULT_LOCALE])


def seats_left_text(n: int, locale: str) -> str:
    w = words(locale)
    return w["seats_left_one"] if n == 1 else w["seats_left_many"].format(n=n)


def money_text(amount: int, currency: str, locale: str) -> str:
    return Money(amount, currency).format(locale)


def instant_text(value: datetime, time_zone: str, locale: str) -> str:
    """An instant in the reader's zone, with the zone named (chat readers are anywhere)."""
    name = time_zone if is_time_zone(time_zone) else "UTC"
    opening, closing = ("（", "）") if locale.startswith("zh") else (" (", ")")
    return f"{wall_clock_text(value, name, locale)}{opening}{name}{closing}"


def team_share_text(
    *,
    locale: str,
    title: str,
    price: Money,
    list_price: Money,
    seats_left: int,
    ends_at: datetime,
    time_zone: str,
    token: str,
) -> str:
    """The copy-paste message of a team share: price, seats left, end, and the token."""
    return words(locale)["team_text"].format(
        title=title,
        price=price.format(locale),
        list_price=list_price.format(locale),
        seats_left=seats_left_text(seats_left, locale),
        ends=instant_text(ends_at, time_zone, locale),
        token=token,
    )
