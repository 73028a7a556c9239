"""Requests and answers of refunds after success and disputes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from pintuan.domain.payments import RefundTo
from pintuan.domain.refunds import RefundProgress, refund_progress
from pintuan.kit.schemas import MoneyOut, StrictModel
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.payments.refunds import waits_for_operators

# The largest amount any currency accepts here (see kit.money.max_amount); a seat never costs
# more, so anything above is refused as input before it reaches the ledger.
MOST = 10**15


class RefundIn(StrictModel):
    amount: Annotated[StrictInt, Field(gt=0, le=MOST)] = Field(
        description="Minor units of the payment's currency to give back"
    )
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def progress_of(r: Refund) -> RefundProgress:
    """Where ``r`` stands, as its payer is told."""
    return refund_progress(
        r.status,
        to_wallet=r.destination == RefundTo.WALLET,
        waiting=waits_for_operators(r),
        last_outcome=r.last_outcome,
    )


class RefundOut(BaseModel):
    id: str
    seat_id: str
    payment_id: str
    amount: MoneyOut
    # How it comes back: from the merchant's payable and from the platform's fee.
    merchant_part: MoneyOut
    fee_part: MoneyOut
    reason: str
    status: str
    progress: RefundProgress = Field(
        description="Where it stands, as its payer is told: on_its_way; delayed (the provider "
        "did not make it when asked, and the operators have it); sent_back (made, but its money "
        "came back, as from a closed card: owed again, to be paid into the wallet); done; "
        "in_wallet"
    )
    source: str
    destination: str
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, r: Refund) -> RefundOut:
        return cls(
            id=r.id,
            seat_id=r.seat_id,
            payment_id=r.payment_id,
            amount=MoneyOut.of(r.amount, r.currency),
            merchant_part=MoneyOut.of(r.merchant_part, r.currency),
            fee_part=MoneyOut.of(r.fee_part, r.currency),
            reason=r.reason,
            status=r.status,
            progress=progress_of(r),
            source=r.source,
            destination=r.destination,
            created_at=r.created_at,
            decided_at=r.decided_at,
        )


class RefundList(BaseModel):
    items: list[RefundOut]


class DisputeOut(BaseModel):
    id: str
    payment_id: str
    seat_id: str | None
    amount: MoneyOut
    reason: str | None
    status: str
    opened_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, d: Dispute) -> DisputeOut:
        return cls(
            id=d.id,
            payment_id=d.payment_id,
            seat_id=d.seat_id,
            amount=MoneyOut.of(d.amount, d.currency),
            reason=d.reason,
            status=d.status,
            opened_at=d.opened_at,
            decided_at=d.decided_at,
        )


class DisputeList(BaseModel):
    items: list[DisputeOut]
