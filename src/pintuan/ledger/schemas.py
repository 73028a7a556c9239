"""Request and response bodies of the ledger API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from pintuan.domain.reconciliation import Finding, Movement, Reconciliation
from pintuan.kit.schemas import AmountIn, MoneyOut, StrictModel
from pintuan.ledger.models import Payout, SettlementStatement
from pintuan.ledger.reads import WalletLine


class WalletLineOut(BaseModel):
    journal_id: str
    kind: str
    amount: MoneyOut
    at: datetime

    @classmethod
    def of(cls, line: WalletLine) -> WalletLineOut:
        return cls(
            journal_id=line.journal_id,
            kind=line.kind,
            amount=MoneyOut.of(line.amount, line.currency),
            at=line.at,
        )


class WalletOut(BaseModel):
    balances: list[MoneyOut]
    recent: list[WalletLineOut]


class StatementOut(BaseModel):
    id: str
    day: date
    orders: int
    gross: MoneyOut
    fees: MoneyOut
    net: MoneyOut
    payouts: MoneyOut
    adjustments: MoneyOut
    closing_balance: MoneyOut
    created_at: datetime

    @classmethod
    def of(cls, s: SettlementStatement) -> StatementOut:
        return cls(
            id=s.id,
            day=s.day,
            orders=s.orders,
            gross=MoneyOut.of(s.gross, s.currency),
            fees=MoneyOut.of(s.fees, s.currency),
            net=MoneyOut.of(s.net, s.currency),
            payouts=MoneyOut.of(s.payouts, s.currency),
            adjustments=MoneyOut.of(s.adjustments, s.currency),
            closing_balance=MoneyOut.of(s.closing_balance, s.currency),
            created_at=s.created_at,
        )


class MerchantBalanceOut(BaseModel):
    merchant_id: str
    owed: list[MoneyOut]


class PayoutIn(StrictModel):
    amount: AmountIn


class PayoutOut(BaseModel):
    journal_id: str
    merchant_id: str | None = Field(description="The merchant paid; null for a withdrawal")
    user_id: str | None = Field(description="The shopper withdrawing; null for a merchant's")
    destination: str | None = Field(description="Where a withdrawal goes, as the shopper typed")
    amount: MoneyOut
    id: str
    status: str
    return_journal_id: str | None
    reference: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Payout) -> PayoutOut:
        return cls(
            journal_id=p.journal_id,
            merchant_id=p.merchant_id,
            user_id=p.user_id,
            destination=p.destination,
            amount=MoneyOut.of(p.amount, p.currency),
            id=p.id,
            status=p.status,
            return_journal_id=p.return_journal_id,
            reference=p.reference,
            reason=p.reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class WithdrawalIn(StrictModel):
    amount: AmountIn
    destination: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Your bank or payment account to send it to"
    )


class PayoutStatusIn(StrictModel):
    status: Literal["sent", "paid", "failed", "returned"]
    reference: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class MovementOut(BaseModel):
    source_id: str
    amount: MoneyOut

    @classmethod
    def of(cls, m: Movement | None) -> MovementOut | None:
        if m is None:
            return None
        return cls(source_id=m.source_id, amount=MoneyOut.of(m.amount, m.currency))


class FindingOut(BaseModel):
    difference: str
    provider_ref: str
    kind: str
    ours: MovementOut | None
    theirs: MovementOut | None

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(
            difference=f.difference.value,
            provider_ref=f.provider_ref,
            kind=f.kind.value,
            ours=MovementOut.of(f.ours),
            theirs=MovementOut.of(f.theirs),
        )


class ReconciliationOut(BaseModel):
    provider: str
    day: date
    time_zone: str
    matched: int
    clean: bool
    findings: list[FindingOut]

    @classmethod
    def of(cls, provider: str, day: date, time_zone: str, r: Reconciliation) -> ReconciliationOut:
        return cls(
            provider=provider,
            day=day,
            time_zone=time_zone,
            matched=r.matched,
            clean=r.clean,
            findings=[FindingOut.of(f) for f in r.findings],
        )
