"""The operator console's pickup points (``/console/operator/pickup-points``): the applications
to lead one, and the points open or suspended, each with the decision that fits its status
(approve, reject, suspend, reopen), through the same service as
``POST /v1/pickup-points/{id}/decision``, once per form."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pintuan.domain.pickups import PointStatus
from pintuan.errors import AppError, NotFound
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import RawTx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.pickups import service as pickups
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, choice, listing, with_done
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.forms import form_fields, run_raw_form_write
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator
from pintuan.web.shopper.pickups import POINT_STATUSES

router = Router(prefix="/console/operator", include_in_schema=False)

URL = "/console/operator/pickup-points"
# Each decision's word in the address, and whether it approves.
DECISIONS = {"approve": True, "reject": False}


@router.get("/pickup-points", response_class=HTMLResponse)
async def point_list(request: Request, principal: Operator) -> Response:
    """Pickup points in one status (``?status=``; the applications waiting by default)."""
    status = choice(request.query_params.get("status"), POINT_STATUSES) or "pending"
    cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    rows = await services_of(request).db.run_raw(
        pickups.points_of_status, PointStatus(status), after, PAGE_SIZE + 1, write=False
    )
    context = {
        "tab": "pickup_points",
        "labels": shared,
        "tone": lambda value: shared.STATUS_TONES.get(value, ""),
        "statuses": POINT_STATUSES,
        "status": status,
        "page": listing(request, rows, PAGE_SIZE, lambda p: p.id, path=URL),
        "notice": shared.done_notice(request, request_locale(request, principal)),
    }
    return await render(request, "operator/pickup_points.html", context)


@router.post(
    "/pickup-points/{point_id}/{decision}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def decide_point(
    request: Request, point_id: str, decision: str, principal: Operator
) -> Response:
    """Approve (or reopen) a point, or reject (or suspend) it, with the reason typed."""
    if decision not in DECISIONS:
        raise NotFound(f"No decision {decision!r}.", code="not_found")
    fields = await form_fields(request)
    back = f"{URL}?status={choice(fields.get('status'), POINT_STATUSES) or 'pending'}"

    def work(tx: RawTx) -> dict[str, str]:
        point = pickups.decide(
            tx, principal, point_id, DECISIONS[decision], fields.get("reason"), utc_now()
        )
        return {"status": point.status}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.status == 404:
            raise
        return RedirectResponse(back, status_code=303)  # decided meanwhile: the list says how
    return RedirectResponse(with_done(back, "saved"), status_code=303)
