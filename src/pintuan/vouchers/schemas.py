"""Request and response bodies of the vouchers API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pintuan.domain.vouchers import VoucherStatus, show_code
from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.vouchers.service import VoucherView


class VoucherDealOut(BaseModel):
    id: str
    title: str
    vertical: str


class VoucherOut(BaseModel):
    """A voucher. ``code`` is shown to its shopper, and to the counter that redeems it; a
    merchant's list shows only its last characters (``code_hint``)."""

    id: str
    status: VoucherStatus
    code: str | None = Field(description="XXXXX-XXXXX; only for its shopper and its redeemer")
    code_hint: str = Field(description="The code's last three characters")
    deal: VoucherDealOut
    seat_id: str
    team_id: str
    price: MoneyOut
    valid_from: datetime
    expires_at: datetime
    locations: list[str] = Field(description="Where it may be redeemed; empty: anywhere")
    refund_anytime: bool = Field(description="Its shopper may refund it before it is used")
    settle_on: str = Field(description="redemption or success: when its merchant is paid")
    redeemed_at: datetime | None
    redeemed_location: str | None
    redeemed_via: str | None
    refund_id: str | None
    ended_at: datetime | None

    @classmethod
    def of(cls, v: VoucherView, *, show: bool) -> VoucherOut:
        return cls(
            id=v.id,
            status=VoucherStatus(v.status),
            code=show_code(v.code) if show else None,
            code_hint=v.code[-3:],
            deal=VoucherDealOut(id=v.deal_id, title=v.deal_title, vertical=v.vertical),
            seat_id=v.seat_id,
            team_id=v.team_id,
            price=MoneyOut.of(int(v.amount), v.currency),
            valid_from=v.valid_from,
            expires_at=v.expires_at,
            locations=v.locations,
            refund_anytime=v.refund_anytime,
            settle_on=v.settle_on,
            redeemed_at=v.redeemed_at,
            redeemed_location=v.redeemed_location,
            redeemed_via=v.redeemed_via,
            refund_id=v.refund_id,
            ended_at=v.ended_at,
        )


class RedeemIn(StrictModel):
    code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="As printed or scanned: case, spaces and dashes do not matter",
        ),
    ]
    location: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Which of the voucher's locations redeems it (needed when it lists several)",
    )


class LookUpIn(StrictModel):
    code: Annotated[str, Field(min_length=1, max_length=40)]
