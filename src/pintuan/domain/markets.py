"""A viewer's market, guessed, never asked for: a CDN's country header, else the country of
their time zone (their account's, or the browser's), else the region of their language; and the
currency that country pays in. The home page's list and the feed read the same guess."""

from __future__ import annotations

from collections.abc import Mapping

from babel.core import get_global
from babel.numbers import get_territory_currencies

from pintuan.domain.traffic import COUNTRY_HEADERS, country_of


def guess_country(headers: Mapping[str, str], time_zone: str | None) -> str | None:
    """Where the viewer probably is, as an ISO 3166 code, or None when nothing says."""
    # Read once: a request's ``Headers.get`` scans every header for each name asked, and this
    # asks up to seven (names are lower case in ASGI).
    headers = dict(headers.items())
    for name in COUNTRY_HEADERS:
        if headers.get(name):
            found = country_of(headers)
            return found if found != "ZZ" else None
    from_zone = get_global("zone_territories").get(time_zone) if time_zone else None
    if isinstance(from_zone, str) and len(from_zone) == 2:
        return from_zone
    found = country_of(headers)
    return found if found != "ZZ" else None


def currency_of_country(country: str) -> str | None:
    """The currency a country pays in today (Babel's CLDR data), or None."""
    currencies = get_territory_currencies(country, tender=True)
    return currencies[0] if currencies else None
