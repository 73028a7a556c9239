"""HTTP endpoints of orders and refunds, for merchants' staff and for operators."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.teams import SeatStatus
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut
from pintuan.payments import reports
from pintuan.payments.reports import OrderRow, PaymentLine, RefundRow, RefundState
from pintuan.services import ServicesDep
from pintuan.teams.reports_api import IdQuery, SearchQuery

router = Router(tags=["merchant reports"])


class ShopperOut(BaseModel):
    display_name: str
    email: str


class PaymentLineOut(BaseModel):
    id: str
    provider: str
    status: str
    pending_action: str | None
    amount: MoneyOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, line: PaymentLine) -> PaymentLineOut:
        return cls(
            id=line.id,
            provider=line.provider,
            status=line.status,
            pending_action=line.pending_action,
            amount=MoneyOut.of(line.amount, line.currency),
            created_at=line.created_at,
            updated_at=line.updated_at,
        )


class OrderOut(BaseModel):
    id: str
    team_id: str
    team_status: str
    deal_id: str
    deal_title: str
    shopper: ShopperOut
    status: str
    is_leader: bool
    price: MoneyOut
    created_at: datetime
    paid_at: datetime | None
    ended_at: datetime | None
    payments: list[PaymentLineOut]

    @classmethod
    def of(cls, row: OrderRow) -> OrderOut:
        return cls(
            id=row.id,
            team_id=row.team_id,
            team_status=row.team_status,
            deal_id=row.deal_id,
            deal_title=row.deal_title,
            shopper=ShopperOut(display_name=row.shopper_name, email=row.shopper_email),
            status=row.status,
            is_leader=row.is_leader,
            price=MoneyOut.of(row.price_amount, row.currency),
            created_at=row.created_at,
            paid_at=row.paid_at,
            ended_at=row.ended_at,
            payments=[PaymentLineOut.of(p) for p in row.payments],
        )


class RefundOut(BaseModel):
    id: str
    seat_id: str
    team_id: str
    deal_id: str
    deal_title: str
    merchant_id: str
    merchant_name: str
    shopper: ShopperOut
    provider: str
    action: str
    state: str
    reason: str
    amount: MoneyOut
    attempts: int
    last_error: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: RefundRow) -> RefundOut:
        return cls(
            id=row.id,
            seat_id=row.seat_id,
            team_id=row.team_id,
            deal_id=row.deal_id,
            deal_title=row.deal_title,
            merchant_id=row.merchant_id,
            merchant_name=row.merchant_name,
            shopper=ShopperOut(display_name=row.shopper_name, email=row.shopper_email),
            provider=row.provider,
            action=row.action,
            state=row.state.value,
            reason=row.reason.value,
            amount=MoneyOut.of(row.amount, row.currency),
            attempts=row.attempts,
            last_error=row.last_error,
            updated_at=row.updated_at,
        )


@router.get("/v1/merchants/{merchant_id}/orders", response_model=Page[OrderOut])
async def list_orders(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: SeatStatus | None = None,
    deal_id: IdQuery = None,
    team_id: IdQuery = None,
    text: SearchQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[OrderOut]:
    """The merchant's seats with their payments, newest first (its staff and operators)."""
    filters = reports.OrderFilters(status=status, deal_id=deal_id, team_id=team_id, text=text)
    rows = await services.db.report(
        lambda s: reports.list_merchant_orders(
            s, principal, merchant_id, filters, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, OrderOut.of)


@router.get("/v1/merchants/{merchant_id}/refunds", response_model=Page[RefundOut])
async def list_merchant_refunds(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    state: RefundState | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[RefundOut]:
    """Money going back to the merchant's shoppers, owed or done, newest first."""
    rows = await services.db.report(
        lambda s: reports.list_merchant_refunds(
            s, principal, merchant_id, state=state, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, RefundOut.of)


@router.get("/v1/refunds", response_model=Page[RefundOut])
async def list_refunds(
    principal: CurrentPrincipal,
    services: ServicesDep,
    state: RefundState | None = None,
    merchant_id: IdQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[RefundOut]:
    """Refunds across every merchant (operators); ``state=failing`` finds the stuck ones."""
    rows = await services.db.report(
        lambda s: reports.list_all_refunds(
            s, principal, merchant_id=merchant_id, state=state, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, RefundOut.of)
