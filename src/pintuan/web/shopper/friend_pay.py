"""Friend pays (代付) in the browser: ask a friend to pay for a held seat, and pay for one."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from pintuan.errors import AppError, Conflict, Gone
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.payments.api import create_pay_link, pay_by_link
from pintuan.payments.pay_links import read_pay_link
from pintuan.payments.schemas import PaymentIn, PaymentOut
from pintuan.teams import reads as team_reads
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.i18n import N_, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.resume import resumable
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, page_principal
from pintuan.web.shopper import order_reads
from pintuan.web.shopper.shopping import checkout_provider

router = Router(include_in_schema=False)


@router.post("/seats/{seat_id}/pay-link", dependencies=[CsrfProtected])
@resumable
async def ask_a_friend(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Make the link for a friend to pay this held seat, and show it to share."""
    link = await create_pay_link(seat_id, principal, services_of(request))
    return RedirectResponse(f"/pay/{quote(link.token)}?shared=1", status_code=303)


async def _pay_link_page(
    request: Request, token: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    services = services_of(request)
    now = utc_now()
    secret = services.settings.secret_key
    try:
        seat_id, expires_at = read_pay_link(secret, token, now)
    except Gone:
        # The link died with the hold; the friend should still learn what became of the seat.
        seat_id, expires_at = read_pay_link(secret, token, now, expired_ok=True)
        status_code = Gone.status
    seat = await services.db.read(team_reads.seat_for_friend, seat_id)
    principal = await page_principal(request)
    state = await services.db.read(
        order_reads.pay_link_state, seat_id, principal.user_id if principal else None
    )
    closed = _why_not_payable(state, now) or (_HOLD_OVER if expires_at <= now else None)
    return await render(
        request,
        "shopper/pay_link.html",
        {
            "token": token,
            "seat": seat,
            "expires_at": expires_at,
            "link": f"{services.settings.base_url}/pay/{token}",
            "shared": request.query_params.get("shared") == "1",
            "signed_in": principal is not None,
            "closed": closed,
            "error": None if closed else error,
        },
        status_code=status_code,
    )


# Why a pay link has nothing left to pay, as the friend holding it should read it.
_TEAM_FAILED = N_("This team did not fill in time, so nobody pays: there is nothing to pay.")
_PAID_BY_YOU = N_("You paid for this seat. Thank you!")
_ALREADY_PAID = N_("This seat is already paid: there is nothing to pay.")
_TEAM_DONE = N_("This team is complete: there is nothing to pay.")
_RELEASED = N_("%(name)s's seat was given up before it was paid: there is nothing to pay.")
_HOLD_OVER = N_("%(name)s's hold on this seat has run out: there is nothing to pay.")


def _why_not_payable(state: order_reads.PayLinkState | None, now: datetime) -> str | None:
    """None while the seat can be paid; else the reason (its ``%(name)s`` is the seat's
    shopper), most telling first."""
    if state is None:
        return None
    if state.team_status == "failed":
        return _TEAM_FAILED
    if state.paid_by_viewer and state.seat_status in ("paid", "confirmed"):
        return _PAID_BY_YOU
    if state.seat_status in ("paid", "confirmed"):
        return _ALREADY_PAID
    if state.team_status == "succeeded":
        return _TEAM_DONE
    if state.seat_status in ("released", "refunded"):
        return _RELEASED
    if state.hold_expires_at is not None and state.hold_expires_at <= now:
        return _HOLD_OVER
    return None


@router.get("/pay/{token}")
async def pay_link_page(request: Request, token: str) -> Response:
    """What the friend sees: whose seat, which deal, how much, until when."""
    return await _pay_link_page(request, token)


@router.post("/pay/{token}", dependencies=[CsrfProtected])
@resumable
async def pay_for_a_friend(request: Request, token: str, principal: LoggedIn) -> Response:
    """Open the provider's page to pay for the friend's seat (the payment is the friend's own:
    money owed back goes to whoever paid)."""
    services = services_of(request)
    try:
        answer = await pay_by_link(
            token, PaymentIn(provider=checkout_provider(services)), request, principal, services
        )
    except AppError as refused:
        if refused.status >= 500:
            raise
        message = error_message(refused, request_locale(request, principal))
        return await _pay_link_page(request, token, error=message, status_code=refused.status)
    paid = PaymentOut.model_validate_json(bytes(answer.body))
    if paid.next_action is None or paid.next_action.url is None:
        raise Conflict("This payment has no page to pay on.", code="unknown_provider")
    return RedirectResponse(paid.next_action.url, status_code=303)
