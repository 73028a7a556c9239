"""Request and response bodies of the payments API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from pintuan.kit.schemas import AmountIn, MoneyOut, StrictModel
from pintuan.payments.models import Payment
from pintuan.teams.reads import FriendSeat

ProviderName = Annotated[str, Field(min_length=1, max_length=20)]
CheckoutKind = Annotated[str, Field(min_length=1, max_length=20)]


class PaymentIn(StrictModel):
    provider: ProviderName = Field(
        default="sandbox", description="A configured provider, or `wallet` to pay from balance"
    )
    checkout_kind: CheckoutKind | None = Field(
        default=None, description="One of the provider's checkout kinds; default: its first"
    )
    payer_ref: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="Your id at the provider where its checkout needs it (WeChat "
        "JSAPI: the openid)",
    )
    refund_to: Literal["original", "wallet"] = Field(
        default="original",
        description="Where money goes if the team fails: back to the payment method, or to "
        "your wallet at once",
    )


class TopupIn(StrictModel):
    amount: AmountIn
    provider: ProviderName = "sandbox"
    checkout_kind: CheckoutKind | None = None


class NextAction(BaseModel):
    type: Literal["redirect_to_url", "show_qr_code", "use_client_sdk"]
    checkout_kind: str | None = None
    url: str | None = None
    qr_code: str | None = None
    client_params: dict[str, str] | None = None

    @classmethod
    def of(cls, stored: str) -> NextAction:
        action = json.loads(stored)
        kind: Literal["redirect_to_url", "show_qr_code", "use_client_sdk"] = (
            "redirect_to_url"
            if action.get("url")
            else "show_qr_code"
            if action.get("qr_code")
            else "use_client_sdk"
        )
        return cls(type=kind, **action)


class PaymentOut(BaseModel):
    id: str
    purpose: Literal["seat", "topup"]
    seat_id: str | None
    provider: str
    style: str
    style_note: str | None = Field(description="Why the provider's usual style was not used")
    status: str
    amount: MoneyOut
    refund_to: str
    next_action: NextAction | None
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        waiting = payment.status == "requires_action" and payment.next_action
        return cls(
            id=payment.id,
            purpose="topup" if payment.purpose == "topup" else "seat",
            seat_id=payment.seat_id,
            provider=payment.provider,
            style=payment.style,
            style_note=payment.style_note,
            status=payment.status,
            amount=MoneyOut.of(payment.amount, payment.currency),
            refund_to=payment.refund_to,
            next_action=NextAction.of(payment.next_action or "{}") if waiting else None,
            created_at=payment.created_at,
        )


class WebhookAck(BaseModel):
    received: bool = True
    duplicate: bool


class PayLinkOut(BaseModel):
    token: str
    url: str
    seat_id: str
    expires_at: datetime


class PayLinkView(BaseModel):
    seat_id: str
    team_id: str
    deal_id: str
    deal_title: str
    for_display_name: str
    amount: MoneyOut
    expires_at: datetime

    @classmethod
    def of(cls, seat: FriendSeat, expires_at: datetime) -> PayLinkView:
        return cls(
            seat_id=seat.seat_id,
            team_id=seat.team_id,
            deal_id=seat.deal_id,
            deal_title=seat.deal_title,
            for_display_name=seat.display_name,
            amount=MoneyOut.of(seat.amount, seat.currency),
            expires_at=expires_at,
        )
