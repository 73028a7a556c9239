"""HTTP endpoints of coupons: a shopper's list, and taking one off a held seat's price."""

from __future__ import annotations

from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.coupons import service
from pintuan.coupons.schemas import ApplyCouponIn, CouponOut
from pintuan.domain.coupons import CouponState
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.services import ServicesDep
from pintuan.teams import reads as team_reads
from pintuan.teams.schemas import SeatOut

router = Router(prefix="/v1", tags=["coupons"])


@router.get("/me/coupons", response_model=Page[CouponOut])
async def my_coupons(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
    state: CouponState | None = Query(default=None, description="only coupons in this state"),
) -> Page[CouponOut]:
    """Your coupons, newest first, each with its state now."""
    cursor_id = decode_cursor(cursor) if cursor else None
    now = utc_now()
    views = await services.db.read(
        lambda s: service.my_coupons(s, principal.user_id, now, cursor_id, limit, state)
    )
    return page_of(views, limit, CouponOut.of)


@router.post("/seats/{seat_id}/coupon", response_model=SeatOut)
async def apply_coupon(
    seat_id: str,
    body: ApplyCouponIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Take one of your coupons off the price of your held seat, before paying for it."""

    def apply(session: Session) -> SeatOut:
        service.apply_coupon(raw_tx(session), principal.user_id, seat_id, body.coupon_id, utc_now())
        session.expire_all()  # the seat's price changed underneath the session
        return SeatOut.of(team_reads.owned_seat(session, principal.user_id, seat_id))

    return await run_write(request, services, principal, apply)
