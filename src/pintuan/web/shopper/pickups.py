"""Pickup points on the shopper's pages: "Lead a pickup point" (the application and the points a
shopper leads, with their earnings), the leader's page of a point (the day's orders with their
codes, marking a deal's goods arrived, handing an order over by the code the shopper shows), and
choosing a point for a seat of a pickup deal from the team page.

Every form goes through the same service functions as the API, once per ``form_key``; a refusal
comes back as its code, worded by the page, so a crafted link cannot put text on it.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.pickups import PickupStatus, PointApplication, PointStatus
from pintuan.domain.roles import Principal
from pintuan.domain.vouchers import show_code
from pintuan.errors import AppError, InvalidInput
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.pickups import service as pickups
from pintuan.teams.models import Seat
from pintuan.vouchers.qr import qr_svg
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import ERROR_MESSAGES
from pintuan.web.kit.forms import form_fields, run_raw_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, safe_next

router = Router(include_in_schema=False)

ORDERS_SHOWN = 200
POINTS_SHOWN = 50

POINT_STATUSES: dict[str, str] = {
    PointStatus.PENDING.value: N_("Waiting for approval"),
    PointStatus.APPROVED.value: N_("Open"),
    PointStatus.REJECTED.value: N_("Rejected"),
    PointStatus.SUSPENDED.value: N_("Suspended"),
}
PICKUP_STATUSES: dict[str, str] = {
    PickupStatus.WAITING.value: N_("On its way"),
    PickupStatus.ARRIVED.value: N_("Ready to collect"),
    PickupStatus.HANDED_OVER.value: N_("Handed over"),
    PickupStatus.REFUNDED.value: N_("Not collected: refunded"),
    PickupStatus.CANCELLED.value: N_("Cancelled"),
}
NOTICES: dict[str, str] = {
    "applied": N_("Thank you: your pickup point waits for an operator's approval."),
    "arrived": N_("The goods are marked as arrived; their shoppers are told."),
    "handed_over": N_(
        "Handed over: your commission is frozen until the order's refund window closes, then "
        "paid into your wallet."
    ),
    "chosen": N_("Your order will wait for you at this pickup point."),
}


def _said(request: Request, locale: str) -> tuple[str | None, str | None]:
    """(notice, refusal) a form came back with (``?done=`` or ``?error=``), in the viewer's
    words; unknown words show nothing."""
    done = request.query_params.get("done", "")
    code = request.query_params.get("error", "")
    notice = gettext(locale, NOTICES[done]) if done in NOTICES else None
    error = gettext(locale, ERROR_MESSAGES[code]) if code in ERROR_MESSAGES else None
    return notice, error


def _back(url: str, anchor: str, **said: str) -> RedirectResponse:
    path, _, _ = url.partition("#")
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joiner}{urlencode(said)}#{anchor}", status_code=303)


def pickup_qr(code: str) -> Markup:
    """A pickup code as a QR image drawn into the page, for the leader's camera."""
    return Markup(qr_svg(code))  # noqa: S704 - segno's SVG of a code of our own alphabet


# ---------------------------------------------------------------------------- leading a point


@router.get("/pickup-points", response_class=HTMLResponse)
async def my_points_page(request: Request, principal: LoggedIn) -> Response:
    """The points the shopper leads or applied for, their earnings, and the application form."""
    return await _points_page(request, principal)


