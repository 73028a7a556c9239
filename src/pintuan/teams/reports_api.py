"""HTTP endpoints of what a merchant's staff read about teams: the teams list and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.teams import TeamStatus
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut
from pintuan.services import ServicesDep
from pintuan.teams import reports
from pintuan.teams.reports import MAX_DASHBOARD_DAYS, Dashboard, TeamRow

router = Router(prefix="/v1/merchants/{merchant_id}", tags=["merchant reports"])

SearchQuery = Annotated[
    str | None,
    Query(max_length=100, description="An id, or part of a shopper's display name or email"),
]
IdQuery = Annotated[str | None, Query(max_length=40)]


class MerchantTeamOut(BaseModel):
    id: str
    deal_id: str
    deal_title: str
    status: str
    team_size: int
    seats_taken: int
    seats_paid: int
    seats_left: int
    leader_name: str
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, row: TeamRow) -> MerchantTeamOut:
        return cls(
            id=row.id,
            deal_id=row.deal_id,
            deal_title=row.deal_title,
            status=row.status,
            team_size=row.team_size,
            seats_taken=row.taken,
            seats_paid=row.paid,
            seats_left=row.seats_left,
            leader_name=row.leader_name,
            expires_at=row.expires_at,
            created_at=row.created_at,
            ended_at=row.ended_at,
        )


class DayOut(BaseModel):
    day: date
    sales: list[MoneyOut]
    teams_succeeded: int
    teams_failed: int


class TimeToFillOut(BaseModel):
    teams: int
    median_seconds: int | None
    p90_seconds: int | None


class TotalsOut(BaseModel):
    sales: list[MoneyOut]
    teams_succeeded: int
    teams_failed: int
    success_rate: float | None


class DashboardOut(BaseModel):
    merchant_id: str
    time_zone: str
    first_day: date
    last_day: date
    days: list[DayOut]
    totals: TotalsOut
    time_to_fill: TimeToFillOut

    @classmethod
    def of(cls, board: Dashboard) -> DashboardOut:
        currencies = board.currencies
        return cls(
            merchant_id=board.merchant_id,
            time_zone=board.time_zone,
            first_day=board.first_day,
            last_day=board.last_day,
            days=[
                DayOut(
                    day=sales.day,
                    sales=[MoneyOut.of(sales.amount(c), c) for c in currencies],
                    teams_succeeded=outcomes.succeeded,
                    teams_failed=outcomes.failed,
                )
                for sales, outcomes in zip(board.sales, board.outcomes, strict=True)
            ],
            totals=TotalsOut(
                sales=[MoneyOut.of(board.total_sales(c), c) for c in currencies],
                teams_succeeded=board.succeeded,
                teams_failed=board.failed,
                success_rate=board.success_rate,
            ),
            time_to_fill=TimeToFillOut(
                teams=board.time_to_fill.teams,
                median_seconds=board.time_to_fill.median_seconds,
                p90_seconds=board.time_to_fill.p90_seconds,
            ),
        )


@router.get("/teams", response_model=Page[MerchantTeamOut])
async def list_teams(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: TeamStatus | None = None,
    deal_id: IdQuery = None,
    text: SearchQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[MerchantTeamOut]:
    """The merchant's teams newest first (its staff and operators), with filters and search."""
    filters = reports.TeamFilters(status=status, deal_id=deal_id, text=text)
    rows = await services.db.read(
        lambda s: reports.list_merchant_teams(
            s, principal, merchant_id, filters, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, MerchantTeamOut.of)


@router.get("/dashboard", response_model=DashboardOut)
async def dashboard(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=MAX_DASHBOARD_DAYS)] = 30,
    deal_id: IdQuery = None,
) -> DashboardOut:
    """Sales per business day in the merchant's time zone, team outcomes and time to fill."""
    board = await services.db.report(
        lambda s: reports.merchant_dashboard(s, principal, merchant_id, days=days, deal_id=deal_id)
    )
    return DashboardOut.of(board)
