"""Money as integer minor units plus an ISO 4217 code.

Never a float: amounts are ``int`` counts of the currency's minor unit (cents, fen, sen…), whose
size comes from ISO 4217 (JPY has none, USD two, BHD three).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import format_currency, parse_pattern

# Active ISO 4217 codes. Their minor-unit exponent is 2 unless listed in _EXPONENTS.
ISO_4217_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV
    BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK
    DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL
    HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP
    TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG
    XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 - a table reads better as text
)

_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(),  # noqa: SIM905
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}

# The largest price we accept, in major units; times 10**exponent it stays far inside int64.
MAX_MAJOR_UNITS = 1_000_000_000


class MoneyError(ValueError):
    """An amount or currency that is not valid money."""


def is_currency(code: str) -> bool:
    return code in ISO_4217_CODES


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (ISO 4217 minor unit)."""
    if currency not in ISO_4217_CODES:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code")
    return _EXPONENTS.get(currency, 2)


def max_amount(currency: str) -> int:
    """The largest amount in minor units that Pintuan accepts for a price in ``currency``."""
    return int(MAX_MAJOR_UNITS * 10 ** exponent(currency))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer number of minor units")
        exponent(self.currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def format(self, locale: str = "en") -> str:
        """The amount as a reader of ``locale`` writes it: ``$19.99``, ``¥99.00``, ``Rp59.000``.

        CLDR decides it. A currency is written the way its own country writes it when the
        reader's language has a locale there (rupiah for an English reader: ``en_ID``), with the
        symbol people there use (``Rp``, not ``IDR``) and without the fraction that nobody pays
        in cash (rupiah have sen on paper only) when the amount has none."""
        # Accounts store BCP 47 tags ("zh-Hans"); Babel wants "zh_Hans".
        viewer = locale.replace("-", "_")
        home = _home_locale(viewer, self.currency)
        value = self.to_decimal()
        cash = _cash_digits(self.currency)
        if cash < exponent(self.currency) and value == round(value, cash):
            pattern = parse_pattern(_locale(home).currency_formats["standard"])
            pattern.frac_prec = (cash, cash)
            text = pattern.apply(
                value, _locale(home), currency=self.currency, currency_digits=False
            )
        else:
            text = format_currency(value, self.currency, locale=_locale(home))
        symbol = _local_symbol(self.currency)
        if symbol is not None and self.currency in text:
            text = text.replace(self.currency, symbol, 1)
        return str(text)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")


@lru_cache(maxsize=256)
def _locale(name: str) -> Locale:
    """Babel's locale by name, parsed once: parsing scans every locale Babel knows, which cost
    most of formatting a price."""
    return Locale.parse(name)


@lru_cache(maxsize=1024)
def _home_locale(viewer: str, currency: str) -> str:
    """The reader's language in the currency's country when CLDR has that locale (ISO 4217
    codes start with the country's code: ``IDR`` is Indonesia's), else the reader's locale."""
    language = Locale.parse(viewer)
    for candidate in (
        f"{language.language}_{language.script}_{currency[:2]}" if language.script else None,
        f"{language.language}_{currency[:2]}",
    ):
        if candidate is None:
            continue
        try:
            found = Locale.parse(candidate)
        except (ValueError, UnknownLocaleError):
            continue
        if found.territory == currency[:2] and found.script == language.script:
            return str(found)
    return viewer


def _cash_digits(currency: str) -> int:
    """Digits people use in cash (CLDR), never more than the ISO minor unit."""
    fractions = get_global("currency_fractions")
    digits = fractions.get(currency, fractions["DEFAULT"])
    return min(int(digits[2]), exponent(currency))


@lru_cache(maxsize=512)
def _local_symbol(currency: str) -> str | None:
    """The symbol the currency's own country writes (``Rp``), for readers whose locale only
    knows the ISO code; None when that country's locale knows no other."""
    try:
        home = Locale.parse(f"und_{currency[:2]}")
    except (ValueError, UnknownLocaleError):
        return None
    symbol = home.currency_symbols.get(currency)
    # Only a symbol any reader can read: Latin letters or a currency sign (not د.ب.).
    readable = symbol is not None and all(
        ("A" <= c.upper() <= "Z") or unicodedata.category(c) == "Sc" for c in symbol
    )
    return symbol if readable and symbol != currency else None


def split(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights`` by the largest-remainder method.

    The parts always sum to ``total``. Ties in the remainders go to the earlier weight, so the
    result is deterministic. Weights are non-negative and not all zero.
    """
    if not weights:
        raise MoneyError("cannot split among no parts")
    if any(w < 0 for w in weights):
        raise MoneyError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise MoneyError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    quotients = [divmod(magnitude * w, weight_sum) for w in weights]
    parts = [q for q, _ in quotients]
    short = magnitude - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-quotients[i][1], i))
    for i in by_remainder[:short]:
        parts[i] += 1
    return [sign * p for p in parts]


def split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` amounts that differ by at most one minor unit."""
    if parts < 1:
        raise MoneyError("parts must be at least 1")
    return split(total, [1] * parts)
