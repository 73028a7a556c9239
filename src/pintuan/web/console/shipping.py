"""The merchant console's shipping queue: orders of succeeded teams of goods with the address
each goes to, marked shipped one at a time (carrier and tracking number) or many at once by
uploading a CSV, which answers with a row-by-row report.

The queue is exported as the same CSV, so the packer fills in two columns and uploads it back.
Forms carry the CSRF token and a ``form_key``, and call the same service functions as the API.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from pintuan.domain.fulfilment import CSV_COLUMNS, CsvInvalid, QueueState, read_shipments_csv
from pintuan.domain.roles import Principal
from pintuan.errors import AppError
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.pagination import MAX_LIMIT, decode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.teams import reports
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, choice, listing
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

QUEUE_STATES: dict[str, str] = {
    QueueState.TO_SHIP.value: N_("To ship"),
    QueueState.AWAITING_ADDRESS.value: N_("Waiting for the address"),
    QueueState.SHIPPED.value: N_("Shipped"),
    QueueState.RECEIVED.value: N_("Received"),
}
# The refusals a packer meets, in words (the API's codes stay in the report too).
SHIPPING_ERRORS: dict[str, str] = {
    "validation_error": N_("Check the carrier and the tracking number."),
    "already_shipped": N_("Already shipped with another tracking number."),
    "address_missing": N_("The shopper has not chosen an address yet."),
    "not_ready_to_ship": N_("The team has not succeeded: nothing to ship yet."),
    "seat_not_found": N_("No such order in this shop."),
    "nothing_to_deliver": N_("This order is not for goods."),
    "duplicate_row": N_("This order is already on an earlier row."),
}
CSV_PROBLEMS: dict[str, str] = {
    "not_utf8": N_("Save the file as CSV in UTF-8 and upload it again."),
    "not_csv": N_("This file cannot be read as CSV."),
    "empty": N_("The file is empty."),
    "missing_columns": N_(
        "The first line must name the columns seat_id, carrier and tracking_number."
    ),
    "too_many_rows": N_("Upload at most 1,000 rows at once; split the file."),
    "no_file": N_("Choose a CSV file to upload."),
}
SHIPPED_NOTICE = N_("Marked shipped; the shopper is told.")
EXPORT_COLUMNS = (*CSV_COLUMNS, "recipient", "phone", "address", "deal")


def _url(merchant_id: str) -> str:
    return f"/console/merchants/{merchant_id}/shipping"


async def _queue_page(
    request: Request,
    principal: Principal,
    merchant_id: str,
    *,
    state: str | None,
    cursor: str | None = None,
    report: list[fulfilment.BulkResult] | None = None,
    upload_error: str | None = None,
    row_error: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    chosen = QueueState(state) if state in QUEUE_STATES else None
    cursor_id = decode_cursor(cursor) if cursor else None

    def read(session: Session) -> tuple[Merchant, list[fulfilment.QueueRow]]:
        merchant = reports.managed_merchant(session, principal, merchant_id)
        rows = fulfilment.shipping_queue(
            session, principal, merchant_id, chosen, cursor_id, PAGE_SIZE
        )
        return merchant, rows

    merchant, rows = await services_of(request).db.report(read)
    locale = request_locale(request, principal)
    context: dict[str, Any] = {
        "merchant": merchant,
        "tab": "shipping",
        "labels": shared,
        "tone": lambda status: shared.STATUS_TONES.get(status, ""),
        "page": listing(request, rows, PAGE_SIZE, lambda r: r.id, path=_url(merchant_id)),
        "state": chosen.value if chosen else "",
        "states": QUEUE_STATES,
        "columns": CSV_COLUMNS,
        "report": report,
        "report_counts": _counts(report) if report is not None else None,
        "upload_error": upload_error,
        "row_error": row_error,
        "problem_text": lambda code, detail: (
            gettext(locale, SHIPPING_ERRORS[code]) if code in SHIPPING_ERRORS else detail
        ),
    }
    if request.query_params.get("done") == "shipped":
        context["notice"] = gettext(locale, SHIPPED_NOTICE)
    return await render(request, "merchant/shipping.html", context, status_code=status_code)


def _counts(report: list[fulfilment.BulkResult]) -> dict[str, int]:
    return {
        outcome: sum(r.outcome == outcome for r in report)
        for outcome in ("shipped", "unchanged", "refused")
    }


@router.get("/merchants/{merchant_id}/shipping", response_class=HTMLResponse)
async def shipping_queue(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    state: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Orders to ship first (or those in another state), oldest first, with their address."""
    picked = choice(state, QUEUE_STATES) if state is not None else QueueState.TO_SHIP.value
    return await _queue_page(request, principal, merchant_id, state=picked, cursor=cursor)


