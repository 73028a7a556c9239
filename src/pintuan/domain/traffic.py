"""Pure rules of sharing and growth: channels, codes and tokens, who is a bot, where a visitor
is, ISO weeks, and the growth figures (K-factor, medians, week-over-week ratios).

Nothing here touches storage or HTTP.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

from pintuan.kit.ids import random_urlsafe


class Channel(StrEnum):
    WECHAT = "wechat"
    WHATSAPP = "whatsapp"
    LINE = "line"
    TELEGRAM = "telegram"
    FACEBOOK = "facebook"
    X = "x"
    SMS = "sms"
    EMAIL = "email"
    COPY = "copy"
    QR = "qr"
    OTHER = "other"


# Visits and orders an outside app brings through its deep links are a channel of their own,
# ``app:<app id>`` (see ``pintuan.partners.deep_links``), one per app.
APP_CHANNEL_PREFIX = "app:"
CHANNEL_LENGTH = 48  # "app:" and an app id ("app_" and 26 characters), with room to spare
_APP_CHANNEL = re.compile(r"^app:([A-Za-z0-9_]{1,40})$")
_SHARING_CHANNELS = frozenset(channel.value for channel in Channel)


def app_channel(app_id: str) -> str:
    """The growth channel of the traffic an app brings."""
    return f"{APP_CHANNEL_PREFIX}{app_id}"


def app_of_channel(channel: str) -> str | None:
    """The app a channel belongs to, or None for the channels shoppers share through."""
    found = _APP_CHANNEL.match(channel)
    return found.group(1) if found else None


def app_share_code(app_id: str, target_id: str) -> str:
    """The share code of an app's deep link to a team or deal: derived from both, so that
    requests racing to make it agree on it (and the code's uniqueness keeps it one row).
    Nothing in it is secret: the deep link names the app and the target anyway."""
    number = int.from_bytes(hashlib.sha256(f"{app_id}|{target_id}".encode()).digest()[:8])
    digits = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return "".join(digits)


def is_channel(text: str) -> bool:
    """Whether ``text`` names a channel: one shoppers share through, or an app's."""
    return text in _SHARING_CHANNELS or app_of_channel(text) is not None


class ConversionKind(StrEnum):
    """What a visit led to, in funnel order. ``start`` and ``join`` are the order itself;
    ``pay`` and ``success`` follow that order (see ``shares.attribution``)."""

    START = "start"
    JOIN = "join"
    PAY = "pay"
    SUCCESS = "success"


# ---------------------------------------------------------------------------- codes and tokens
# Base58: no 0/O or I/l, so a token read aloud or retyped from a screenshot survives.
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CODE_LENGTH = 10  # 58**10 ≈ 2**58.6: share codes are not secrets, but must not be enumerable
# 58**11 ≈ 2**64.4. With a million live tokens, an attacker making a thousand guesses a second
# needs about 2**64.4 / 10**6 / 10**3 seconds (some 700 years) to hit any one of them.
TOKEN_LENGTH = 11
TOKEN_MARKS = "¥￥"  # noqa: S105 - not a secret; chat apps and input methods turn ¥ into the full-width ￥ and back
TOKEN_BITS = 64

_TOKEN_CHARS = "1-9A-HJ-NP-Za-km-z"  # noqa: S105 - the alphabet, as a regex class
_TOKEN_IN_TEXT = re.compile(rf"[{TOKEN_MARKS}]([{_TOKEN_CHARS}]{{{TOKEN_LENGTH}}})[{TOKEN_MARKS}]")
_BARE_TOKEN = re.compile(rf"^[{TOKEN_MARKS}]?([{_TOKEN_CHARS}]{{{TOKEN_LENGTH}}})[{TOKEN_MARKS}]?$")
_CODE = re.compile(rf"^[{_TOKEN_CHARS}]{{{CODE_LENGTH}}}$")
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def _random_text(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_share_code() -> str:
    """An opaque share code: random, so it says nothing about the sharer or the target."""
    return _random_text(CODE_LENGTH)


def new_share_token() -> str:
    """The secret part of a copy-paste token (shown to people as ``¥<token>¥``)."""
    return _random_text(TOKEN_LENGTH)


def framed_token(token: str) -> str:
    return f"¥{token}¥"


def is_share_code(text: str) -> bool:
    return bool(_CODE.match(text))


def token_of(text: str) -> str | None:
    """The token in a bare token (with or without its ¥ marks) or anywhere in a pasted text."""
    stripped = text.strip()
    bare = _BARE_TOKEN.match(stripped)
    if bare:
        return bare.group(1)
    found = _TOKEN_IN_TEXT.search(stripped)
    return found.group(1) if found else None


def new_visitor_id() -> str:
    """A first-party visitor id: 128 random bits, nothing else in it."""
    return random_urlsafe(16)


def is_visitor_id(text: str | None) -> bool:
    return bool(text and _VISITOR_ID.match(text))


# ---------------------------------------------------------------------------- visitors
# Crawlers and the link-preview fetchers of chat and social apps. They open every shared link
# to draw its preview card, so counting them would credit sharers with visits nobody made.
# Matched case-insensitively anywhere in the User-Agent.
BOT_SIGNATURES: tuple[str, ...] = (
    # link previews of chat and social apps
    "whatsapp",
    "facebookexternalhit",
    "facebot",
    "facebookcatalog",
    "twitterbot",
    "telegrambot",
    "slackbot",
    "slack-imgproxy",
    "linkedinbot",
    "discordbot",
    "skypeuripreview",
    "pinterestbot",
    "redditbot",
    "vkshare",
    "mastodon",
    "embedly",
    "iframely",
    "bitlybot",
    "applebot",
    # search and AI crawlers
    "googlebot",
    "google-inspectiontool",
    "adsbot-google",
    "mediapartners-google",
    "apis-google",
    "bingbot",
    "bingpreview",
    "baiduspider",
    "yandexbot",
    "duckduckbot",
    "sogou",
    "360spider",
    "bytespider",
    "petalbot",
    "yisouspider",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "gptbot",
    "claudebot",
    "ccbot",
    "amazonbot",
    # scripts
    "curl/",
    "wget/",
    "python-requests",
    "python-httpx",
    "go-http-client",
    "libwww-perl",
)
# Generic marks of automation; a URL in a User-Agent is a crawler's contact address.
_GENERIC_BOT = re.compile(r"crawler|spider|https?://|\bbot\b", re.IGNORECASE)


class UaClass(StrEnum):
    BOT = "bot"
    MOBILE = "mobile"
    TABLET = "tablet"
    DESKTOP = "desktop"
    OTHER = "other"


def is_bot(user_agent: str | None) -> bool:
    """Whether a User-Agent is a crawler, a link-preview fetcher or a script (or is missing)."""
    if not user_agent or not user_agent.strip():
        return True
    lowered = user_agent.lower()
    return any(sig in lowered for sig in BOT_SIGNATURES) or bool(_GENERIC_BOT.search(user_agent))


def ua_class(user_agent: str | None) -> UaClass:
    """A coarse device class; the User-Agent itself is not kept."""
    if is_bot(user_agent):
        return UaClass.BOT
    assert user_agent is not None
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return UaClass.TABLET
    if "mobile" in ua or "iphone" in ua or "android" in ua:
        return UaClass.MOBILE
    if any(os_ in ua for os_ in ("windows", "macintosh", "x11", "linux", "cros")):
        return UaClass.DESKTOP
    return UaClass.OTHER


UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 user-assigned code, commonly "unknown"
# Country headers that CDNs and load balancers set from the client's address, first wins.
COUNTRY_HEADERS = (
    "cf-ipcountry",
    "cloudfront-viewer-country",
    "x-appengine-country",
    "x-vercel-ip-country",
    "x-country-code",
)
_NOT_A_COUNTRY = frozenset({"XX", "T1", "ZZ", "EU", "AP"})


def _region_of_tag(tag: str) -> str | None:
    """The region of a language tag: ``zh-CN`` → CN, ``zh-Hans-CN`` → CN, ``en`` → None."""
    for part in tag.replace("_", "-").split("-")[1:]:
        if len(part) == 2 and part.isalpha():
            return part.upper()
    return None


def country_of(headers: Mapping[str, str]) -> str:
    """Where a visitor probably is: a CDN's country header when one is present, else the region
    of their most preferred language that names one (``zh-CN`` → CN), else ``ZZ`` (unknown).

    Both are hints, not facts; they feed aggregates only, never a decision about a person.
    """
    for name in COUNTRY_HEADERS:
        value = (headers.get(name) or "").strip().upper()
        if len(value) == 2 and value.isalpha() and value not in _NOT_A_COUNTRY:
            return value
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((headers.get("accept-language") or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag))
    for _, _, tag in sorted(weighted):
        region = _region_of_tag(tag)
        if region is not None:
            return region
    return UNKNOWN_COUNTRY


# ---------------------------------------------------------------------------- weeks
def utc_day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def week_of(day: date | datetime) -> date:
    """The Monday (UTC) of the ISO week holding ``day``."""
    as_day = utc_day(day) if isinstance(day, datetime) else day
    return as_day - timedelta(days=as_day.weekday())


def week_label(monday: date) -> str:
    """ISO 8601 week, e.g. ``2026-W48``."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")


def parse_week(text: str) -> date:
    """The Monday of an ISO week written ``2026-W48`` (or a date inside it, ``2026-11-25``)."""
    found = _WEEK.match(text.strip())
    if found:
        return date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1)
    return week_of(date.fromisoformat(text.strip()))


def weeks_between(first: date, last: date) -> list[date]:
    """Every Monday from the week of ``first`` to the week of ``last``, inclusive."""
    monday, end = week_of(first), week_of(last)
    weeks: list[date] = []
    while monday <= end:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


# ---------------------------------------------------------------------------- figures
def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, or None when there is nothing to divide by."""
    return float(Fraction(numerator, denominator)) if denominator else None


@dataclass(frozen=True, slots=True)
class KFactor:
    """The viral coefficient of a set of shares and orders.

    With, over the same deals, cohort weeks, channels and countries:

    * ``shares`` S: shares created (by anyone) in the cohort weeks;
    * ``buyers`` B: paid orders (seats paid, free leader seats included) in those weeks, from
      any source. A shopper who buys twice counts twice: "buyer" means one paid order;
    * ``brought`` A: paid orders attributed to those shares (last touch, see
      ``shares.attribution``), whenever they were paid;

    ``shares_per_buyer`` = S / B, ``buyers_per_share`` = A / S, and
    ``k`` = shares_per_buyer * buyers_per_share = A / B: how many new paid orders each paid
    order brings through sharing. K above 1 means sharing alone grows the deal.
    B ignores channel and country filters (an order without a share has neither), so the
    K of every channel sums to the K of all channels.
    """

    shares: int
    buyers: int
    brought: int

    @property
    def shares_per_buyer(self) -> float | None:
        return ratio(self.shares, self.buyers)

    @property
    def buyers_per_share(self) -> float | None:
        return ratio(self.brought, self.shares)

    @property
    def k(self) -> float | None:
        if not self.buyers:
            return None
        if not self.shares:
            return 0.0
        return float(Fraction(self.shares, self.buyers) * Fraction(self.brought, self.shares))


def median_seconds(samples: Iterable[int]) -> float | None:
    """The median of durations in seconds (the mean of the middle two for an even count)."""
    values: Sequence[int] = sorted(samples)
    if not values:
        return None
    return float(statistics.median(values))


def week_over_week(values: Sequence[int]) -> list[float | None]:
    """Each week's value as a ratio of the week before (None for the first week, or when the
    week before had none). Below 1 for weeks in a row: a traffic pool drying up."""
    return [None] + [ratio(now, before) for before, now in pairwise(values)]