async def _points_page(
    request: Request,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    def read(tx: RawTx) -> dict[str, Any]:
        return {
            "points": pickups.points_of_leader(tx, principal.user_id, None, POINTS_SHOWN),
            "earnings": pickups.earnings_of_leader(tx, principal.user_id),
        }

    context = await services_of(request).db.run_raw(read, write=False)
    notice, refused = _said(request, request_locale(request, principal))
    context.update(
        statuses=POINT_STATUSES,
        form=form or {},
        notice=notice,
        error=error or refused,
    )
    return await render(request, "shopper/pickup_points.html", context, status_code=status_code)


@router.post("/pickup-points", dependencies=[CsrfProtected])
async def apply_for_point(request: Request, principal: LoggedIn) -> Response:
    """Apply to lead a pickup point, once per form; a refusal shows the form again."""
    fields = await form_fields(request)
    try:
        capacity = int(fields.get("capacity_per_day", "").strip() or "0")
    except ValueError:
        capacity = 0
    application = PointApplication(
        name=fields.get("name", ""),
        address=fields.get("address", ""),
        opening_hours=fields.get("opening_hours", ""),
        capacity_per_day=capacity,
    )

    def work(tx: RawTx) -> dict[str, str]:
        return {"id": pickups.apply_for_point(tx, principal.user_id, application, utc_now()).id}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except InvalidInput as refused:
        locale = request_locale(request, principal)
        problem = gettext(
            locale,
            N_("Check the fields: each is needed, and the capacity is 1 to 10000 orders a day."),
        )
        return await _points_page(
            request, principal, form=fields, error=problem, status_code=refused.status
        )
    return RedirectResponse("/pickup-points?done=applied", status_code=303)


@router.get("/pickup-points/{point_id}", response_class=HTMLResponse)
async def leader_page(
    request: Request, point_id: str, principal: LoggedIn, day: date | None = None
) -> Response:
    """A point's orders of one day (its leader's, or an operator's view): codes and states, the
    deals whose goods are on their way (to mark arrived), the hand-over box and the earnings."""
    now = utc_now()

    def read(tx: RawTx) -> dict[str, Any]:
        point = pickups.get_point(tx, point_id)
        shown = day.isoformat() if day else pickups.point_day(point.time_zone, now)
        orders = pickups.orders_of_point(tx, principal, point_id, shown, None, ORDERS_SHOWN)
        waiting: dict[str, str] = {}
        for order in orders:
            if order.status == PickupStatus.WAITING and order.seat_status == "confirmed":
                waiting.setdefault(order.deal_id, order.deal_title)
        return {
            "point": point,
            "day": shown,
            "orders": orders,
            "waiting_deals": waiting,
            "earnings": pickups.earnings_of_leader(tx, point.leader_id),
        }

    context = await services_of(request).db.run_raw(read, write=False)
    notice, error = _said(request, request_locale(request, principal))
    context.update(
        statuses=PICKUP_STATUSES,
        point_statuses=POINT_STATUSES,
        show_code=show_code,
        notice=notice,
        error=error,
    )
    return await render(request, "shopper/pickup_point.html", context)


@router.post("/pickup-points/{point_id}/arrivals", dependencies=[CsrfProtected])
async def mark_arrived(request: Request, point_id: str, principal: LoggedIn) -> Response:
    """The goods of a deal reached the point: its waiting orders are ready to collect."""
    fields = await form_fields(request)
    back = safe_next(fields.get("next"), f"/pickup-points/{point_id}")

    def work(tx: RawTx) -> dict[str, int]:
        deal_id = fields.get("deal_id", "")
        return {"arrived": pickups.mark_arrived(tx, principal, point_id, deal_id, utc_now())}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500:
            raise
        return _back(back, "orders", error=refused.code)
    return _back(back, "orders", done="arrived")


@router.post("/pickup-points/{point_id}/handover", dependencies=[CsrfProtected])
async def hand_over(request: Request, point_id: str, principal: LoggedIn) -> Response:
    """Hand an order over by the code its shopper shows, once per form."""
    fields = await form_fields(request)
    back = safe_next(fields.get("next"), f"/pickup-points/{point_id}")

    def work(tx: RawTx) -> dict[str, str]:
        return {"seat_id": pickups.hand_over(tx, principal, fields.get("code", ""), utc_now()).id}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500:
            raise
        return _back(back, "handover", error=refused.code)
    return _back(back, "handover", done="handed_over")


# ---------------------------------------------------------------------------- a shopper's order


def pickup_of_seat(
    session: Session, principal: Principal | None, seat: Seat | None, deal: Deal
) -> dict[str, Any] | None:
    """What the team page shows of the viewer's seat of a pickup deal: the point chosen and its
    code, or the open points to choose from. None for other deals and visitors."""
    if principal is None or seat is None or deal.pickup_unclaimed_days is None:
        return None
    tx = raw_tx(session)
    chosen = pickups.pickups_of_seats(tx, [seat.id]).get(seat.id)
    can_choose = seat.status in ("held", "paid", "confirmed") and (
        chosen is None or chosen.status == PickupStatus.WAITING
    )
    points = (
        pickups.points_of_status(tx, PointStatus.APPROVED, None, POINTS_SHOWN) if can_choose else []
    )
    return {"seat": seat, "chosen": chosen, "points": points, "can_choose": can_choose}


def pickup_labels() -> dict[str, Any]:
    """What the pickup blocks of the team and order pages need from here."""
    return {"pickup_statuses": PICKUP_STATUSES, "pickup_code": show_code, "pickup_qr": pickup_qr}


def pickup_messages(request: Request, locale: str) -> dict[str, str | None]:
    """The notice or refusal the pickup form came back with (``?pickup=`` or
    ``?pickup_error=``), in the viewer's words."""
    done = request.query_params.get("pickup", "")
    code = request.query_params.get("pickup_error", "")
    return {
        "pickup_notice": gettext(locale, NOTICES[done]) if done in NOTICES else None,
        "pickup_error": gettext(locale, ERROR_MESSAGES[code]) if code in ERROR_MESSAGES else None,
    }


@router.post("/seats/{seat_id}/pickup", dependencies=[CsrfProtected])
async def choose_point(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Collect the seat at the chosen point, through the same service as
    ``POST /v1/seats/{seat_id}/pickup``; back to the page, at the pickup block."""
    fields = await form_fields(request)
    back = safe_next(fields.get("next"), "/orders")

    def work(tx: RawTx) -> dict[str, str]:
        point_id = fields.get("pickup_point_id", "")
        return {
            "seat_id": pickups.choose_point(tx, principal.user_id, seat_id, point_id, utc_now()).id
        }

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "seat_not_found":
            raise
        return _back(back, "pickup", pickup_error=refused.code)
    return _back(back, "pickup", pickup="chosen")