@router.get("/merchants/{merchant_id}/shipping.csv")
async def shipping_export(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    """The orders to ship as the upload's CSV: fill in carrier and tracking_number, upload it."""
    rows = await services_of(request).db.report(
        lambda s: fulfilment.shipping_queue(
            s, principal, merchant_id, QueueState.TO_SHIP, None, MAX_LIMIT * 10
        )
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        address = row.address or {}
        writer.writerow(
            [
                row.id,
                "",
                "",
                _cell(address.get("recipient", "")),
                _cell(address.get("phone", "")),
                _cell(" / ".join(row.address_lines)),
                _cell(row.deal_title),
            ]
        )
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="shipping-{merchant_id}.csv"'},
    )


def _cell(value: str) -> str:
    """A spreadsheet runs a cell starting with = + - @ as a formula: keep shoppers' text text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.post(
    "/merchants/{merchant_id}/seats/{seat_id}/shipment",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def ship_one(
    request: Request, merchant_id: str, seat_id: str, principal: StaffOfMerchant
) -> Response:
    """Mark one order shipped with the carrier and tracking number typed on its row."""
    services = services_of(request)
    fields = await form_fields(request)

    def work(session: Session) -> dict[str, str]:
        reports.managed_merchant(session, principal, merchant_id)
        outcome = fulfilment.ship_many(
            session,
            principal,
            merchant_id,
            [
                fulfilment.BulkRow(
                    1, seat_id, fields.get("carrier", ""), fields.get("tracking_number", "")
                )
            ],
            utc_now(),
            auto_receive_days=services.settings.auto_receive_days,
        )[0]
        return {
            "outcome": outcome.outcome,
            "code": outcome.code or "",
            "detail": outcome.message or "",
        }

    try:
        done = await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status == 404 or refused.status >= 500:
            raise
        message = error_message(refused, request_locale(request, principal))
        return await _queue_page(
            request,
            principal,
            merchant_id,
            state=QueueState.TO_SHIP.value,
            row_error=(seat_id, message),
            status_code=refused.status,
        )
    if done["outcome"] == "refused":
        locale = request_locale(request, principal)
        code = str(done["code"])
        message = (
            gettext(locale, SHIPPING_ERRORS[code]) if code in SHIPPING_ERRORS else done["detail"]
        )
        return await _queue_page(
            request,
            principal,
            merchant_id,
            state=QueueState.TO_SHIP.value,
            row_error=(seat_id, str(message)),
            status_code={"validation_error": 422, "seat_not_found": 404}.get(code, 409),
        )
    return RedirectResponse(f"{_url(merchant_id)}?done=shipped", status_code=303)


@router.post(
    "/merchants/{merchant_id}/shipping/upload",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def upload_shipments(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    """Ship every good row of an uploaded CSV; the answer is the row-by-row report."""
    services = services_of(request)
    locale = request_locale(request, principal)
    upload = (await request.form()).get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise CsvInvalid("no_file", "Choose a CSV file to upload.")
        rows = read_shipments_csv(await upload.read())
    except CsvInvalid as refused:
        return await _queue_page(
            request,
            principal,
            merchant_id,
            state=QueueState.TO_SHIP.value,
            upload_error=gettext(locale, CSV_PROBLEMS[refused.reason]),
            status_code=422,
        )

    def work(session: Session) -> dict[str, Any]:
        results = fulfilment.ship_many(
            session,
            principal,
            merchant_id,
            [fulfilment.BulkRow(r.line, r.seat_id, r.carrier, r.tracking_number) for r in rows],
            utc_now(),
            auto_receive_days=services.settings.auto_receive_days,
        )
        return {
            "results": [
                [r.row, r.seat_id, r.outcome, r.code or "", r.message or ""] for r in results
            ]
        }

    done = await run_form_write(request, services, principal, work)
    report = [
        fulfilment.BulkResult(int(n), str(seat), str(outcome), code or None, message or None)
        for n, seat, outcome, code, message in done["results"]
    ]
    return await _queue_page(
        request, principal, merchant_id, state=QueueState.TO_SHIP.value, report=report
    )
