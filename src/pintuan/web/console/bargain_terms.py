"""A deal's bargain terms in the merchant console (``/console/merchants/{id}/deals/{id}/bargain``):
the floor price friends can cut the deal down to, how many cuts it takes and how long each
bargain stays open; saved and removed through the same service as
``PUT``/``DELETE /v1/deals/{deal_id}/bargain``, once per form."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.bargains import service as bargains
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.bargains import MAX_HELPERS, MAX_HOURS, MIN_HELPERS, MIN_HOURS, BargainTerms
from pintuan.domain.roles import Principal
from pintuan.errors import AppError, NotFound
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.teams import reports
from pintuan.web.console import shared
from pintuan.web.console.deal_form import amount_text, parse_amount
from pintuan.web.console.shared import with_done
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant

router = Router(prefix="/console/merchants", include_in_schema=False)

CHECK_FIELDS = N_(
    "Check the fields: the floor is a price below the list price by at least one cent per "
    "helper, with 2 to 100 helpers and 1 to 168 hours."
)
REMOVED = N_("The bargain terms are removed.")


def _deal(session: Session, principal: Principal, merchant_id: str, deal_id: str) -> Deal:
    deal = deals.visible_deal(session, principal, deal_id)
    if deal.merchant_id != merchant_id:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    return deal


async def _page(
    request: Request,
    principal: Principal,
    merchant_id: str,
    deal_id: str,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    def read(session: Session) -> dict[str, Any]:
        merchant = reports.managed_merchant(session, principal, merchant_id)
        deal = _deal(session, principal, merchant_id, deal_id)
        return {
            "merchant": merchant,
            "deal": deal,
            "terms": bargains.deal_terms(session, deal.id, deal.currency),
        }

    context = await services_of(request).db.read(read)
    locale = request_locale(request, principal)
    terms = context["terms"]
    deal = context["deal"]
    values = form or {
        "floor": amount_text(terms.floor_amount, deal.currency) if terms else "",
        "helpers": str(terms.helpers) if terms else "10",
        "hours": str(terms.hours) if terms else "24",
    }
    notice = shared.done_notice(request, locale)
    if request.query_params.get("done") == "removed":
        notice = gettext(locale, REMOVED)
    context.update(
        tab="deals",
        labels=shared,
        tone=lambda status: shared.STATUS_TONES.get(status, ""),
        values=values,
        error=error,
        notice=notice,
        limits={"helpers": (MIN_HELPERS, MAX_HELPERS), "hours": (MIN_HOURS, MAX_HOURS)},
        editable=deal.status in bargains.TERMS_STATUSES,
        list_price=amount_text(deal.list_price_amount, deal.currency),
    )
    return await render(request, "merchant/bargain_terms.html", context, status_code=status_code)


@router.get("/{merchant_id}/deals/{deal_id}/bargain", response_class=HTMLResponse)
async def terms_page(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    """The deal's bargain terms, to set, change or remove."""
    return await _page(request, principal, merchant_id, deal_id)


@router.post(
    "/{merchant_id}/deals/{deal_id}/bargain",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def save_terms(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    """Save the terms typed; a refusal shows the form again, saying what to fix."""
    fields = await form_fields(request)
    locale = request_locale(request, principal)
    deal = await services_of(request).db.read(_deal, principal, merchant_id, deal_id)
    try:
        terms = BargainTerms(
            parse_amount(fields.get("floor", ""), deal.currency),
            int(fields.get("helpers", "").strip()),
            int(fields.get("hours", "").strip()),
        )
    except ValueError:
        return await _page(
            request,
            principal,
            merchant_id,
            deal_id,
            form=fields,
            error=gettext(locale, CHECK_FIELDS),
            status_code=422,
        )

    def work(session: Session) -> dict[str, str]:
        bargains.set_terms(session, principal, deal_id, terms, deal.currency, utc_now())
        return {"deal_id": deal_id}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.status in (403, 404):
            raise
        message = (
            gettext(locale, CHECK_FIELDS)
            if refused.status == 422
            else error_message(refused, locale)
        )
        return await _page(
            request,
            principal,
            merchant_id,
            deal_id,
            form=fields,
            error=message,
            status_code=refused.status,
        )
    url = f"/console/merchants/{merchant_id}/deals/{deal_id}/bargain"
    return RedirectResponse(with_done(url, "saved"), status_code=303)


@router.post(
    "/{merchant_id}/deals/{deal_id}/bargain/remove",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def remove_terms(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    """Remove the terms; refused once shoppers opened bargains on them."""
    await services_of(request).db.read(_deal, principal, merchant_id, deal_id)

    def work(session: Session) -> dict[str, str]:
        bargains.remove_terms(session, principal, deal_id)
        return {"deal_id": deal_id}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.status in (403, 404):
            raise
        message = error_message(refused, request_locale(request, principal))
        return await _page(
            request, principal, merchant_id, deal_id, error=message, status_code=refused.status
        )
    url = f"/console/merchants/{merchant_id}/deals/{deal_id}/bargain"
    return RedirectResponse(with_done(url, "removed"), status_code=303)
