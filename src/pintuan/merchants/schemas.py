"""Request and response bodies of the merchants API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from babel import Locale
from pydantic import AfterValidator, BaseModel, EmailStr, Field

from pintuan.kit.schemas import CurrencyCode, StrictModel, TimeZoneName
from pintuan.merchants.models import Merchant

# CLDR's two-letter territories, less its groupings and placeholders that are not countries.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
_TERRITORIES = frozenset(
    code
    for code in Locale("en").territories
    if isinstance(code, str) and code.isalpha() and code not in _NOT_COUNTRIES
)


def _country(code: str) -> str:
    if code not in _TERRITORIES:
        raise ValueError(f"{code!r} is not an ISO 3166 country code such as CN, ID or DE")
    return code


CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]


class MerchantIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    slug: Slug
    country: CountryCode
    currency: CurrencyCode
    time_zone: TimeZoneName
    commission_bps: Annotated[int, Field(ge=0, le=10000)] = 0


class StaffIn(StrictModel):
    email: EmailStr


class MerchantOut(BaseModel):
    id: str
    name: str
    slug: str
    country: str
    currency: str
    time_zone: str
    status: str
    commission_bps: int
    created_at: datetime

    @classmethod
    def of(cls, merchant: Merchant) -> MerchantOut:
        return cls(
            id=merchant.id,
            name=merchant.name,
            slug=merchant.slug,
            country=merchant.country,
            currency=merchant.currency,
            time_zone=merchant.time_zone,
            status=merchant.status,
            commission_bps=merchant.commission_bps,
            created_at=merchant.created_at,
        )


class StaffOut(BaseModel):
    user_id: str
    display_name: str
    email: str


class StaffList(BaseModel):
    data: list[StaffOut]
