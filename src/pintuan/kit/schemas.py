"""Request and response building blocks shared by every feature's schemas."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)

from pintuan.kit.money import Money, is_currency, max_amount
from pintuan.kit.time import is_time_zone


def _iso_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code such as USD, CNY or JPY")
    return code


def _iana_zone(name: str) -> str:
    if not is_time_zone(name):
        raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Shanghai")
    return name


CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_iso_currency)]
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_iana_zone)]
UtcInstant = Annotated[AwareDatetime, AfterValidator(lambda v: v.astimezone(UTC))]


class StrictModel(BaseModel):
    """Requests refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MoneyIn(StrictModel):
    amount: StrictInt = Field(description="Integer count of the currency's minor units")
    currency: CurrencyCode

    def to_money(self) -> Money:
        return Money(self.amount, self.currency)


class AmountIn(MoneyIn):
    """Money to move (a payout, a top-up): at least one minor unit, at most what Pintuan
    accepts in the currency; anything else is refused before it reaches the ledger."""

    @model_validator(mode="after")
    def _moves_something(self) -> AmountIn:
        most = max_amount(self.currency)
        if not 0 < self.amount <= most:
            raise ValueError(f"must be 1 to {most} minor units of {self.currency}")
        return self


class MoneyOut(BaseModel):
    amount: int
    currency: str

    @classmethod
    def of(cls, amount: int, currency: str) -> MoneyOut:
        return cls(amount=amount, currency=currency)


class ReasonIn(StrictModel):
    """Why an operator or merchant changes what sells: kept in the audit log with who and when."""

    reason: Annotated[str, Field(max_length=500)] | None = None
