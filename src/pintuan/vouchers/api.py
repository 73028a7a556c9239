"""HTTP endpoints of vouchers: the shopper's list, QR and refund; the counter's look-up,
redemption and undo (a merchant's staff, or an app with ``vouchers:redeem``); a merchant's list.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from pintuan.accounts.dependencies import CurrentPrincipal, optional_principal
from pintuan.apps.dependencies import current_app
from pintuan.domain.apps import Scope, is_app_access_token
from pintuan.domain.vouchers import RedeemedVia, VoucherStatus
from pintuan.errors import Forbidden, Unauthenticated
from pintuan.idempotency.http import run_raw_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import RawTx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.services import ServicesDep
from pintuan.vouchers import service
from pintuan.vouchers.qr import qr_svg
from pintuan.vouchers.schemas import LookUpIn, RedeemIn, VoucherOut

router = Router(prefix="/v1", tags=["vouchers"])

StatusQuery = Annotated[
    VoucherStatus | None,
    Query(description="issued, redeemed, refunded or expired; all if none"),
]


async def counter(request: Request, services: ServicesDep) -> service.Redeemer:
    """Who redeems: an app's access token with ``vouchers:redeem`` on the shop it is installed
    on, or a logged-in merchant's staff member (or an operator)."""
    header = request.headers.get("authorization", "")
    _, _, secret = header.partition(" ")
    if is_app_access_token(secret.strip()):
        app = await current_app(request)
        if not app.has(Scope.VOUCHERS_REDEEM):
            raise Forbidden(
                f"This app's grant does not include the '{Scope.VOUCHERS_REDEEM}' scope.",
                code="insufficient_scope",
            )
        if app.merchant_id is None:
            raise Forbidden(
                "Only an app installed on a shop redeems that shop's vouchers.",
                code="app_not_installed",
            )
        return service.Redeemer(app.app_id, RedeemedVia.APP, frozenset({app.merchant_id}))
    principal = await optional_principal(request, services)
    if principal is None:
        raise Unauthenticated("Log in, or send an API token or an app's access token.")
    return service.Redeemer.staff(principal, RedeemedVia.API)


Counter = Annotated[service.Redeemer, Depends(counter)]


def _key_scope(redeemer: service.Redeemer) -> str:
    return f"app:{redeemer.id}" if redeemer.via is RedeemedVia.APP else f"user:{redeemer.id}"


# ---------------------------------------------------------------------------- the shopper


@router.get("/me/vouchers", response_model=Page[VoucherOut])
async def my_vouchers(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: StatusQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[VoucherOut]:
    """Your vouchers, newest first, with their codes."""
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.run_raw(
        service.list_of_user, principal.user_id, status, after, limit + 1, write=False
    )
    return page_of(rows, limit, lambda v: VoucherOut.of(v, show=True))


@router.get("/me/vouchers/{voucher_id}", response_model=VoucherOut)
async def my_voucher(
    voucher_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> VoucherOut:
    """One of your vouchers, with its code."""
    v = await services.db.run_raw(service.get_for_user, principal.user_id, voucher_id, write=False)
    return VoucherOut.of(v, show=True)


@router.get(
    "/me/vouchers/{voucher_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "The code as a QR"}},
)
async def my_voucher_qr(
    voucher_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Your voucher's code as a QR image to show at the counter."""
    v = await services.db.run_raw(service.get_for_user, principal.user_id, voucher_id, write=False)
    return Response(
        qr_svg(v.code),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post("/vouchers/{voucher_id}/refund", response_model=VoucherOut)
async def refund_voucher(
    voucher_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Refund your unused voucher in full, when its deal allows it (``refund_anytime``): to
    your original payment method or your wallet, as you chose when paying. 409
    ``voucher_already_redeemed``, ``voucher_refunded``, ``voucher_expired`` or
    ``voucher_not_refundable`` otherwise."""

    def work(tx: RawTx) -> VoucherOut:
        v = service.refund_by_shopper(tx, principal.user_id, voucher_id, utc_now())
        return VoucherOut.of(v, show=True)

    return await run_raw_write(request, services, principal, work)


# ---------------------------------------------------------------------------- the counter


@router.post("/vouchers/lookup", response_model=VoucherOut)
async def look_up_voucher(body: LookUpIn, redeemer: Counter, services: ServicesDep) -> VoucherOut:
    """What a code is (deal, status, validity, locations) before redeeming it. 404
    ``voucher_not_found``; 403 ``voucher_of_another_merchant``."""
    v = await services.db.run_raw(service.look_up, redeemer, body.code, write=False)
    return VoucherOut.of(v, show=True)


@router.post("/vouchers/redeem", response_model=VoucherOut)
async def redeem_voucher(
    body: RedeemIn, request: Request, redeemer: Counter, services: ServicesDep
) -> Response:
    """Redeem a voucher once, at one of its locations, before it expires; who, where and how
    are recorded. With an ``Idempotency-Key`` a repeat answers as the first time. 404
    ``voucher_not_found``; 403 ``voucher_of_another_merchant``; 409
    ``voucher_already_redeemed`` (with when and where), ``voucher_refunded`` or
    ``voucher_expired``; 422 ``voucher_location_required`` or ``voucher_location_invalid``."""

    def work(tx: RawTx) -> VoucherOut:
        v = service.redeem(tx, redeemer, body.code, body.location, utc_now())
        return VoucherOut.of(v, show=True)

    return await run_raw_write(request, services, None, work, scope=_key_scope(redeemer))


@router.post("/vouchers/{voucher_id}/undo", response_model=VoucherOut)
async def undo_redemption(
    voucher_id: str, request: Request, redeemer: Counter, services: ServicesDep
) -> Response:
    """Undo a redemption made by mistake, within ``PINTUAN_VOUCHER_UNDO_MINUTES`` of it: the
    voucher can be used again. 409 ``voucher_undo_closed`` after that."""
    minutes = services.settings.voucher_undo_minutes

    def work(tx: RawTx) -> VoucherOut:
        v = service.undo_redemption(tx, redeemer, voucher_id, minutes, utc_now())
        return VoucherOut.of(v, show=True)

    return await run_raw_write(request, services, None, work, scope=_key_scope(redeemer))


@router.get("/merchants/{merchant_id}/vouchers", response_model=Page[VoucherOut])
async def merchant_vouchers(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: StatusQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[VoucherOut]:
    """A merchant's vouchers, newest first (its staff): codes are shown only by their last
    characters, so that a list is no key to the counter."""
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.run_raw(
        service.list_of_merchant, principal, merchant_id, status, after, limit + 1, write=False
    )
    return page_of(rows, limit, lambda v: VoucherOut.of(v, show=False))
