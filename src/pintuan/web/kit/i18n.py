"""Languages and places for pages: gettext catalogues, negotiation, money and time for a viewer.

Source strings are English. Each other locale has a folder ``locales/<locale>/LC_MESSAGES/`` and
every ``.po`` file in it is read at start-up and merged (features add their own file, e.g.
``console.po``), so the catalogues are text in git and need no compile step. ``make messages``
re-extracts the strings for maintainers.

Locale ids are Babel's (``en``, ``zh_Hans``); accounts store the BCP 47 tag (``zh-Hans``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from pintuan.domain.roles import Principal
from pintuan.kit.money import Money
from pintuan.kit.time import ensure_utc, is_time_zone, wall_clock_text, zone

LOCALES_DIR = Path(__file__).parents[1] / "locales"
LOCALES = ("en", "zh_Hans")
DEFAULT_LOCALE = "en"
DEFAULT_TIME_ZONE = "UTC"
# Each language named in itself, for the switcher.
LOCALE_NAMES = {"en": "English", "zh_Hans": "简体中文"}
LANG_COOKIE = "lang"
TZ_COOKIE = "tz"


def N_(message: str) -> str:  # noqa: N802 - the conventional marker name extractors know
    """Mark ``message`` for extraction; it is translated later, where the viewer is known."""
    return message


# ---------------------------------------------------------------------------- catalogues


def load_translations(locale: str, directory: Path = LOCALES_DIR) -> NullTranslations:
    """Every ``.po`` file of ``locale`` merged in name order (a later file wins a clash)."""
    merged: NullTranslations | None = None
    folder = directory / locale / "LC_MESSAGES"
    for po_file in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po_file.open("rb") as source:
            catalog = read_po(source, locale=locale)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        translations = Translations(compiled, domain=po_file.stem)
        if merged is None:
            merged = translations
        else:
            assert isinstance(merged, Translations)
            merged.merge(translations)
    return merged if merged is not None else NullTranslations()


@lru_cache(maxsize=len(LOCALES))
def translations_for(locale: str) -> NullTranslations:
    """The merged catalogue of a supported locale, read once per process."""
    return load_translations(locale if locale in LOCALES else DEFAULT_LOCALE)


def gettext(locale: str, message: str) -> str:
    """``message`` in ``locale`` (for text made outside templates)."""
    return translations_for(locale).gettext(message)


def ngettext(locale: str, singular: str, plural: str, n: int) -> str:
    return translations_for(locale).ngettext(singular, plural, n)


# ---------------------------------------------------------------------------- negotiation


def locale_of_tag(tag: str | None) -> str | None:
    """The supported locale id for a stored or sent tag (``zh-Hans``, ``zh_Hans``, ``en``)."""
    if not tag:
        return None
    normal = tag.replace("-", "_")
    return normal if normal in LOCALES else None


def tag_of_locale(locale: str) -> str:
    """The BCP 47 tag of a locale id, for ``<html lang>`` and for storing on an account."""
    return locale.replace("_", "-")


def _preferences(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, most wanted first."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_locale(accept_language: str | None) -> str | None:
    """The best supported locale for an ``Accept-Language`` header, or None.

    Babel matches tags and their aliases; a Chinese tag it cannot match (``zh``, ``zh-TW``,
    ``zh-Hans-CN``) still gets Simplified Chinese, which its reader prefers to English.
    """
    if not accept_language:
        return None
    for tag in _preferences(accept_language)[:20]:
        found = Locale.negotiate([tag], LOCALES, sep="-")
        if found is not None:
            return str(found)
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            language = tag.split("-", 1)[0].lower()
        if language == "zh":
            return "zh_Hans"
        if language == "en":
            return "en"
    return None


def request_locale(request: Request, principal: Principal | None) -> str:
    """The viewer's locale: their account's, else the switcher's cookie, else the browser's."""
    chosen = (
        (locale_of_tag(principal.locale) if principal else None)
        or locale_of_tag(request.cookies.get(LANG_COOKIE))
        or negotiate_locale(request.headers.get("accept-language"))
    )
    return chosen or DEFAULT_LOCALE


def viewer_time_zone(request: Request, principal: Principal | None) -> str:
    """The viewer's zone: their account's, else the browser's (``tz`` cookie), else UTC."""
    # Browsers' scripts may have written the cookie URL-encoded (``Asia%2FJakarta``).
    cookie = unquote(request.cookies.get(TZ_COOKIE) or "")
    for name in (principal.time_zone if principal else None, cookie):
        if name and is_time_zone(name):
            return name
    return DEFAULT_TIME_ZONE


