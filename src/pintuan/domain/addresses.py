"""Delivery addresses: which fields each country's postal format has, which it requires, and what
its postcodes look like.

One rule module for the address book's API and pages alike. :func:`check_address` takes what a
shopper typed and answers either a clean :class:`Address` (trimmed, postcode in its country's
canonical form) or every problem at once, one :class:`FieldProblem` per field, so a form shows
all its errors in one go rather than one per submit.

The countries are the ones Pintuan's merchants sell in; a country outside :data:`FORMATS` is
refused with the list of those it knows. Fields a country's format does not use are dropped
(a Singapore address has no city line: the city is the country), so a stored address never
carries a stale field from another country.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Every field an address may have, in the order a form shows them.
FIELDS = (
    "recipient",
    "phone",
    "country",
    "postcode",
    "region",
    "city",
    "district",
    "line1",
    "line2",
)
MAX_LENGTHS = {
    "recipient": 80,
    "phone": 32,
    "country": 2,
    "postcode": 16,
    "region": 80,
    "city": 80,
    "district": 80,
    "line1": 200,
    "line2": 200,
}
# A phone number as people write it: digits with an optional +, spaces, dashes, dots, brackets.
_PHONE = re.compile(r"\+?[0-9][0-9 ().\-]*")
_PHONE_DIGITS = (6, 15)  # E.164 allows 15 digits; nothing real has fewer than 6


@dataclass(frozen=True, slots=True)
class CountryFormat:
    """One country's postal format: which fields it uses and requires, and its postcodes.

    ``postcode`` is matched against the whole postcode after trimming and upper-casing;
    ``canonical`` rewrites a matching postcode into the form the post office prints.
    ``regions``, when given, is the closed list a ``region`` must come from.
    """

    code: str
    required: frozenset[str]
    optional: frozenset[str]
    postcode: re.Pattern[str] | None = None
    postcode_example: str = ""
    regions: frozenset[str] = field(default_factory=frozenset)

    @property
    def fields(self) -> tuple[str, ...]:
        used = self.required | self.optional
        return tuple(name for name in FIELDS if name in used)

    def canonical(self, postcode: str) -> str:
        compact = re.sub(r"[\s-]", "", postcode.upper())
        if self.code == "GB":
            return f"{compact[:-3]} {compact[-3:]}"
        if self.code == "JP":
            return f"{compact[:3]}-{compact[3:]}"
        if self.code == "US" and len(compact) == 9:
            return f"{compact[:5]}-{compact[5:]}"
        return compact


_ALWAYS = frozenset({"recipient", "phone", "country", "line1"})

_STATES = """
    AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH
    NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI AA AE AP
"""
US_STATES = frozenset(_STATES.split())

FORMATS: dict[str, CountryFormat] = {
    # Province, city and district are all on a Chinese parcel; the postcode is seldom used.
    "CN": CountryFormat(
        "CN",
        required=_ALWAYS | {"region", "city", "district"},
        optional=frozenset({"postcode", "line2"}),
        postcode=re.compile(r"[0-9]{6}"),
        postcode_example="200040",
    ),
    "US": CountryFormat(
        "US",
        required=_ALWAYS | {"city", "region", "postcode"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"[0-9]{5}(?:-?[0-9]{4})?"),
        postcode_example="94103",
        regions=US_STATES,
    ),
    # The post town is required; counties are no longer part of a British address.
    "GB": CountryFormat(
        "GB",
        required=_ALWAYS | {"city", "postcode"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"(?:GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})"),
        postcode_example="SW1A 1AA",
    ),
    "DE": CountryFormat(
        "DE",
        required=_ALWAYS | {"city", "postcode"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"[0-9]{5}"),
        postcode_example="10115",
    ),
    "FR": CountryFormat(
        "FR",
        required=_ALWAYS | {"city", "postcode"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"[0-9]{5}"),
        postcode_example="75001",
    ),
    # Province and city (kota or kabupaten) are required; the kecamatan helps the courier.
    "ID": CountryFormat(
        "ID",
        required=_ALWAYS | {"region", "city", "postcode"},
        optional=frozenset({"district", "line2"}),
        postcode=re.compile(r"[0-9]{5}"),
        postcode_example="10110",
    ),
    # Prefecture, then city or ward; the postcode is written 123-4567.
    "JP": CountryFormat(
        "JP",
        required=_ALWAYS | {"postcode", "region", "city"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"[0-9]{3}-?[0-9]{4}"),
        postcode_example="100-0001",
    ),
    # A city state: no city or region line, and a six-digit postcode names the building.
    "SG": CountryFormat(
        "SG",
        required=_ALWAYS | {"postcode"},
        optional=frozenset({"line2"}),
        postcode=re.compile(r"[0-9]{6}"),
        postcode_example="018956",
    ),
}
COUNTRIES = tuple(sorted(FORMATS))


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """What is wrong with one field: ``reason`` is a stable word (``required``, ``too_long``,
    ``postcode_format``, ``phone_format``, ``unknown_region``, ``unknown_country``,
    ``invalid_characters``)."""

    field: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Address:
    """A checked address: only the fields of its country's format, trimmed and canonical."""

    country: str
    recipient: str
    phone: str
    line1: str
    line2: str = ""
    city: str = ""
    region: str = ""
    district: str = ""
    postcode: str = ""

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELDS}

    def lines(self) -> list[str]:
        """The address as the courier writes it, one line each, in the country's order."""
        return address_lines(self.as_dict())


