"""The commissions' API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.commissions.service import CommissionRow, Totals
from pintuan.kit.schemas import MoneyOut


class CommissionOut(BaseModel):
    id: str
    status: str = Field(description="frozen, released or clawed_back")
    deal_id: str
    deal_title: str
    seat_id: str
    share_id: str
    sharer_id: str
    rate_bps: int
    amount: MoneyOut = Field(description="The commission when it was frozen")
    clawed_back: MoneyOut = Field(description="What refunds before its release took back")
    kept: MoneyOut = Field(description="What is (or, once released, was) the sharer's")
    created_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, row: CommissionRow) -> CommissionOut:
        c = row.commission
        assert c.share_id is not None  # the lists are of referral commissions
        return cls(
            id=c.id,
            status=c.status,
            deal_id=c.deal_id,
            deal_title=row.deal_title,
            seat_id=c.seat_id,
            share_id=c.share_id,
            sharer_id=c.sharer_id,
            rate_bps=c.rate_bps,
            amount=MoneyOut.of(c.amount, c.currency),
            clawed_back=MoneyOut.of(c.clawed_back, c.currency),
            kept=MoneyOut.of(c.amount - c.clawed_back, c.currency),
            created_at=c.created_at,
            released_at=c.released_at,
        )


def _money(amounts: dict[str, int]) -> list[MoneyOut]:
    return [MoneyOut.of(amount, currency) for currency, amount in sorted(amounts.items())]


class CommissionTotalsOut(BaseModel):
    frozen: list[MoneyOut] = Field(description="Waiting for their orders' refund windows")
    released: list[MoneyOut] = Field(description="Paid into your wallet")
    clawed_back: list[MoneyOut] = Field(description="Taken back by refunds before release")

    @classmethod
    def of(cls, totals: Totals) -> CommissionTotalsOut:
        return cls(
            frozen=_money(totals.frozen),
            released=_money(totals.released),
            clawed_back=_money(totals.clawed_back),
        )


class MyCommissionsOut(BaseModel):
    totals: CommissionTotalsOut
    data: list[CommissionOut]
    next_cursor: str | None
