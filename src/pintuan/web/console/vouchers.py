"""The merchant console's counter (``/console/merchants/{id}/vouchers``): staff type a voucher's
code (or scan its QR code with the device's camera, where the browser can), look it up, redeem
it at one of its shops, and undo a redemption made by mistake within
``PINTUAN_VOUCHER_UNDO_MINUTES``; below, the merchant's vouchers newest first, each code shown
only by its last three characters, so that the list is no key to the counter.

The counter is this merchant's: a person on the staff of several merchants (or an operator)
redeems here only this merchant's vouchers, and each redemption is recorded as made through the
console. The look-up is a read, posted rather than put in the address so that codes stay out of
histories and logs; redeeming and undoing carry a ``form_key`` and take effect once, through the
same service functions as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.domain.vouchers import RedeemedVia, VoucherStatus, show_code, undo_open
from pintuan.errors import AppError
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.teams import reports
from pintuan.vouchers import service as vouchers
from pintuan.vouchers.service import VoucherView
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, choice, listing
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_raw_form_write
from pintuan.web.kit.i18n import N_, gettext, instant_text, request_locale, viewer_time_zone
from pintuan.web.kit.rendering import render
from pintuan.web.kit.security import PERMISSIONS_POLICY
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant
from pintuan.web.shopper.orders import voucher_state

router = Router(prefix="/console", include_in_schema=False)

VOUCHER_STATUSES: dict[str, str] = {
    VoucherStatus.ISSUED.value: N_("Ready to use"),
    VoucherStatus.REDEEMED.value: N_("Redeemed"),
    VoucherStatus.REFUNDED.value: N_("Refunded"),
    VoucherStatus.EXPIRED.value: N_("Expired"),
}
VOUCHER_TONES: dict[str, str] = {
    VoucherStatus.REDEEMED.value: "good",
    VoucherStatus.REFUNDED.value: "bad",
    VoucherStatus.EXPIRED.value: "bad",
}
REDEEM_VIA: dict[str, str] = {
    RedeemedVia.CONSOLE.value: N_("at the counter"),
    RedeemedVia.API.value: N_("through the API"),
    RedeemedVia.APP.value: N_("by an app"),
}
REDEEMED_NOTICE = N_("Redeemed: the shopper's order now shows the voucher as used.")
UNDONE_NOTICE = N_("The redemption is undone: the voucher can be used again.")
# The counter's refusals that say more than the one table of error messages can.
USED_AT = N_("This voucher was already used on %(when)s at %(where)s.")
USED = N_("This voucher was already used on %(when)s.")
UNDO_CLOSED = N_("It is too late to undo: a redemption can be undone within %(window)s of it.")
# Only this page may use the camera, and only for this site: its script scans QR codes.
CAMERA_POLICY = PERMISSIONS_POLICY.replace("camera=()", "camera=(self)")


def _url(merchant_id: str) -> str:
    return f"/console/merchants/{merchant_id}/vouchers"


def _counter(principal: Principal, merchant_id: str) -> vouchers.Redeemer:
    """This merchant's counter, whoever stands at it (``StaffOfMerchant`` has checked that they
    may): a voucher of another merchant is refused here even when its staff opened the page."""
    return vouchers.Redeemer(principal.user_id, RedeemedVia.CONSOLE, frozenset({merchant_id}))


def _undo_until(undo_minutes: int, now: datetime) -> Callable[[VoucherView], datetime | None]:
    """Until when a voucher's redemption may be undone; None when it is not (or no longer)."""

    def until(v: VoucherView) -> datetime | None:
        if v.status != VoucherStatus.REDEEMED or v.redeemed_at is None:
            return None
        if not undo_open(v.redeemed_at, undo_minutes, now):
            return None
        return v.redeemed_at + timedelta(minutes=undo_minutes)

    return until


async def _counter_page(
    request: Request,
    principal: Principal,
    merchant_id: str,
    *,
    typed: str = "",
    found: VoucherView | None = None,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    """The counter (with the voucher looked up, if any) above the merchant's vouchers."""
    services = services_of(request)
    status = choice(request.query_params.get("status"), VOUCHER_STATUSES)
    cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor) if cursor else None

    def read(session: Session) -> tuple[Merchant, list[VoucherView]]:
        merchant = reports.managed_merchant(session, principal, merchant_id)
        rows = vouchers.list_of_merchant(
            raw_tx(session),
            principal,
            merchant_id,
            VoucherStatus(status) if status else None,
            after,
            PAGE_SIZE + 1,
        )
        return merchant, rows

    merchant, rows = await services.db.read(read)
    now = utc_now()
    context: dict[str, Any] = {
        "merchant": merchant,
        "tab": "vouchers",
        "labels": shared,
        "tone": lambda value: VOUCHER_TONES.get(value, ""),
        "statuses": VOUCHER_STATUSES,
        "via": REDEEM_VIA,
        "status": status or "",
        "page": listing(request, rows, PAGE_SIZE, lambda v: v.id, path=_url(merchant_id)),
        "typed": typed,
        "found": found,
        "error": error,
        "show_code": show_code,
        "voucher_state": lambda v: voucher_state(v, now),
        "undo_until": _undo_until(services.settings.voucher_undo_minutes, now),
    }
    if notice is not None:
        context["notice"] = notice
    page = await render(request, "merchant/vouchers.html", context, status_code=status_code)
    page.headers["permissions-policy"] = CAMERA_POLICY
    return page


