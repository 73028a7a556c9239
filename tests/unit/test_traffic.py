"""Pure rules of sharing: tokens, bots, countries, weeks and the growth figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pintuan.domain.traffic import (
    KFactor,
    UaClass,
    country_of,
    framed_token,
    is_bot,
    is_share_code,
    median_seconds,
    new_share_code,
    new_share_token,
    parse_week,
    token_of,
    ua_class,
    week_label,
    week_of,
    week_over_week,
    weeks_between,
)

ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
WECHAT_BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003129) NetType/WIFI"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5"


def test_a_token_is_found_bare_framed_full_width_or_inside_a_message() -> None:
    token = new_share_token()

    assert token_of(token) == token
    assert token_of(framed_token(token)) == token
    assert token_of(f"￥{token}￥") == token
    assert token_of(f"Join my team! {framed_token(token)} http://x") == token
    assert token_of("no token here ¥short¥") is None


def test_codes_and_tokens_are_random_and_well_formed() -> None:
    codes = {new_share_code() for _ in range(1000)}
    tokens = {new_share_token() for _ in range(1000)}

    assert len(codes) == len(tokens) == 1000
    assert all(is_share_code(c) for c in codes)
    assert not is_share_code("0OIl000000")  # characters left out of the alphabet


@pytest.mark.parametrize(
    "user_agent",
    [
        "WhatsApp/2.23.20.0 A",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0)",
        "curl/8.5.0",
        "",
        None,
    ],
)
def test_crawlers_link_previews_and_scripts_are_bots(user_agent: str | None) -> None:
    assert is_bot(user_agent)
    assert ua_class(user_agent) is UaClass.BOT


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (ANDROID, UaClass.MOBILE),
        (WECHAT_BROWSER, UaClass.MOBILE),
        (DESKTOP, UaClass.DESKTOP),
        (IPAD, UaClass.TABLET),
    ],
)
def test_people_in_browsers_and_chat_apps_are_not_bots(user_agent: str, expected: UaClass) -> None:
    assert not is_bot(user_agent)
    assert ua_class(user_agent) is expected


def test_the_country_comes_from_a_cdn_header_else_the_preferred_language_region() -> None:
    assert country_of({"cf-ipcountry": "id", "accept-language": "zh-CN"}) == "ID"
    assert country_of({"cf-ipcountry": "XX", "accept-language": "zh-CN"}) == "CN"
    assert country_of({"accept-language": "en;q=0.9, de-DE;q=0.8, zh-Hans-CN"}) == "CN"
    assert country_of({"accept-language": "en, fr"}) == "ZZ"
    assert country_of({}) == "ZZ"


def test_weeks_are_iso_weeks_starting_on_monday_utc() -> None:
    sunday_night = datetime(2026, 12, 6, 23, 59, tzinfo=UTC)

    assert week_of(sunday_night) == date(2026, 11, 30)
    assert week_label(date(2026, 11, 30)) == "2026-W49"
    assert week_label(date(2026, 12, 28)) == "2026-W53"
    assert parse_week("2026-W49") == date(2026, 11, 30)
    assert parse_week("2026-12-03") == date(2026, 11, 30)
    assert weeks_between(date(2026, 11, 30), date(2026, 12, 9)) == [
        date(2026, 11, 30),
        date(2026, 12, 7),
    ]
    with pytest.raises(ValueError, match="Invalid"):
        parse_week("2026-W54")


def test_the_k_factor_is_shares_per_buyer_times_buyers_per_share() -> None:
    k = KFactor(shares=8, buyers=4, brought=2)

    assert (k.shares_per_buyer, k.buyers_per_share, k.k) == (2.0, 0.25, 0.5)
    assert KFactor(shares=0, buyers=3, brought=0).k == 0.0
    assert KFactor(shares=5, buyers=0, brought=0).k is None


def test_medians_and_week_over_week_ratios() -> None:
    assert median_seconds([30, 10, 20]) == 20.0
    assert median_seconds([40, 10, 20, 30]) == 25.0
    assert median_seconds([]) is None
    assert week_over_week([4, 2, 0, 3]) == [None, 0.5, 0.0, None]
