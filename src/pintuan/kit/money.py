"""Money as integer minor units plus an ISO 4217 code.

Never a float: amounts are ``int`` counts of the currency's minor unit (cents, fen, sen…), whose
size comes from ISO 4217 (JPY has none, USD two, BHD three).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency

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
        """The amount as a shopper in ``locale`` reads it, e.g. ``$19.99`` or ``¥1,999``."""
        # Accounts store BCP 47 tags ("zh-Hans"); Babel wants "zh_Hans".
        return str(
            format_currency(self.to_decimal(), self.currency, locale=locale.replace("-", "_"))
        )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")


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