async def _look_up_quietly(
    request: Request, counter: vouchers.Redeemer, typed: str
) -> VoucherView | None:
    """The voucher a code names, to show beside a refusal; None when there is none to show."""
    if not typed:
        return None
    try:
        return await services_of(request).db.run_raw(vouchers.look_up, counter, typed, write=False)
    except AppError as refused:
        if refused.status >= 500:
            raise
        return None


async def _refused(
    request: Request,
    principal: Principal,
    merchant_id: str,
    refused: AppError,
    typed: str,
) -> Response:
    """The counter again, saying in the viewer's words why nothing changed, with the voucher as
    it now stands when the code names one of this merchant's. A failure of ours (5xx) goes to
    the error page, as everywhere."""
    if refused.status >= 500:
        raise refused
    found = await _look_up_quietly(request, _counter(principal, merchant_id), typed)
    locale = request_locale(request, principal)
    message = error_message(refused, locale)
    if refused.code == "voucher_already_redeemed" and found and found.redeemed_at:
        when = instant_text(
            found.redeemed_at, viewer_time_zone(request, principal), locale, "short"
        )
        if found.redeemed_location:
            message = gettext(locale, USED_AT) % {"when": when, "where": found.redeemed_location}
        else:
            message = gettext(locale, USED) % {"when": when}
    elif refused.code == "voucher_undo_closed":
        minutes = services_of(request).settings.voucher_undo_minutes
        window = shared.duration_text(minutes * 60, locale)
        message = gettext(locale, UNDO_CLOSED) % {"window": window}
    return await _counter_page(
        request,
        principal,
        merchant_id,
        typed=typed,
        found=found,
        error=message,
        status_code=refused.status,
    )


async def _counter_write(
    request: Request,
    principal: Principal,
    merchant_id: str,
    typed: str,
    change: Callable[[RawTx], VoucherView],
    notice: str,
) -> Response:
    """Make one change at the counter, once per form (its ``form_key``), then show the counter
    with the voucher as it now stands and ``notice``; a refusal shows why instead."""

    def work(tx: RawTx) -> dict[str, str]:
        return {"voucher_id": change(tx).id}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        return await _refused(request, principal, merchant_id, refused, typed)
    counter = _counter(principal, merchant_id)
    return await _counter_page(
        request,
        principal,
        merchant_id,
        found=await _look_up_quietly(request, counter, typed),
        notice=gettext(request_locale(request, principal), notice),
    )


@router.get("/merchants/{merchant_id}/vouchers", response_class=HTMLResponse)
async def voucher_counter(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    """The counter's code field, then the merchant's vouchers (``?status=`` filters them)."""
    return await _counter_page(request, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/vouchers/lookup",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def look_up_voucher(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    """What a typed or scanned code is: its deal, price, status, validity and shops, with the
    button that fits (redeem, or undo a moment's redemption)."""
    typed = (await form_fields(request)).get("code", "").strip()
    counter = _counter(principal, merchant_id)
    try:
        found = await services_of(request).db.run_raw(vouchers.look_up, counter, typed, write=False)
    except AppError as refused:
        return await _refused(request, principal, merchant_id, refused, typed)
    return await _counter_page(
        request, principal, merchant_id, typed=show_code(found.code), found=found
    )


@router.post(
    "/merchants/{merchant_id}/vouchers/redeem",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def redeem_voucher(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    """Redeem the looked-up voucher, at the shop chosen when it lists several, once per form."""
    fields = await form_fields(request)
    typed = fields.get("code", "").strip()
    location = fields.get("location", "").strip() or None
    counter = _counter(principal, merchant_id)

    def work(tx: RawTx) -> VoucherView:
        return vouchers.redeem(tx, counter, typed, location, utc_now())

    return await _counter_write(request, principal, merchant_id, typed, work, REDEEMED_NOTICE)


@router.post(
    "/merchants/{merchant_id}/vouchers/{voucher_id}/undo",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def undo_redemption(
    request: Request, merchant_id: str, voucher_id: str, principal: StaffOfMerchant
) -> Response:
    """Undo a redemption made by mistake, within the undo window; once per form. From the
    looked-up voucher the form also carries its code, to show the voucher ready again."""
    typed = (await form_fields(request)).get("code", "").strip()
    counter = _counter(principal, merchant_id)
    minutes = services_of(request).settings.voucher_undo_minutes

    def work(tx: RawTx) -> VoucherView:
        return vouchers.undo_redemption(tx, counter, voucher_id, minutes, utc_now())

    return await _counter_write(request, principal, merchant_id, typed, work, UNDONE_NOTICE)
