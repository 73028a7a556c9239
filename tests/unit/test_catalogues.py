"""Every word a person reads has its Simplified Chinese text: the strings of every page and
console, and the words for every error code the services can raise.

Other work adds strings and codes all the time; when one lacks its translation these tests say
exactly which, and where it comes from, so it can be added at the end of a catalogue.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from pintuan.shares.wording import WORDS
from pintuan.web.kit.errors import ERROR_MESSAGES
from pintuan.web.kit.i18n import load_translations

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "pintuan"
WEB = PACKAGE / "web"
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
# Everything under web/: shopper pages, consoles, growth reports, error pages.
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS_MAP = {"templates/**.html": JINJA}


Message = str | tuple[str, str]  # a string, or a singular and plural pair


def page_strings() -> dict[Message, str]:
    """Each translatable string of the pages and consoles, with where it is first used."""
    found: dict[Message, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(WEB), METHOD_MAP, OPTIONS_MAP
    ):
        key: Message = message if isinstance(message, str) else (message[0], message[1])
        if key:
            found.setdefault(key, f"{filename}:{lineno}")
    return found


def raised_error_codes() -> dict[str, str]:
    """Each error ``code`` written in the source, with where: ``code="…"`` passed to a call
    and ``code = "…"`` in an error class."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "code"]
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    targets = (
                        item.targets
                        if isinstance(item, ast.Assign)
                        else [item.target]
                        if isinstance(item, ast.AnnAssign) and item.value is not None
                        else []
                    )
                    if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                        assert isinstance(item, ast.Assign | ast.AnnAssign)
                        assert item.value is not None
                        values.append(item.value)
            for value in values:
                if (
                    isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and re.fullmatch(r"[a-z][a-z0-9_]*", value.value)
                ):
                    found.setdefault(value.value, f"{where}:{value.lineno}")
    return found


def untranslated(messages: dict[Message, str]) -> list[str]:
    """``where: msgid …`` of each message the Chinese catalogue leaves in English, in order."""
    catalogue = load_translations("zh_Hans")

    def missing(text: Message) -> bool:
        if isinstance(text, str):
            return catalogue.gettext(text) == text
        return catalogue.ngettext(text[0], text[1], 1) == text[0]

    def place(item: tuple[Message, str]) -> tuple[str, int]:
        name, _, line = item[1].rpartition(":")
        return (name, int(line)) if line.isdigit() else (item[1], 0)

    return [
        f"{where}: msgid {text!r}"
        if isinstance(text, str)
        else f"{where}: msgid {text[0]!r} msgid_plural {text[1]!r}"
        for text, where in sorted(messages.items(), key=place)
        if missing(text)
    ]


def test_the_source_scan_finds_the_codes_and_strings_it_must() -> None:
    codes = raised_error_codes()
    strings = page_strings()

    assert {"team_full", "sold_out", "pay_link_expired", "validation_error"} <= set(codes)
    assert len(codes) > 60
    assert "My orders" in strings  # a shopper page
    assert "Deals to moderate" in strings  # the operator console
    assert len(strings) > 500


def test_every_error_code_has_words_for_people() -> None:
    codes = raised_error_codes()

    missing = [
        f"{where}: {code}" for code, where in sorted(codes.items()) if code not in ERROR_MESSAGES
    ]

    assert missing == [], (
        "Error codes with no entry in ERROR_MESSAGES (src/pintuan/web/kit/errors.py):\n"
        + "\n".join(missing)
    )


def test_every_error_codes_words_have_a_chinese_translation() -> None:
    missing = untranslated(
        {text: f"ERROR_MESSAGES[{code!r}]" for code, text in ERROR_MESSAGES.items()}
    )

    assert missing == [], (
        "Error messages with no Simplified Chinese text (append to a .po file in "
        "src/pintuan/web/locales/zh_Hans/LC_MESSAGES/):\n" + "\n".join(missing)
    )


def test_every_page_and_console_string_has_a_chinese_translation() -> None:
    missing = untranslated(page_strings())

    assert missing == [], (
        "Strings with no Simplified Chinese text (append to a .po file in "
        "src/pintuan/web/locales/zh_Hans/LC_MESSAGES/):\n" + "\n".join(missing)
    )


def test_share_texts_and_posters_have_every_word_in_every_language() -> None:
    keys = {locale: set(words) for locale, words in WORDS.items()}

    missing = [
        f"WORDS[{locale!r}] lacks {key!r}"
        for locale in keys
        for key in sorted(set().union(*keys.values()) - keys[locale])
    ]

    assert missing == []
