"""Selling on Pintuan: the application form anyone signed in may fill in (``/sell``), and the
operator console's list of applications to approve or reject.

Approval creates the merchant, approved, with the applicant as its staff (see
``merchants.applications``); a rejection needs a reason, which the applicant reads on ``/sell``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import AppError, NotFound
from pintuan.kit.routing import Router
from pintuan.merchants import applications
from pintuan.merchants.applications import DECISIONS, ApplicationStatus, NewApplication
from pintuan.merchants.models import MerchantApplication
from pintuan.web.console import merchant_form, shared
from pintuan.web.console.merchant_form import MerchantForm
from pintuan.web.console.shared import PAGE_SIZE, choice, listing
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, Operator

router = Router(include_in_schema=False)


# ---------------------------------------------------------------------------- applying


async def _sell_page(
    request: Request,
    principal: Principal,
    form: MerchantForm | None = None,
    form_error: str | None = None,
    status_code: int = 200,
) -> Response:
    mine = await services_of(request).db.read(applications.my_applications, principal)
    context: dict[str, Any] = {
        "applications": mine,
        "pending": any(a.status == ApplicationStatus.PENDING.value for a in mine),
        "form": form or MerchantForm({"time_zone": principal.time_zone}),
        "form_error": form_error,
        "countries": merchant_form.countries(request_locale(request, principal)),
        "labels": shared,
        "tone": lambda status: shared.STATUS_TONES.get(status, ""),
        "done": request.query_params.get("done") == "applied",
    }
    return await render(request, "merchant/apply.html", context, status_code=status_code)


@router.get("/sell", response_class=HTMLResponse)
async def sell_page(request: Request, principal: LoggedIn) -> Response:
    """The "Sell on Pintuan" form, and what became of the viewer's applications."""
    return await _sell_page(request, principal)


@router.post("/sell", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def apply_to_sell(request: Request, principal: LoggedIn) -> Response:
    locale = request_locale(request, principal)
    form, body = merchant_form.parse_merchant(await form_fields(request), locale, with_pitch=True)
    if body is None:
        return await _sell_page(request, principal, form, status_code=422)
    new = NewApplication(
        name=body.name,
        slug=body.slug,
        country=body.country,
        currency=body.currency,
        time_zone=body.time_zone,
        pitch=form.values["pitch"],
    )

    def work(session: Session) -> dict[str, str]:
        return {"application_id": applications.apply_to_sell(session, principal, new).id}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.status in (401, 403):
            raise
        if refused.code == "slug_taken":
            form.errors["slug"] = error_message(refused, locale)
            return await _sell_page(request, principal, form, status_code=refused.status)
        return await _sell_page(
            request, principal, form, error_message(refused, locale), refused.status
        )
    return RedirectResponse("/sell?done=applied", status_code=303)


# ---------------------------------------------------------------------------- reviewing


@router.get("/console/operator/applications", response_class=HTMLResponse)
async def application_list(
    request: Request, principal: Operator, status: str | None = None, cursor: str | None = None
) -> Response:
    chosen = choice(status, shared.APPLICATION_STATUSES) if status != "all" else None
    if status is None:
        chosen = ApplicationStatus.PENDING.value

    def work(session: Session) -> list[tuple[MerchantApplication, str, str]]:
        return applications.list_applications(
            session,
            principal,
            status=ApplicationStatus(chosen) if chosen else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )

    rows = await services_of(request).db.read(work)
    context: dict[str, Any] = {
        "tab": "applications",
        "labels": shared,
        "tone": lambda s: shared.STATUS_TONES.get(s, ""),
        "page": listing(request, rows, PAGE_SIZE, lambda row: row[0].id),
        "status": chosen or "all",
    }
    notice = shared.done_notice(request, request_locale(request, principal))
    if notice is not None:
        context["notice"] = notice
    return await render(request, "operator/applications.html", context)


@router.post(
    "/console/operator/applications/{application_id}/{decision}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def decide_application(
    request: Request, application_id: str, decision: str, principal: Operator
) -> Response:
    """Approve an application (the merchant is created with the applicant as staff) or reject
    it with a reason."""
    if decision not in DECISIONS:
        raise NotFound("No such decision.", code="not_found")
    reason = (await form_fields(request)).get("reason")

    def work(session: Session) -> dict[str, str]:
        decided = applications.decide_application(
            session, principal, application_id, decision, reason=reason
        )
        return {"status": decided.status}

    await run_form_write(request, services_of(request), principal, work)
    done = "application_approved" if decision == "approve" else "application_rejected"
    return RedirectResponse(f"/console/operator/applications?done={done}", status_code=303)
