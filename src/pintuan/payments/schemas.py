"""Request and response bodies of the payments API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.payments.models import Payment


class PaymentIn(StrictModel):
    provider: Annotated[str, Field(min_length=1, max_length=20)] = "sandbox"


class NextAction(BaseModel):
    type: Literal["redirect_to_url"] = "redirect_to_url"
    url: str


class PaymentOut(BaseModel):
    id: str
    seat_id: str
    provider: str
    style: str
    status: str
    amount: MoneyOut
    next_action: NextAction | None
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        waiting = payment.status == "requires_action" and payment.checkout_url
        return cls(
            id=payment.id,
            seat_id=payment.seat_id,
            provider=payment.provider,
            style=payment.style,
            status=payment.status,
            amount=MoneyOut.of(payment.amount, payment.currency),
            next_action=NextAction(url=payment.checkout_url or "") if waiting else None,
            created_at=payment.created_at,
        )


class WebhookAck(BaseModel):
    received: bool = True
    duplicate: bool
