"""Request and response bodies of the bargains API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.bargains.service import BargainView, CutView, HelperCut, TermsView
from pintuan.domain.bargains import (
    MAX_HELPERS,
    MAX_HOURS,
    MIN_HELPERS,
    MIN_HOURS,
    BargainStatus,
    BargainTerms,
)
from pintuan.kit.schemas import MoneyIn, MoneyOut, StrictModel


class BargainTermsIn(StrictModel):
    """A deal's bargain terms: the lowest price friends can cut it to, how many cuts it takes
    to get there, and how long each bargain stays open."""

    floor_price: MoneyIn = Field(
        description="In the deal's currency; below its list price by at least one minor unit "
        "per helper"
    )
    helpers: int = Field(ge=MIN_HELPERS, le=MAX_HELPERS, description="Cuts to reach the floor")
    hours: int = Field(ge=MIN_HOURS, le=MAX_HOURS, description="How long a bargain stays open")

    def to_terms(self) -> BargainTerms:
        return BargainTerms(self.floor_price.amount, self.helpers, self.hours)


class BargainTermsOut(BaseModel):
    deal_id: str
    floor_price: MoneyOut
    helpers: int
    hours: int
    updated_at: datetime

    @classmethod
    def of(cls, t: TermsView) -> BargainTermsOut:
        return cls(
            deal_id=t.deal_id,
            floor_price=MoneyOut.of(t.floor_amount, t.currency),
            helpers=t.helpers,
            hours=t.hours,
            updated_at=t.updated_at,
        )


class HelperOut(BaseModel):
    """A helper as anyone with the link sees them: a display name, never an account id."""

    display_name: str
    amount: MoneyOut
    position: int = Field(description="1 for the first cut")
    cut_at: datetime

    @classmethod
    def of(cls, h: HelperCut, currency: str) -> HelperOut:
        return cls(
            display_name=h.display_name,
            amount=MoneyOut.of(h.amount, currency),
            position=h.position,
            cut_at=h.created_at,
        )


class BargainOut(BaseModel):
    id: str
    deal_id: str
    deal_title: str
    owner_name: str
    status: BargainStatus = Field(
        description="open; bought once its purchase is paid; expired past its deadline"
    )
    start_price: MoneyOut = Field(description="The deal's list price when it was opened")
    price: MoneyOut = Field(description="The price reached")
    floor_price: MoneyOut
    cuts: int
    helpers_needed: int
    expires_at: datetime
    created_at: datetime
    seat_id: str | None = Field(description="The owner's purchase (only the owner sees it)")
    bought_price: MoneyOut | None
    helpers: list[HelperOut] | None = Field(
        default=None, description="Newest first; on a single bargain, not in lists"
    )

    @classmethod
    def of(
        cls, b: BargainView, *, owner: bool, helpers: list[HelperCut] | None = None
    ) -> BargainOut:
        return cls(
            id=b.id,
            deal_id=b.deal_id,
            deal_title=b.deal_title,
            owner_name=b.owner_name,
            status=b.state,
            start_price=MoneyOut.of(b.start_amount, b.currency),
            price=MoneyOut.of(b.price_amount, b.currency),
            floor_price=MoneyOut.of(b.floor_amount, b.currency),
            cuts=b.cuts,
            helpers_needed=b.helpers_needed,
            expires_at=b.expires_at,
            created_at=b.created_at,
            seat_id=b.seat_id if owner else None,
            bought_price=MoneyOut.of(b.bought_price_amount, b.currency)
            if owner and b.bought_price_amount is not None
            else None,
            helpers=None if helpers is None else [HelperOut.of(h, b.currency) for h in helpers],
        )


class CutOut(BaseModel):
    bargain_id: str
    position: int = Field(description="This cut's place: 1 for the first")
    amount: MoneyOut = Field(description="What this cut took off")
    price: MoneyOut = Field(description="The price reached after it")
    cuts: int
    helpers_needed: int

    @classmethod
    def of(cls, c: CutView) -> CutOut:
        return cls(
            bargain_id=c.bargain_id,
            position=c.position,
            amount=MoneyOut.of(c.amount, c.currency),
            price=MoneyOut.of(c.price_amount, c.currency),
            cuts=c.cuts,
            helpers_needed=c.helpers_needed,
        )
