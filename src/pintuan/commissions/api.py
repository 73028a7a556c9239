"""HTTP endpoints of referral commissions: a sharer's own, and a merchant's."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.commissions import service
from pintuan.commissions.schemas import CommissionOut, CommissionTotalsOut, MyCommissionsOut
from pintuan.domain.commissions import CommissionStatus
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.services import ServicesDep

router = Router(prefix="/v1", tags=["commissions"])

StatusQuery = Annotated[
    CommissionStatus | None,
    Query(description="frozen, released or clawed_back; all if none"),
]


@router.get("/me/commissions", response_model=MyCommissionsOut)
async def my_commissions(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: StatusQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> MyCommissionsOut:
    """Your commissions on orders your shares brought, newest first, with totals: frozen until
    each order can no longer be refunded, then paid into your wallet."""

    def read(session: Session) -> MyCommissionsOut:
        rows = service.list_of_sharer(
            session, principal.user_id, status=status, cursor=cursor, limit=limit
        )
        page = page_of(rows, limit, CommissionOut.of)
        return MyCommissionsOut(
            totals=CommissionTotalsOut.of(service.totals_of_sharer(session, principal.user_id)),
            data=page.data,
            next_cursor=page.next_cursor,
        )

    return await services.db.read(read)


@router.get("/merchants/{merchant_id}/commissions", response_model=Page[CommissionOut])
async def merchant_commissions(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: StatusQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[CommissionOut]:
    """The referral commissions the merchant pays, newest first (its staff and operators)."""
    rows = await services.db.read(
        lambda s: service.list_of_merchant(
            s, principal, merchant_id, status=status, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, CommissionOut.of)