class AddressInvalid(ValueError):
    """The typed address breaks its country's format; ``problems`` names every field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def check_address(typed: Mapping[str, object]) -> Address:
    """Check a typed address against its country's format; every problem is reported at once
    (:class:`AddressInvalid`). Unknown keys are ignored; fields the country does not use are
    dropped."""
    values = {name: _text(typed.get(name)) for name in FIELDS}
    country = values["country"].upper()
    problems: list[FieldProblem] = []
    form = FORMATS.get(country)
    if form is None:
        message = (
            "Choose the country."
            if not country
            else f"Addresses in {country!r} are not delivered to; choose one of "
            f"{', '.join(COUNTRIES)}."
        )
        problems.append(FieldProblem("country", "unknown_country", message))
        used: tuple[str, ...] = ("recipient", "phone", "line1")
        required: frozenset[str] = frozenset(used)
    else:
        used, required = form.fields, form.required
    for name in used:
        if name == "country":
            continue
        value = values[name]
        if not value:
            if name in required:
                problems.append(FieldProblem(name, "required", f"Enter the {_WORDS[name]}."))
            continue
        if not value.isprintable():
            problems.append(
                FieldProblem(name, "invalid_characters", "Remove the control characters.")
            )
        elif len(value) > MAX_LENGTHS[name]:
            problems.append(
                FieldProblem(
                    name, "too_long", f"Keep the {_WORDS[name]} to {MAX_LENGTHS[name]} characters."
                )
            )
    phone = values["phone"]
    if (
        phone
        and len(phone) <= MAX_LENGTHS["phone"]
        and phone.isprintable()
        and not _phone_ok(phone)
    ):
        problems.append(
            FieldProblem(
                "phone",
                "phone_format",
                "Enter a phone number of 6 to 15 digits, e.g. +1 415 555 0100.",
            )
        )
    if form is not None:
        postcode = values["postcode"].upper()
        if (
            postcode
            and "postcode" in used
            and form.postcode is not None
            and len(postcode) <= MAX_LENGTHS["postcode"]
            and postcode.isprintable()
            and not form.postcode.fullmatch(postcode)
        ):
            problems.append(
                FieldProblem(
                    "postcode",
                    "postcode_format",
                    f"This is not a postcode of {country}; it looks like {form.postcode_example}.",
                )
            )
        region = values["region"].upper() if form.regions else values["region"]
        if form.regions and region and region not in form.regions:
            problems.append(
                FieldProblem(
                    "region",
                    "unknown_region",
                    f"Enter the two-letter code of the {_WORDS['region']}, e.g. CA.",
                )
            )
    if problems:
        raise AddressInvalid(problems)
    assert form is not None
    kept = {name: values[name] for name in form.fields if name != "country"}
    if kept.get("postcode"):
        kept["postcode"] = form.canonical(kept["postcode"])
    if form.regions and kept.get("region"):
        kept["region"] = kept["region"].upper()
    return Address(country=country, **kept)


def address_lines(address: Mapping[str, str]) -> list[str]:
    """An address (as stored) in the order its country writes it, without empty lines.

    Chinese and Japanese addresses run from the largest place to the street; the others from
    the street to the town, with the postcode where that country's post puts it.
    """
    a = {name: (address.get(name) or "") for name in FIELDS}
    country = a["country"]
    if country in ("CN", "JP"):
        place = " ".join(p for p in (a["region"], a["city"], a["district"]) if p)
        lines = [a["postcode"], place, a["line1"], a["line2"]]
    elif country in ("DE", "FR"):
        lines = [a["line1"], a["line2"], f"{a['postcode']} {a['city']}".strip()]
    elif country == "US":
        lines = [a["line1"], a["line2"], f"{a['city']}, {a['region']} {a['postcode']}".strip(", ")]
    elif country == "SG":
        lines = [a["line1"], a["line2"], f"Singapore {a['postcode']}".strip()]
    elif country == "ID":
        place = ", ".join(p for p in (a["district"], a["city"]) if p)
        lines = [a["line1"], a["line2"], place, f"{a['region']} {a['postcode']}".strip()]
    else:
        lines = [a["line1"], a["line2"], a["city"], a["region"], a["postcode"]]
    return [line for line in lines if line] + ([country] if country else [])


def _text(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _phone_ok(phone: str) -> bool:
    digits = sum(ch.isdigit() for ch in phone)
    return bool(_PHONE.fullmatch(phone)) and _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]


_WORDS = {
    "recipient": "recipient's name",
    "phone": "phone number",
    "country": "country",
    "postcode": "postcode",
    "region": "state, province or prefecture",
    "city": "city",
    "district": "district",
    "line1": "street address",
    "line2": "second address line",
}
