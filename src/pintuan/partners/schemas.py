"""Request and response bodies of the partner API: one offer schema for every vertical, and the
deals and teams apps read back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pintuan.deals.models import Deal
from pintuan.deals.schemas import (
    Description,
    ImageUrls,
    PerUserLimit,
    Stock,
    TeamSize,
    TeamWindow,
    Title,
)
from pintuan.domain.deals import Vertical
from pintuan.domain.offers import Location, Offer
from pintuan.kit.schemas import MoneyIn, MoneyOut, StrictModel, UtcInstant
from pintuan.partners.service import LiveDeal, Outcome, Published
from pintuan.teams.reads import TeamView

ExternalId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._~:-]+$",
        description="The app's own id of the offer: letters, digits and . _ ~ : -",
    ),
]


class LocationIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(max_length=500)] = ""
    lat: Annotated[float | None, Field(ge=-90, le=90, allow_inf_nan=False)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180, allow_inf_nan=False)] = None


class OfferIn(StrictModel):
    """An offer of any vertical: goods, food, movies, travel or local services."""

    title: Title
    description: Description = ""
    media_urls: ImageUrls = []
    vertical: Vertical
    category: Annotated[str | None, Field(min_length=1, max_length=60)] = None
    list_price: MoneyIn
    group_price: MoneyIn
    team_size: TeamSize
    team_window_minutes: TeamWindow = 1440
    stock: Annotated[Stock, Field(description="Units offered in all, committed ones included")]
    per_user_limit: PerUserLimit = 1
    starts_at: Annotated[
        UtcInstant | None,
        Field(description="When teams may start forming; left out: now, or as first published"),
    ] = None
    ends_at: Annotated[UtcInstant, Field(description="When teams stop forming")]
    valid_from: Annotated[
        UtcInstant | None, Field(description="From when what is bought may be used")
    ] = None
    valid_until: Annotated[
        UtcInstant | None, Field(description="Until when what is bought may be used")
    ] = None
    location: LocationIn | None = None

    def to_offer(self) -> Offer:
        place = self.location
        return Offer(
            title=self.title,
            description=self.description,
            vertical=self.vertical,
            category=self.category,
            media_urls=[str(url) for url in self.media_urls],
            list_price=self.list_price.to_money(),
            group_price=self.group_price.to_money(),
            team_size=self.team_size,
            team_window_minutes=self.team_window_minutes,
            stock=self.stock,
            per_user_limit=self.per_user_limit,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            location=Location(place.name, place.address, place.lat, place.lon) if place else None,
        )


class LocationOut(BaseModel):
    name: str
    address: str
    lat: float | None
    lon: float | None

    @classmethod
    def of(cls, deal: Deal) -> LocationOut | None:
        if deal.location_name is None:
            return None
        return cls(
            name=deal.location_name,
            address=deal.location_address or "",
            lat=deal.location_lat,
            lon=deal.location_lon,
        )


class _DealFields(BaseModel):
    title: str
    description: str
    media_urls: list[str]
    vertical: str
    category: str | None
    list_price: MoneyOut
    group_price: MoneyOut
    team_size: int
    team_window_minutes: int
    stock: int
    committed: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    valid_from: datetime | None
    valid_until: datetime | None
    location: LocationOut | None

    @staticmethod
    def fields_of(deal: Deal) -> dict[str, object]:
        return {
            "title": deal.title,
            "description": deal.description,
            "media_urls": deal.image_urls,
            "vertical": deal.vertical,
            "category": deal.category,
            "list_price": MoneyOut.of(deal.list_price_amount, deal.currency),
            "group_price": MoneyOut.of(deal.group_price_amount, deal.currency),
            "team_size": deal.team_size,
            "team_window_minutes": deal.team_window_minutes,
            "stock": deal.stock,
            "committed": deal.committed,
            "per_user_limit": deal.per_user_limit,
            "starts_at": deal.starts_at,
            "ends_at": deal.ends_at,
            "valid_from": deal.valid_from,
            "valid_until": deal.valid_until,
            "location": LocationOut.of(deal),
        }


class OfferOut(_DealFields):
    external_id: str
    deal_id: str
    merchant_id: str
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, deal: Deal) -> OfferOut:
        assert deal.external_id is not None
        return cls(
            external_id=deal.external_id,
            deal_id=deal.id,
            merchant_id=deal.merchant_id,
            status=deal.status,
            created_at=deal.created_at,
            updated_at=deal.updated_at,
            **_DealFields.fields_of(deal),
        )


class PublishedOfferOut(OfferOut):
    result: Outcome = Field(
        description="created (201), updated, or unchanged: the same offer again changes nothing"
    )
    changed: list[str] = Field(description="The offer's fields this request changed")

    @classmethod
    def of_published(cls, published: Published) -> PublishedOfferOut:
        return cls(
            **OfferOut.of(published.deal).model_dump(),
            result=published.outcome,
            changed=list(published.changed),
        )


class PartnerDealOut(_DealFields):
    id: str
    merchant_id: str
    country: str
    deep_link: str = Field(description="Send shoppers here: what they do is credited to your app")

    @classmethod
    def of(cls, live: LiveDeal, link: str) -> PartnerDealOut:
        return cls(
            id=live.deal.id,
            merchant_id=live.deal.merchant_id,
            country=live.country,
            deep_link=link,
            **_DealFields.fields_of(live.deal),
        )


class PartnerTeamOut(BaseModel):
    id: str
    deal_id: str
    team_size: int
    seats_left: int
    expires_at: datetime
    deep_link: str

    @classmethod
    def of(cls, team: TeamView, link: str) -> PartnerTeamOut:
        return cls(
            id=team.id,
            deal_id=team.deal_id,
            team_size=team.team_size,
            seats_left=team.team_size - team.taken,
            expires_at=team.expires_at,
            deep_link=link,
        )


class PartnerTeamsOut(BaseModel):
    data: list[PartnerTeamOut]


class PartnerImageOut(BaseModel):
    """A picture kept for an app's offers: ``url`` goes in an offer's ``media_urls``."""

    url: str
    thumbnail_url: str
    width: int
    height: int
