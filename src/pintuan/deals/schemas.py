"""Request and response bodies of the deals API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, Field

from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.kit.schemas import MoneyIn, MoneyOut, StrictModel, UtcInstant

Title = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10000)]
ImageUrls = Annotated[list[AnyHttpUrl], Field(max_length=12)]
TeamSize = Annotated[int, Field(ge=2, le=100)]
TeamWindow = Annotated[int, Field(ge=5, le=10080)]
Stock = Annotated[int, Field(ge=1, le=10_000_000)]
PerUserLimit = Annotated[int, Field(ge=1, le=1000)]


class DealIn(StrictModel):
    merchant_id: Annotated[str, Field(min_length=1, max_length=40)]
    title: Title
    description: Description = ""
    vertical: Vertical
    image_urls: ImageUrls = []
    list_price: MoneyIn
    group_price: MoneyIn
    leader_price: MoneyIn | None = None
    new_shoppers_only: bool = False
    team_size: TeamSize
    team_window_minutes: TeamWindow = 1440
    stock: Stock
    per_user_limit: PerUserLimit = 1
    starts_at: UtcInstant
    ends_at: UtcInstant


class DealPatch(StrictModel):
    """Only the fields sent change; ``null`` is not a value for any of them."""

    title: Title | None = None
    description: Description | None = None
    vertical: Vertical | None = None
    image_urls: ImageUrls | None = None
    list_price: MoneyIn | None = None
    group_price: MoneyIn | None = None
    leader_price: MoneyIn | None = None
    new_shoppers_only: bool | None = None
    team_size: TeamSize | None = None
    team_window_minutes: TeamWindow | None = None
    stock: Stock | None = None
    per_user_limit: PerUserLimit | None = None
    starts_at: UtcInstant | None = None
    ends_at: UtcInstant | None = None


class DealOut(BaseModel):
    id: str
    merchant_id: str
    title: str
    description: str
    vertical: str
    image_urls: list[str]
    list_price: MoneyOut
    group_price: MoneyOut
    leader_price: MoneyOut | None
    new_shoppers_only: bool
    team_size: int
    team_window_minutes: int
    stock: int
    committed: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    status: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, deal: Deal) -> DealOut:
        return cls(
            id=deal.id,
            merchant_id=deal.merchant_id,
            title=deal.title,
            description=deal.description,
            vertical=deal.vertical,
            image_urls=deal.image_urls,
            list_price=MoneyOut.of(deal.list_price_amount, deal.currency),
            group_price=MoneyOut.of(deal.group_price_amount, deal.currency),
            leader_price=MoneyOut.of(deal.leader_price_amount, deal.currency)
            if deal.leader_price_amount is not None
            else None,
            new_shoppers_only=deal.new_shoppers_only,
            team_size=deal.team_size,
            team_window_minutes=deal.team_window_minutes,
            stock=deal.stock,
            committed=deal.committed,
            per_user_limit=deal.per_user_limit,
            starts_at=deal.starts_at,
            ends_at=deal.ends_at,
            status=deal.status,
            created_at=deal.created_at,
            updated_at=deal.updated_at,
            published_at=deal.published_at,
        )
