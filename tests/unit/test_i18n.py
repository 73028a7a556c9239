"""Languages and places on pages: catalogues, negotiation, money and time for a viewer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pintuan.web.kit.i18n import (
    LOCALES,
    day_text,
    gettext,
    instant_text,
    load_translations,
    locale_of_tag,
    money_text,
    negotiate_locale,
    ngettext,
    tag_of_locale,
)


def write_po(folder: Path, name: str, entries: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'msgid ""',
        'msgstr ""',
        '"Content-Type: text/plain; charset=utf-8\\n"',
        '"Plural-Forms: nplurals=1; plural=0;\\n"',
        "",
    ]
    for source, target in entries.items():
        lines += [f'msgid "{source}"', f'msgstr "{target}"', ""]
    (folder / name).write_text("\n".join(lines), encoding="utf-8")


def test_every_po_file_of_a_locale_is_merged(tmp_path: Path) -> None:
    folder = tmp_path / "zh_Hans" / "LC_MESSAGES"
    write_po(folder, "messages.po", {"Deals": "活动", "Save": "保存"})
    write_po(folder, "console.po", {"Publish": "发布"})

    translations = load_translations("zh_Hans", tmp_path)

    assert translations.gettext("Deals") == "活动"
    assert translations.gettext("Publish") == "发布"
    assert translations.gettext("Not translated") == "Not translated"


def test_a_later_file_wins_a_clash_and_untranslated_entries_fall_back_to_english(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "zh_Hans" / "LC_MESSAGES"
    write_po(folder, "a.po", {"Save": "保存", "Empty": ""})
    write_po(folder, "b.po", {"Save": "存"})

    translations = load_translations("zh_Hans", tmp_path)

    assert translations.gettext("Save") == "存"
    assert translations.gettext("Empty") == "Empty"


def test_a_locale_without_catalogues_shows_the_english_source(tmp_path: Path) -> None:
    assert load_translations("en", tmp_path).gettext("Deals") == "Deals"


def test_the_shipped_chinese_catalogue_translates_the_pages() -> None:
    assert gettext("zh_Hans", "My orders") == "我的订单"
    assert ngettext("zh_Hans", "%(num)d seat left", "%(num)d seats left", 2) == "还差 %(num)d 人"
    assert gettext("en", "My orders") == "My orders"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("en-US,en;q=0.9", "en"),
        ("zh", "zh_Hans"),
        ("zh-TW", "zh_Hans"),
        ("zh-Hans-CN", "zh_Hans"),
        ("fr-FR,en;q=0.5", "en"),
        ("en;q=0.4,zh-CN;q=0.8", "zh_Hans"),
        ("fr-FR,de;q=0.9", None),
        ("", None),
        ("*", None),
        ("zh-CN;q=0", None),
        ("en;q=abc,zh-CN;q=0.2", "zh_Hans"),
    ],
)
def test_accept_language_picks_the_best_supported_locale(header: str, expected: str | None) -> None:
    assert negotiate_locale(header) == expected


def test_account_tags_and_locale_ids_convert_both_ways() -> None:
    assert locale_of_tag("zh-Hans") == "zh_Hans"
    assert locale_of_tag("zh_Hans") == "zh_Hans"
    assert locale_of_tag("fr") is None
    assert locale_of_tag(None) is None
    assert [tag_of_locale(locale) for locale in LOCALES] == ["en", "zh-Hans"]


def test_money_is_written_the_way_the_viewers_locale_writes_it() -> None:
    assert money_text(9900, "CNY", "zh_Hans") == "¥99.00"
    assert money_text(9900, "CNY", "en") == "CN¥99.00"
    assert money_text(1999, "USD", "en") == "$19.99"
    assert money_text(1999, "USD", "zh_Hans") == "US$19.99"
    assert money_text(1500, "JPY", "en") == "¥1,500"


def test_an_instant_is_shown_on_the_viewers_wall_clock() -> None:
    moment = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)

    assert "00:30" in instant_text(moment, "Asia/Shanghai", "zh_Hans")
    assert "2026年11月26日" in instant_text(moment, "Asia/Shanghai", "zh_Hans")
    assert "4:30" in instant_text(moment, "UTC", "en")


def test_a_business_day_is_the_calendar_day_in_the_merchants_zone() -> None:
    late_evening_in_new_york = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    assert day_text(late_evening_in_new_york, "America/New_York", "en") == "Nov 25, 2026"
    assert day_text(late_evening_in_new_york, "Asia/Shanghai", "en") == "Nov 26, 2026"
    assert day_text(date(2026, 1, 2), "UTC", "zh_Hans") == "2026年1月2日"


def test_every_string_of_the_account_and_shopper_pages_has_a_chinese_translation() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = Path(__file__).resolve().parents[2]
    with (root / "babel.cfg").open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    sources = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(root / "src" / "pintuan" / "web"), method_map, options_map
        )
    }
    catalogue = load_translations("zh_Hans")

    untranslated = sorted(s for s in sources if catalogue.gettext(s) == s)

    assert len(sources) > 100
    assert untranslated == []
