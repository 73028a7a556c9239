"""The coupons' API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.coupons.service import CouponView
from pintuan.kit.schemas import MoneyOut, StrictModel


class CouponOut(BaseModel):
    id: str
    merchant_id: str
    merchant_name: str
    amount: MoneyOut = Field(description="Taken off the price of one seat at this merchant")
    state: str = Field(description="available, applied, used or expired")
    source: str = Field(description="What gave it: lottery (a seat a draw did not pick)")
    issued_at: datetime
    expires_at: datetime
    seat_id: str | None = Field(description="The seat it was last applied to")

    @classmethod
    def of(cls, view: CouponView) -> CouponOut:
        coupon = view.coupon
        return cls(
            id=coupon.id,
            merchant_id=coupon.merchant_id,
            merchant_name=view.merchant_name,
            amount=MoneyOut.of(coupon.amount, coupon.currency),
            state=view.state.value,
            source=coupon.source,
            issued_at=coupon.issued_at,
            expires_at=coupon.expires_at,
            seat_id=coupon.seat_id,
        )


class ApplyCouponIn(StrictModel):
    coupon_id: str = Field(min_length=1, max_length=40)
