"""Request and response models of the feed's API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pintuan.kit.schemas import MoneyOut, StrictModel


class FeedItemOut(BaseModel):
    kind: Literal["deal", "team"]
    id: str
    vertical: str
    position: int
    propensity: float = Field(description="The probability the policy had of showing it here")
    reason: str = Field(description="pinned, best, explore or vertical_share")


class FeedCardOut(BaseModel):
    """What a client needs to draw an item (same order as ``items``)."""

    title: str
    deal_id: str
    merchant_id: str
    image_url: str | None
    group_price: MoneyOut
    list_price: MoneyOut
    team_size: int
    seats_left: int | None = Field(description="For a team: the seats still free")
    teams_forming: int
    closes_at: datetime = Field(description="A team's window, or the deal's end")
    url: str = Field(description="The page to open; it logs the click against the slot")


class FeedOut(BaseModel):
    impression_id: str
    policy: str
    items: list[FeedItemOut]
    next_cursor: str | None = Field(
        description="Continues the feed as a new slate without what was shown before"
    )
    display: list[FeedCardOut]


class ArmIO(StrictModel):
    name: str = Field(max_length=40)
    kind: Literal["random", "popularity", "linucb"]
    params: dict[str, float] = Field(default_factory=dict, max_length=10)
    share: float = Field(gt=0, le=1)


class FeedRulesIO(StrictModel):
    exploration: float = Field(ge=0, le=1)
    min_share: dict[str, float] = Field(default_factory=dict, max_length=10)
    pins: dict[str, str] = Field(default_factory=dict, max_length=20)
    boosts: dict[str, float] = Field(default_factory=dict, max_length=100)
    merchant_cap: int | None = Field(default=None, ge=1, le=100)
    reward_weights: dict[str, float] = Field(default_factory=dict, max_length=4)


class FeedConfigIn(StrictModel):
    rules: FeedRulesIO
    arms: list[ArmIO] = Field(min_length=1, max_length=5)
    version: int | None = Field(
        default=None, ge=0, description="The version read; a save in between is refused (409)"
    )


class FeedConfigOut(BaseModel):
    rules: dict[str, Any]
    arms: list[dict[str, Any]]
    version: int
    updated_by: str | None
    stored: bool = Field(description="False while the settings' defaults serve")
