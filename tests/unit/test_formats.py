# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Money, dates and durations as each reader's language writes them (CLDR through Babel),
on pages, in share texts and on posters, and Chinese punctuation that stays full-width."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from pintuan.kit.money import Money
from pintuan.shares.wording import WORDS, instant_text, team_share_text
from pintuan.web.kit.i18n import LOCALES_DIR, duration_text
from pintuan.web.kit.i18n import instant_text as page_instant

MOMENT = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
NUMERIC_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")
CJK = "[\u3400-\u9fff]"
# Half-width punctuation touching Chinese text: "价:", ", 还", "截止(", ")截止".
MIXED = re.compile(rf"{CJK}\s?[,;:?!(]|[,;:?!)]\s?{CJK}|{CJK}\s?\)|\(\s?{CJK}")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (5_900_000, "IDR", "en", "Rp59.000"),  # rupiah the way Indonesia writes them
        (5_900_050, "IDR", "en", "Rp59.000,50"),  # a fraction that is there is shown
        (5_900_000, "IDR", "zh_Hans", "Rp59,000"),
        (9900, "CNY", "zh_Hans", "¥99.00"),
        (9900, "CNY", "en", "CN¥99.00"),
        (1999, "USD", "en", "$19.99"),
        (1999, "USD", "zh-Hans", "US$19.99"),
        (1500, "JPY", "en", "¥1,500"),
        (1000, "MYR", "en", "RM10.00"),
        (1500, "BHD", "en", "BHD1.500"),  # no symbol a reader of English cannot read
    ],
)
def test_money_follows_cldr_for_the_currency_and_the_reader(
    amount: int, currency: str, locale: str, text: str
) -> None:
    assert Money(amount, currency).format(locale) == text


def test_rupiah_is_never_written_with_its_iso_code_and_paper_cents() -> None:
    for locale in ("en", "zh_Hans"):
        assert "IDR" not in Money(5_900_000, "IDR").format(locale)
        assert not Money(5_900_000, "IDR").format(locale).endswith("00.00")


def test_a_duration_after_ends_in_has_no_second_direction() -> None:
    now = MOMENT
    assert duration_text(now + timedelta(days=59), now, "en") == "2 months"
    assert duration_text(now + timedelta(days=59), now, "zh_Hans") == "2个月"
    assert duration_text(now + timedelta(hours=3), now, "en") == "3 hours"
    assert duration_text(now - timedelta(hours=3), now, "en") == "0 seconds"


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_share_texts_and_posters_write_dates_the_readers_way(locale: str) -> None:
    text = team_share_text(
        locale=locale,
        title="Dumplings",
        price=Money(5_900_000, "IDR"),
        list_price=Money(9_900_000, "IDR"),
        seats_left=2,
        ends_at=MOMENT,
        time_zone="Asia/Jakarta",
        token="¥ABCD¥",
    )

    assert NUMERIC_DATE.search(text) is None
    assert "IDR" not in text
    assert NUMERIC_DATE.search(instant_text(MOMENT, "Asia/Jakarta", locale)) is None
    assert NUMERIC_DATE.search(page_instant(MOMENT, "Asia/Jakarta", locale, "short")) is None
    if locale == "en":
        assert "Nov 25, 2026, 11:30\u202fPM (Asia/Jakarta)" in text
    else:
        assert "2026年11月25日 23:30（Asia/Jakarta）" in text
        assert MIXED.search(text) is None, text


def test_posters_and_pages_call_the_group_price_the_same() -> None:
    assert WORDS["en"]["poster_group_price"] == "Group price"
    assert WORDS["zh_Hans"]["poster_group_price"] == "拼团价"
    assert "拼团价" in WORDS["zh_Hans"]["team_text"]


def test_chinese_text_uses_full_width_punctuation() -> None:
    mixed: list[str] = []
    for po_file in sorted((LOCALES_DIR / "zh_Hans" / "LC_MESSAGES").glob("*.po")):
        with po_file.open("rb") as source:
            catalogue = read_po(source)
        for message in catalogue:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in strings:
                bare = re.sub(r"%\(\w+\)[sd]|https?://\S+", "", text or "")
                if MIXED.search(bare):
                    mixed.append(f"{Path(po_file).name}: {message.id!r} → {text!r}")
    for key, text in WORDS["zh_Hans"].items():
        if MIXED.search(re.sub(r"\{\w+\}", "", text)):
            mixed.append(f"WORDS['zh_Hans'][{key!r}] → {text!r}")

    assert mixed == []
