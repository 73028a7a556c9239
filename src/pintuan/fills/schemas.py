"""Request and response bodies of the auto-fill budgets API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.fills.service import BudgetView, FilledTeam
from pintuan.kit.schemas import MoneyIn, MoneyOut, StrictModel


class BudgetIn(StrictModel):
    limit: MoneyIn = Field(description="The most the budget may pay for filled seats, in all")


class BudgetOut(BaseModel):
    payer: str = Field(description="A merchant's id, or platform")
    limit: MoneyOut
    used: MoneyOut = Field(description="The group price of every seat it filled")
    left: MoneyOut
    filled_seats: int
    updated_at: datetime | None

    @classmethod
    def of(cls, budget: BudgetView) -> BudgetOut:
        return cls(
            payer=budget.payer,
            limit=MoneyOut.of(budget.limit, budget.currency),
            used=MoneyOut.of(budget.used, budget.currency),
            left=MoneyOut.of(budget.left, budget.currency),
            filled_seats=budget.filled_seats,
            updated_at=budget.updated_at,
        )


class PlatformBudgetsOut(BaseModel):
    data: list[BudgetOut]


class FilledTeamOut(BaseModel):
    team_id: str
    deal_id: str
    deal_title: str
    merchant_id: str
    seats: int = Field(description="Seats filled")
    funded_by: str = Field(description="merchant or platform")
    cost: MoneyOut
    ended_at: datetime | None

    @classmethod
    def of(cls, team: FilledTeam) -> FilledTeamOut:
        return cls(
            team_id=team.id,
            deal_id=team.deal_id,
            deal_title=team.deal_title,
            merchant_id=team.merchant_id,
            seats=team.seats,
            funded_by=team.funded_by,
            cost=MoneyOut.of(team.cost, team.currency),
            ended_at=team.ended_at,
        )
