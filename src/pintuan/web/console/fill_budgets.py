"""Auto-fill budgets on both consoles (``domain/autofill.py``): the merchant's own (its limit,
what filled seats used, and its teams that a budget filled) and the platform's, one per
currency, for operators. Each page has the form that sets the limit, which the service never
lets go below what is used."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.domain.autofill import PLATFORM_PAYER
from pintuan.domain.roles import Principal
from pintuan.errors import AppError, InvalidInput
from pintuan.fills import service as fills
from pintuan.kit.money import Money, MoneyError, is_currency
from pintuan.kit.routing import Router
from pintuan.teams import reports
from pintuan.web.console import shared
from pintuan.web.console.deal_form import parse_amount
from pintuan.web.console.shared import PAGE_SIZE, listing, with_done
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator, StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

SAVED = N_("The budget's limit is saved.")


def _limit(fields: dict[str, str], currency: str) -> Money:
    """The typed limit in major units as Money; ``InvalidInput`` when it is not an amount."""
    try:
        return Money(parse_amount(fields.get("limit", ""), currency), currency)
    except (ValueError, MoneyError) as exc:
        raise InvalidInput(
            "Enter the limit as an amount, such as 100 or 99.50.",
            extra={"errors": [{"field": "limit", "message": "not an amount"}]},
        ) from exc


async def _save(
    request: Request, principal: Principal, payer: str, currency: str, back: str
) -> Response:
    fields = await form_fields(request)
    locale = request_locale(request, principal)
    try:
        limit = _limit(fields, currency)
        await run_form_write(
            request,
            services_of(request),
            principal,
            lambda s: {"payer": fills.set_limit(s, principal, payer, limit).payer},
        )
    except AppError as refused:
        return RedirectResponse(
            back + "?" + _error_query(error_message(refused, locale)), status_code=303
        )
    return RedirectResponse(with_done(back, "saved"), status_code=303)


def _error_query(message: str) -> str:
    return urlencode({"error": message[:300]})


def _notices(request: Request, principal: Principal, context: dict[str, Any]) -> None:
    locale = request_locale(request, principal)
    if request.query_params.get("done") == "saved":
        context["notice"] = gettext(locale, SAVED)
    if error := request.query_params.get("error"):
        context["error"] = error[:300]


@router.get("/merchants/{merchant_id}/fill-budget", response_class=HTMLResponse)
async def merchant_budget(
    request: Request, merchant_id: str, principal: StaffOfMerchant, cursor: str | None = None
) -> Response:
    """The merchant's auto-fill budget and the teams a budget filled."""

    def read(session: Session) -> dict[str, Any]:
        merchant = reports.managed_merchant(session, principal, merchant_id)
        return {
            "merchant": merchant,
            "budgets": [fills.budget_of(session, merchant_id, merchant.currency)],
            "rows": fills.filled_teams(session, merchant_id, cursor=cursor, limit=PAGE_SIZE),
        }

    found = await services_of(request).db.report(read)
    context: dict[str, Any] = {
        "merchant": found["merchant"],
        "tab": "fill_budget",
        "labels": shared,
        "tone": lambda _status: "",
        "budgets": found["budgets"],
        "page": listing(request, found["rows"], PAGE_SIZE, lambda r: r.id),
        "action": f"/console/merchants/{merchant_id}/fill-budget",
        "currency": found["merchant"].currency,
    }
    _notices(request, principal, context)
    return await render(request, "merchant/fill_budget.html", context)


@router.post(
    "/merchants/{merchant_id}/fill-budget",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def save_merchant_budget(
    request: Request, merchant_id: str, principal: StaffOfMerchant
) -> Response:
    merchant = await services_of(request).db.read(reports.managed_merchant, principal, merchant_id)
    back = f"/console/merchants/{merchant_id}/fill-budget"
    return await _save(request, principal, merchant_id, merchant.currency, back)


@router.get("/operator/fill-budget", response_class=HTMLResponse)
async def platform_budget(
    request: Request, principal: Operator, cursor: str | None = None
) -> Response:
    """The platform's auto-fill budgets, per currency, and the teams they filled."""

    def read(session: Session) -> dict[str, Any]:
        return {
            "budgets": fills.budgets_of_platform(session),
            "rows": fills.filled_teams(session, PLATFORM_PAYER, cursor=cursor, limit=PAGE_SIZE),
        }

    found = await services_of(request).db.report(read)
    context: dict[str, Any] = {
        "tab": "fill_budget",
        "labels": shared,
        "tone": lambda _status: "",
        "budgets": found["budgets"],
        "page": listing(request, found["rows"], PAGE_SIZE, lambda r: r.id),
        "action": "/console/operator/fill-budget",
        "currency": None,
    }
    _notices(request, principal, context)
    return await render(request, "operator/fill_budget.html", context)


@router.post("/operator/fill-budget", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def save_platform_budget(request: Request, principal: Operator) -> Response:
    fields = await form_fields(request)
    currency = fields.get("currency", "").strip().upper()
    back = "/console/operator/fill-budget"
    if not is_currency(currency):
        locale = request_locale(request, principal)
        words = gettext(locale, N_("Choose a currency by its ISO 4217 code, such as USD."))
        return RedirectResponse(back + "?" + _error_query(words), status_code=303)
    return await _save(request, principal, PLATFORM_PAYER, currency, back)
