"""Bargains on the shopper's pages: "Start a bargain" from the deal page, the bargain's page
shared by link (the price reached, the floor, progress, the deadline, its helpers, "Help cut"
for friends and "Buy at …" for its owner, straight into the usual checkout), and "My bargains".

Every form goes through the same service functions as the API, once per ``form_key``; a refusal
comes back as its code, worded by the page. The pages give each browser a random, long-lived
``pt_device`` cookie: a bargain takes one cut per device (only a keyed hash of it is stored).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pintuan.bargains import service as bargains
from pintuan.bargains.api import DEVICE_COOKIE, cut_limits, helper_of
from pintuan.config import Environment
from pintuan.domain.bargains import BargainStatus
from pintuan.errors import AppError
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import RawTx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.web.console.shared import listing
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import ERROR_MESSAGES
from pintuan.web.kit.forms import run_raw_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, LoginRequired, PagePrincipal
from pintuan.web.shopper.shopping import _after_taking_seat

router = Router(include_in_schema=False)

PAGE_SIZE = 20
DEVICE_DAYS = 400  # the longest a browser keeps a cookie

STATUSES: dict[str, str] = {
    BargainStatus.OPEN.value: N_("Open"),
    BargainStatus.BOUGHT.value: N_("Bought"),
    BargainStatus.EXPIRED.value: N_("Ended"),
}
NOTICES: dict[str, str] = {
    "opened": N_("Your bargain is open: share it so friends cut the price."),
    "cut": N_("Thank you: you cut the price."),
}


def _said(request: Request, locale: str) -> tuple[str | None, str | None]:
    """(notice, refusal) a form came back with (``?done=`` or ``?error=``); unknown words
    show nothing."""
    done = request.query_params.get("done", "")
    code = request.query_params.get("error", "")
    notice = gettext(locale, NOTICES[done]) if done in NOTICES else None
    error = gettext(locale, ERROR_MESSAGES[code]) if code in ERROR_MESSAGES else None
    return notice, error


def _with_device(request: Request, response: Response) -> Response:
    """Give a browser its device id once, for as long as it keeps cookies."""
    if DEVICE_COOKIE not in request.cookies:
        response.set_cookie(
            DEVICE_COOKIE,
            secrets.token_urlsafe(18),
            max_age=int(timedelta(days=DEVICE_DAYS).total_seconds()),
            httponly=True,
            samesite="lax",
            secure=services_of(request).settings.env is Environment.PROD,
            path="/",
        )
    return response


def _back(bargain_id: str, **said: str) -> RedirectResponse:
    return RedirectResponse(
        f"/bargains/{quote(bargain_id)}?{urlencode(said)}#bargain", status_code=303
    )


@router.get("/bargains", response_class=HTMLResponse)
async def my_bargains(request: Request, principal: LoggedIn) -> Response:
    """The bargains the shopper opened, newest first."""
    cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    rows = await services_of(request).db.run_raw(
        bargains.bargains_of_owner, principal.user_id, after, PAGE_SIZE + 1, utc_now(), write=False
    )
    _, error = _said(request, request_locale(request, principal))
    context = {
        "page": listing(request, rows, PAGE_SIZE, lambda b: b.id, path="/bargains"),
        "statuses": STATUSES,
        "error": error,
    }
    return _with_device(request, await render(request, "shopper/bargains.html", context))


@router.get("/bargains/{bargain_id}", response_class=HTMLResponse)
async def bargain_page(request: Request, bargain_id: str, principal: PagePrincipal) -> Response:
    """A bargain, for anyone with its link: its price, floor, progress, deadline and helpers;
    friends help cut it, its owner buys at the price reached."""
    now = utc_now()

    def read(tx: RawTx) -> dict[str, Any]:
        bargain = bargains.get_bargain(tx, bargain_id, now)
        return {
            "bargain": bargain,
            "helpers": bargains.helpers_of(tx, bargain_id),
            "my_cut": bargains.cut_of_helper(tx, bargain_id, principal.user_id)
            if principal
            else None,
        }

    context = await services_of(request).db.run_raw(read, write=False)
    bargain = context["bargain"]
    notice, error = _said(request, request_locale(request, principal))
    base = services_of(request).settings.base_url.rstrip("/")
    context.update(
        is_owner=principal is not None and principal.user_id == bargain.owner_id,
        statuses=STATUSES,
        notice=notice,
        error=error,
        share_url=f"{base}/bargains/{bargain.id}",
        cut_so_far=bargain.start_amount - bargain.price_amount,
    )
    return _with_device(request, await render(request, "shopper/bargain.html", context))


@router.post("/deals/{deal_id}/bargains", dependencies=[CsrfProtected])
async def open_bargain(request: Request, deal_id: str, principal: PagePrincipal) -> Response:
    """Open a bargain on the deal, then go to its page to share it; one already open is
    shown instead."""
    if principal is None:
        raise LoginRequired(f"/deals/{quote(deal_id)}")

    def work(tx: RawTx) -> dict[str, str]:
        return {"id": bargains.open_bargain(tx, principal.user_id, deal_id, utc_now()).id}

    try:
        outcome = await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "deal_not_found":
            raise
        if refused.code == "bargain_already_open" and refused.extra.get("bargain_id"):
            return _back(str(refused.extra["bargain_id"]))
        return RedirectResponse(f"/bargains?{urlencode({'error': refused.code})}", 303)
    return _back(str(outcome["id"]), done="opened")


@router.post("/bargains/{bargain_id}/cuts", dependencies=[CsrfProtected])
async def cut_bargain(request: Request, bargain_id: str, principal: LoggedIn) -> Response:
    """Help cut a friend's bargain, once per form; back to its page either way."""
    services = services_of(request)
    helper = helper_of(request, services.settings, principal)
    limits = cut_limits(services.settings)

    def work(tx: RawTx) -> dict[str, int]:
        return {"position": bargains.cut(tx, helper, bargain_id, utc_now(), limits).position}

    try:
        await run_raw_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "bargain_not_found":
            raise
        return _with_device(request, _back(bargain_id, error=refused.code))
    return _with_device(request, _back(bargain_id, done="cut"))


@router.post("/bargains/{bargain_id}/purchase", dependencies=[CsrfProtected])
async def buy_at_bargain(request: Request, bargain_id: str, principal: LoggedIn) -> Response:
    """Buy at the price reached (a team of one, held), then pay for it as usual; an earlier
    purchase still held goes to its team page, to pay for that one."""
    services = services_of(request)
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx) -> dict[str, Any]:
        start = bargains.purchase(tx, principal.user_id, bargain_id, utc_now(), hold=hold)
        return {"team_id": start.team_id, "seat_id": start.seat.id, "status": start.seat.status}

    try:
        outcome = await run_raw_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "bargain_not_found":
            raise
        team_id = refused.extra.get("team_id")
        if refused.code == "bargain_already_bought" and team_id:
            return RedirectResponse(f"/teams/{quote(str(team_id))}", status_code=303)
        return _back(bargain_id, error=refused.code)
    return await _after_taking_seat(request, principal, outcome)
