"""Request and response bodies of the shares API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.domain.traffic import Channel, framed_token
from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.shares.attribution import InviteNode
from pintuan.shares.service import ResolvedToken, ShareStats, ShareView


class ShareIn(StrictModel):
    channel: Channel = Field(description="Where the share is posted")
    from_code: str | None = Field(
        default=None,
        alias="from",
        min_length=1,
        max_length=16,
        description="Code of the share this one re-shares (it came to you through it)",
    )


class ShareStatsOut(BaseModel):
    visits: int = Field(description="Openings by people other than you, bots not counted")
    starts: int
    joins: int
    paid: int
    successes: int

    @classmethod
    def of(cls, stats: ShareStats) -> ShareStatsOut:
        return cls(
            visits=stats.visits,
            starts=stats.starts,
            joins=stats.joins,
            paid=stats.paid,
            successes=stats.successes,
        )


class ShareOut(BaseModel):
    id: str
    code: str
    url: str
    channel: str
    target: str
    team_id: str | None
    deal_id: str
    from_code: str | None
    token: str | None = Field(description="Copy-paste token of a team share, e.g. ¥Ab3kX9mPq2Z¥")
    token_expires_at: datetime | None
    text: str | None = Field(description="A ready-to-paste message with price, seats and token")
    created_at: datetime
    stats: ShareStatsOut

    @classmethod
    def of(cls, view: ShareView) -> ShareOut:
        share = view.share
        return cls(
            id=share.id,
            code=share.code,
            url=view.url,
            channel=share.channel,
            target=share.target,
            team_id=share.team_id,
            deal_id=share.deal_id,
            from_code=view.parent_code,
            token=framed_token(share.token) if share.token else None,
            token_expires_at=share.token_expires_at,
            text=view.text,
            created_at=share.created_at,
            stats=ShareStatsOut.of(view.stats),
        )


class ResolvedTokenOut(BaseModel):
    team_id: str
    deal_id: str
    deal_title: str
    group_price: MoneyOut
    list_price: MoneyOut
    seats_left: int
    expires_at: datetime
    page: str = Field(description="Path of the team's page")
    share_code: str

    @classmethod
    def of(cls, resolved: ResolvedToken) -> ResolvedTokenOut:
        team, deal = resolved.team, resolved.deal
        return cls(
            team_id=team.id,
            deal_id=deal.id,
            deal_title=deal.title,
            group_price=MoneyOut.of(deal.group_price_amount, deal.currency),
            list_price=MoneyOut.of(deal.list_price_amount, deal.currency),
            seats_left=team.team_size - team.taken,
            expires_at=team.expires_at,
            page=f"/teams/{team.id}",
            share_code=resolved.share.code,
        )


class InviteeOut(BaseModel):
    display_name: str
    channel: str
    invited_at: datetime


class DepthCount(BaseModel):
    depth: int
    people: int


class MyInvitesOut(BaseModel):
    """People you brought yourself by name; beyond them, only how many each level holds."""

    direct: list[InviteeOut]
    by_depth: list[DepthCount]
    total: int
    truncated: bool


class InviteNodeOut(BaseModel):
    user_id: str
    display_name: str
    inviter_id: str
    depth: int
    channel: str
    invited_at: datetime

    @classmethod
    def of(cls, node: InviteNode) -> InviteNodeOut:
        return cls(
            user_id=node.user_id,
            display_name=node.display_name,
            inviter_id=node.inviter_id,
            depth=node.depth,
            channel=node.channel,
            invited_at=node.invited_at,
        )


class InviteTreeOut(BaseModel):
    root: str
    depth: int
    data: list[InviteNodeOut]
    truncated: bool
