"""The form that describes a merchant: an operator registering one, or anyone applying to sell.

It runs the merchants API's own request schema (``MerchantIn``) and ties each refusal to its
field, in the viewer's language, so every problem shows at once next to its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from babel import Locale
from pydantic import ValidationError

from pintuan.merchants.schemas import MerchantIn
from pintuan.web.kit.i18n import N_, gettext

FIELDS = ("name", "slug", "country", "currency", "time_zone")
MAX_PITCH = 2000
MESSAGES: dict[str, str] = {
    "name": N_("Enter a name of 1 to 120 characters."),
    "slug": N_("Use lower-case letters, digits and dashes, like golden-noodles."),
    "country": N_("Choose the country."),
    "currency": N_("Enter a currency code such as IDR, CNY or EUR."),
    "time_zone": N_("Enter a time zone such as Asia/Jakarta."),
    "pitch": N_("Say in up to 2,000 characters what you sell."),
}


@dataclass
class MerchantForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def parse_merchant(
    fields: dict[str, str], locale: str, *, with_pitch: bool = False
) -> tuple[MerchantForm, MerchantIn | None]:
    """The typed merchant, or the form with a message for each field that is wrong."""
    names = (*FIELDS, "pitch") if with_pitch else FIELDS
    form = MerchantForm({name: fields.get(name, "").strip() for name in names})
    values: dict[str, Any] = {name: form.values[name] for name in FIELDS}
    values["slug"] = values["slug"].lower()
    values["currency"] = values["currency"].upper()
    values["country"] = values["country"].upper()
    body: MerchantIn | None = None
    try:
        body = MerchantIn(**values)
    except ValidationError as invalid:
        for problem in invalid.errors():
            name = str(problem["loc"][0]) if problem["loc"] else ""
            if name in MESSAGES:
                form.errors.setdefault(name, gettext(locale, MESSAGES[name]))
    if with_pitch and not 1 <= len(form.values["pitch"]) <= MAX_PITCH:
        form.errors["pitch"] = gettext(locale, MESSAGES["pitch"])
    return form, (body if not form.errors else None)


def countries(locale: str) -> list[tuple[str, str]]:
    """(ISO code, name in the viewer's language) of every country, by name."""
    names = Locale.parse(locale).territories
    codes = [c for c in names if isinstance(c, str) and len(c) == 2 and c.isalpha()]
    return sorted(
        ((c, str(names[c])) for c in codes if c not in {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}),
        key=lambda pair: pair[1],
    )
