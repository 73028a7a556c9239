"""Response bodies of the growth API, and their flat CSV rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pintuan.domain.traffic import ratio, week_label
from pintuan.growth.service import ChannelWeek, CrossVerticalWeek, FunnelRow


class TeamsOut(BaseModel):
    succeeded: int
    failed: int
    success_rate: float | None
    median_time_to_fill_seconds: float | None


class FunnelRowOut(BaseModel):
    group: str | None = Field(description="The deal, channel, country or week of this row")
    shares: int
    visits: int
    orders: int = Field(description="Teams started plus teams joined")
    starts: int
    joins: int
    paid: int
    successes: int
    visits_per_share: float | None
    orders_per_visit: float | None
    paid_per_order: float | None
    successes_per_paid: float | None
    teams: TeamsOut

    @classmethod
    def of(cls, row: FunnelRow) -> FunnelRowOut:
        return cls(
            group=row.group,
            shares=row.shares,
            visits=row.visits,
            orders=row.orders,
            starts=row.starts,
            joins=row.joins,
            paid=row.paid,
            successes=row.successes,
            visits_per_share=ratio(row.visits, row.shares),
            orders_per_visit=ratio(row.orders, row.visits),
            paid_per_order=ratio(row.paid, row.orders),
            successes_per_paid=ratio(row.successes, row.paid),
            teams=TeamsOut(
                succeeded=row.teams_succeeded,
                failed=row.teams_failed,
                success_rate=row.team_success_rate,
                median_time_to_fill_seconds=row.median_fill_seconds,
            ),
        )

    def csv_row(self) -> dict[str, Any]:
        flat = self.model_dump(exclude={"teams"})
        flat.update({f"teams_{k}": v for k, v in self.teams.model_dump().items()})
        return flat


class FunnelOut(BaseModel):
    group_by: str | None
    data: list[FunnelRowOut]


class KFactorRowOut(BaseModel):
    group: str | None
    shares: int
    buyers: int = Field(description="Paid orders from any source in the cohort weeks")
    brought: int = Field(description="Paid orders credited to the shares")
    shares_per_buyer: float | None
    buyers_per_share: float | None
    k_factor: float | None
    median_cycle_seconds: float | None
    cycles: int = Field(description="How many brought orders have a cycle time")

    @classmethod
    def of(cls, row: FunnelRow) -> KFactorRowOut:
        k = row.k_factor
        return cls(
            group=row.group,
            shares=k.shares,
            buyers=k.buyers,
            brought=k.brought,
            shares_per_buyer=k.shares_per_buyer,
            buyers_per_share=k.buyers_per_share,
            k_factor=k.k,
            median_cycle_seconds=row.median_cycle_seconds,
            cycles=len(row.cycle_seconds),
        )

    def csv_row(self) -> dict[str, Any]:
        return self.model_dump()


class KFactorOut(BaseModel):
    group_by: str | None
    data: list[KFactorRowOut]


class ChannelWeekOut(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W48")
    visits: int
    conversions: int = Field(description="Paid orders credited to this channel's shares")
    visits_ratio: float | None = Field(description="Visits as a ratio of the week before")
    conversions_ratio: float | None

    @classmethod
    def of(cls, week: ChannelWeek) -> ChannelWeekOut:
        return cls(
            week=week_label(week.week),
            visits=week.visits,
            conversions=week.conversions,
            visits_ratio=week.visits_ratio,
            conversions_ratio=week.conversions_ratio,
        )


class ChannelOut(BaseModel):
    channel: str
    weeks: list[ChannelWeekOut]


class ChannelsOut(BaseModel):
    data: list[ChannelOut]

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"channel": channel.channel, **week.model_dump()}
            for channel in self.data
            for week in channel.weeks
        ]


class VerticalFlowOut(BaseModel):
    entry: str = Field(description="The vertical the buyers first came for")
    vertical: str = Field(description="The vertical they bought in")
    orders: int
    buyers: int


class CrossVerticalWeekOut(BaseModel):
    week: str = Field(description="ISO week of the payments, e.g. 2026-W48")
    orders: int = Field(description="Paid orders")
    cross_orders: int = Field(description="Paid orders in another vertical than the buyer's first")
    cross_share: float | None
    buyers: int
    cross_buyers: int = Field(description="Buyers with a cross-vertical order that week")
    flows: list[VerticalFlowOut]

    @classmethod
    def of(cls, week: CrossVerticalWeek) -> CrossVerticalWeekOut:
        return cls(
            week=week_label(week.week),
            orders=week.orders,
            cross_orders=week.cross_orders,
            cross_share=week.cross_share,
            buyers=week.buyers,
            cross_buyers=week.cross_buyers,
            flows=[
                VerticalFlowOut(
                    entry=f.entry, vertical=f.vertical, orders=f.orders, buyers=f.buyers
                )
                for f in week.flows
            ],
        )


class CrossVerticalOut(BaseModel):
    data: list[CrossVerticalWeekOut]

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"week": week.week, **flow.model_dump()} for week in self.data for flow in week.flows
        ]
