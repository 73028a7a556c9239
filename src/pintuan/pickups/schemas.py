"""Request and response bodies of the pickup points API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pintuan.domain.commissions import CommissionStatus
from pintuan.domain.pickups import MAX_CAPACITY, PickupStatus, PointApplication, PointStatus
from pintuan.domain.vouchers import show_code
from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.pickups.service import Earnings, PickupView, PointView


class PointApplicationIn(StrictModel):
    """An application to lead a pickup point, which operators decide on."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    address: Annotated[str, Field(min_length=1, max_length=500)]
    opening_hours: Annotated[
        str, Field(min_length=1, max_length=200, description="As shoppers read it: Mon-Sat 9-20")
    ]
    capacity_per_day: int = Field(ge=1, le=MAX_CAPACITY, description="Orders it takes a day")

    def to_application(self) -> PointApplication:
        return PointApplication(self.name, self.address, self.opening_hours, self.capacity_per_day)


class DecisionIn(StrictModel):
    approve: bool = Field(
        description="true: approve a pending or suspended point; false: reject a pending one "
        "or suspend an approved one"
    )
    reason: Annotated[str, Field(max_length=500)] | None = None


class PointOut(BaseModel):
    id: str
    name: str
    address: str
    opening_hours: str
    capacity_per_day: int
    time_zone: str = Field(description="A point's days are calendar days in this zone")
    status: PointStatus
    leader_id: str | None = Field(description="Shown to the leader and to operators")
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, p: PointView, *, private: bool) -> PointOut:
        return cls(
            id=p.id,
            name=p.name,
            address=p.address,
            opening_hours=p.opening_hours,
            capacity_per_day=p.capacity_per_day,
            time_zone=p.time_zone,
            status=PointStatus(p.status),
            leader_id=p.leader_id if private else None,
            decided_at=p.decided_at if private else None,
            decision_reason=p.decision_reason if private else None,
            created_at=p.created_at,
        )


class ChoosePointIn(StrictModel):
    pickup_point_id: Annotated[str, Field(min_length=1, max_length=40)]


class ArrivalIn(StrictModel):
    deal_id: Annotated[str, Field(min_length=1, max_length=40)]


class ArrivalOut(BaseModel):
    arrived: int = Field(description="Orders now ready to collect")


class HandOverIn(StrictModel):
    code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="As the shopper shows it: case, spaces and dashes do not matter",
        ),
    ]


class PickupPointBrief(BaseModel):
    id: str
    name: str
    address: str
    opening_hours: str


class PickupOut(BaseModel):
    """A seat's pickup: where, its code (for its shopper and its point's leader), its state."""

    seat_id: str
    status: PickupStatus
    code: str = Field(description="XXXXX-XXXXX, shown at the point")
    point: PickupPointBrief
    deal_id: str
    deal_title: str
    shopper_name: str
    price: MoneyOut
    day: date = Field(description="The day at the point on which the order chose it")
    arrived_at: datetime | None
    claim_due_at: datetime = Field(description="Refunded when not collected by then")
    handed_over_at: datetime | None
    commission: MoneyOut | None = Field(description="The leader's, once handed over")
    commission_status: CommissionStatus | None = Field(
        description="The leader's commission: frozen until the order's refund window closes, "
        "then released to their wallet; clawed_back when refunds took it all back"
    )
    refund_id: str | None

    @classmethod
    def of(cls, p: PickupView) -> PickupOut:
        return cls(
            seat_id=p.seat_id,
            status=PickupStatus(p.status),
            code=show_code(p.code),
            point=PickupPointBrief(
                id=p.pickup_point_id,
                name=p.point_name,
                address=p.point_address,
                opening_hours=p.point_hours,
            ),
            deal_id=p.deal_id,
            deal_title=p.deal_title,
            shopper_name=p.shopper_name,
            price=MoneyOut.of(int(p.amount), p.currency),
            day=date.fromisoformat(p.day),
            arrived_at=p.arrived_at,
            claim_due_at=p.claim_due_at,
            handed_over_at=p.handed_over_at,
            commission=MoneyOut.of(int(p.commission_amount), p.currency)
            if p.status == PickupStatus.HANDED_OVER
            else None,
            commission_status=CommissionStatus(p.commission_status)
            if p.commission_status
            else None,
            refund_id=p.refund_id,
        )


class EarningLine(BaseModel):
    orders: int
    commission: MoneyOut = Field(description="Earned on them, less what refunds took back")
    frozen: MoneyOut = Field(
        description="Of it, what waits for the orders' refund windows to close before it is "
        "paid into the wallet"
    )

    @classmethod
    def of(cls, e: Earnings) -> EarningLine:
        return cls(
            orders=int(e.orders),
            commission=MoneyOut.of(int(e.amount), e.currency),
            frozen=MoneyOut.of(int(e.frozen), e.currency),
        )


class EarningsOut(BaseModel):
    """A leader's commissions: orders handed over and what they earned, per currency."""

    data: list[EarningLine]