# ---------------------------------------------------------------------------- formatting


@lru_cache(maxsize=8192)
def money_text(amount: int, currency: str, locale: str) -> str:
    """Minor units as a reader of ``locale`` writes them: ``$19.99``, ``¥99.00``, ``US$5.00``.
    Kept per amount: CLDR's formatting is the dearest part of rendering a deal's prices."""
    return Money(amount, currency).format(locale)


def instant_text(value: datetime, time_zone: str, locale: str, style: str = "medium") -> str:
    """An instant as wall-clock time in ``time_zone``. The ``short`` style keeps the month a
    word (CLDR's short date is numeric, and ``11/25/26`` reads differently in each country)."""
    if style == "short":
        return wall_clock_text(value, time_zone, locale)
    return str(format_datetime(ensure_utc(value), style, tzinfo=zone(time_zone), locale=locale))


def day_text(value: date | datetime, time_zone: str, locale: str, style: str = "medium") -> str:
    """A business day: the calendar day of ``value`` in ``time_zone`` (a merchant's zone)."""
    day = (
        ensure_utc(value).astimezone(zone(time_zone)).date()
        if isinstance(value, datetime)
        else value
    )
    return str(format_date(day, style, locale=locale))


def relative_text(until: datetime, now: datetime, locale: str) -> str:
    """How far away ``until`` is, in words: ``in 3 hours``, ``3小时后``, ``2 minutes ago``."""
    delta: timedelta = ensure_utc(until) - ensure_utc(now)
    return str(format_timedelta(delta, add_direction=True, threshold=1.0, locale=locale))


def duration_text(until: datetime, now: datetime, locale: str) -> str:
    """How long until ``until``, without a direction, for sentences that already say it
    ("Deal ends in" + ``2 months``, "活动剩余" + ``2个月``); nothing left reads as zero."""
    delta = max(ensure_utc(until) - ensure_utc(now), timedelta(0))
    return str(format_timedelta(delta, threshold=1.0, locale=_babel_locale(locale)))


@lru_cache(maxsize=64)
def _babel_locale(locale: str) -> Locale:
    # Parsed once: Babel's parse scans every locale it knows, dearer than the formatting.
    return Locale.parse(locale)


# ---------------------------------------------------------------------------- Jinja helpers
# Templates get the viewer's locale and zone from their context (see rendering.render).


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations_for(context["locale"]).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations_for(context["locale"]).ngettext(singular, plural, n)


@pass_context
def format_money(context: Context, amount: int, currency: str) -> str:
    return money_text(amount, currency, context["locale"])


@pass_context
def format_instant(context: Context, value: datetime | None, style: str = "medium") -> str:
    if value is None:
        return ""
    return instant_text(value, context["time_zone"], context["locale"], style)


@pass_context
def format_day(
    context: Context, value: date | datetime | None, time_zone: str, style: str = "medium"
) -> str:
    if value is None:
        return ""
    return day_text(value, time_zone, context["locale"], style)


@pass_context
def format_relative(context: Context, until: datetime, now: datetime) -> str:
    return relative_text(until, now, context["locale"])


@pass_context
def format_duration(context: Context, until: datetime, now: datetime) -> str:
    return duration_text(until, now, context["locale"])


def install_jinja_helpers(environment: Environment) -> None:
    """``_``/``gettext``/``ngettext`` (new style: ``_("Hi %(name)s", name=n)``) and the
    ``format_*`` functions, all reading ``locale`` and ``time_zone`` from the template context."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    helpers: dict[str, Any] = {
        "format_money": format_money,
        "format_instant": format_instant,
        "format_day": format_day,
        "format_relative": format_relative,
        "format_duration": format_duration,
    }
    environment.globals.update(helpers)


def supported_locales() -> Iterable[tuple[str, str]]:
    """(locale id, its name in itself) of every supported locale."""
    return [(locale, LOCALE_NAMES[locale]) for locale in LOCALES]
