"""The operator console: merchants to approve or suspend, deals to moderate, refunds across
merchants, users, the invariant audit, and reconciliation with the payment providers.

Every page is for platform operators only (403 for anybody else). Actions are plain forms with
the CSRF token and a ``form_key``, and call the same service functions as the JSON API.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.audit import runs
from pintuan.audit.runs import AuditRunView, AuditSource
from pintuan.audit.service import audit_database
from pintuan.auditlog import service as auditlog
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.lifecycle import (
    DEAL_TRANSITIONS,
    MERCHANT_TRANSITIONS,
    MODERATION_TRANSITIONS,
    DealStatus,
    MerchantStatus,
)
from pintuan.domain.roles import Principal, Role
from pintuan.errors import AppError, InvalidInput, NotFound, ProviderUnavailable
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.ledger import api as ledger_api
from pintuan.ledger import findings
from pintuan.merchants import service as merchants
from pintuan.merchants.models import Merchant
from pintuan.ops import directory
from pintuan.payments import reports as money_reports
from pintuan.payments.reports import RefundState
from pintuan.web.console import merchant_form, shared
from pintuan.web.console.merchant_form import MerchantForm
from pintuan.web.console.shared import PAGE_SIZE, choice, clean_text, listing, with_done
from pintuan.web.kit import queries
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator, safe_next

router = Router(prefix="/console/operator", include_in_schema=False)

MERCHANT_ACTIONS = tuple(MERCHANT_TRANSITIONS)  # approve, suspend
# Operators moderate: they may stop a deal for a while or for good, not put it live. Only a
# moderated deal stays stopped: its merchant may publish a paused one again.
MODERATION_ACTIONS = ("pause", "moderate", "unmoderate", "end")
MODERATED_STATUSES = {k: shared.DEAL_STATUSES[k] for k in ("live", "paused", "moderated", "ended")}
USER_ACTIONS = ("disable", "enable")
AUDIT_HISTORY = 10


def _base(request: Request, principal: Principal, tab: str) -> dict[str, Any]:
    locale = request_locale(request, principal)
    context: dict[str, Any] = {
        "tab": tab,
        "labels": shared,
        "tone": lambda status: shared.STATUS_TONES.get(status, ""),
    }
    notice = shared.done_notice(request, locale)
    if notice is not None:
        context["notice"] = notice
    return context


async def _back(request: Request, fallback: str, done: str) -> Response:
    """Back to the list the form was on, with its filters, saying what was done."""
    target = safe_next((await form_fields(request)).get("next"), fallback)
    if not target.startswith("/console/operator"):
        target = fallback
    return RedirectResponse(with_done(target, done), status_code=303)


# ---------------------------------------------------------------------------- overview


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, principal: Operator) -> Response:
    def work(session: Session) -> tuple[int, bool, AuditRunView | None]:
        pending = merchants.list_merchants(
            session, principal, status=MerchantStatus.PENDING, cursor=None, limit=PAGE_SIZE
        )
        failing = money_reports.list_all_refunds(
            session, principal, state=RefundState.FAILING, cursor=None, limit=1
        )
        return len(pending), bool(failing), runs.latest_audit_run(session, principal)

    # A report: whether any refund is failing reads payments newest first (off the loop).
    pending, failing, latest = await services_of(request).db.report(work)
    context = _base(request, principal, "overview")
    context.update(
        pending=pending, more_pending=pending > PAGE_SIZE, failing=failing, latest=latest
    )
    return await render(request, "operator/overview.html", context)


# ---------------------------------------------------------------------------- merchants


@router.get("/merchants", response_class=HTMLResponse)
async def merchant_list(
    request: Request, principal: Operator, status: str | None = None, cursor: str | None = None
) -> Response:
    return await _merchant_list(request, principal, status, cursor)


async def _merchant_list(
    request: Request,
    principal: Principal,
    status: str | None,
    cursor: str | None,
    form: MerchantForm | None = None,
    status_code: int = 200,
) -> Response:
    chosen = choice(status, shared.MERCHANT_STATUSES) if status != "all" else None
    if status is None:
        chosen = MerchantStatus.PENDING.value  # the work waiting first
    rows = await services_of(request).db.read_stale(
        lambda s: merchants.list_merchants(
            s,
            principal,
            status=MerchantStatus(chosen) if chosen else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    )
    context = _base(request, principal, "merchants")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda m: m.id),
        status=chosen or "all",
        actions={
            m.id: [
                a for a in MERCHANT_ACTIONS if MerchantStatus(m.status) in MERCHANT_TRANSITIONS[a]
            ]
            for m in rows
        },
        new_merchant=form or MerchantForm({"time_zone": principal.time_zone}),
        countries=merchant_form.countries(request_locale(request, principal)),
    )
    return await render(request, "operator/merchants.html", context, status_code=status_code)


@router.post("/merchants", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def create_merchant(request: Request, principal: Operator) -> Response:
    """Register a merchant from the console; it waits for approval like any other."""
    locale = request_locale(request, principal)
    form, body = merchant_form.parse_merchant(await form_fields(request), locale)
    if body is None:
        return await _merchant_list(request, principal, None, None, form, 422)
    valid = body

    def work(session: Session) -> dict[str, str]:
        new = merchants.NewMerchant(**valid.model_dump())
        return {"merchant_id": merchants.create_merchant(session, principal, new).id}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.code != "slug_taken":
            raise
        form.errors["slug"] = error_message(refused, locale)
        return await _merchant_list(request, principal, None, None, form, refused.status)
    return RedirectResponse(
        "/console/operator/merchants?status=pending&done=merchant_created", status_code=303
    )


@router.post(
    "/merchants/{merchant_id}/{action}", response_class=HTMLResponse, dependencies=[CsrfProtected]
)
async def change_merchant_status(
    request: Request, merchant_id: str, action: str, principal: Operator
) -> Response:
    """Approve or suspend a merchant; a suspension says why (kept in the audit log)."""
    if action not in MERCHANT_ACTIONS:
        raise NotFound("No such action.", code="not_found")

    reason = auditlog.clean_reason(action, (await form_fields(request)).get("reason"))

    def work(session: Session) -> dict[str, str]:
        merchant: Merchant = merchants.change_merchant_status(
            session, principal, merchant_id, action, reason=reason
        )
        return {"status": merchant.status}

    await run_form_write(request, services_of(request), principal, work)
    return await _back(request, "/console/operator/merchants", action)


# ---------------------------------------------------------------------------- deals


@router.get("/deals", response_class=HTMLResponse)
async def deal_list(
    request: Request,
    principal: Operator,
    status: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = choice(status, MODERATED_STATUSES) or DealStatus.LIVE.value
    filters = deals.DealFilters(status=DealStatus(chosen), text=clean_text(text))

    def work(session: Session) -> tuple[list[Deal], dict[str, str]]:
        rows = deals.list_deals(session, principal, filters, cursor=cursor, limit=PAGE_SIZE)
        return rows, queries.merchant_names(session, [d.merchant_id for d in rows])

    rows, names = await services_of(request).db.read_stale(work)
    context = _base(request, principal, "deals")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda d: d.id),
        merchant_names=names,
        status=chosen,
        statuses=MODERATED_STATUSES,
        text=filters.text or "",
        actions={d.id: _moderation_actions(DealStatus(d.status)) for d in rows},
    )
    return await render(request, "operator/deals.html", context)


def _moderation_actions(status: DealStatus) -> list[str]:
    return [
        a
        for a in MODERATION_ACTIONS
        if status in DEAL_TRANSITIONS.get(a, {}) or status in MODERATION_TRANSITIONS.get(a, {})
    ]


@router.post("/deals/{deal_id}/{action}", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def moderate_deal(
    request: Request, deal_id: str, action: str, principal: Operator
) -> Response:
    """Pause, stop (moderate), release or end any merchant's deal; all but a release say why."""
    if action not in MODERATION_ACTIONS:
        raise NotFound("No such action.", code="not_found")

    reason = auditlog.clean_reason(action, (await form_fields(request)).get("reason"))

    def work(session: Session) -> dict[str, str]:
        changed = deals.change_deal_status(session, principal, deal_id, action, reason=reason)
        return {"status": changed.status}

    await run_form_write(request, services_of(request), principal, work)
    return await _back(request, "/console/operator/deals", action)


# ---------------------------------------------------------------------------- refunds and users


@router.get("/refunds", response_class=HTMLResponse)
async def refund_list(
    request: Request,
    principal: Operator,
    state: str | None = None,
    merchant_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = choice(state, shared.REFUND_STATES)
    merchant = clean_text(merchant_id, 40)
    rows = await services_of(request).db.report_stale(
        lambda s: money_reports.list_all_refunds(
            s,
            principal,
            merchant_id=merchant,
            state=RefundState(chosen) if chosen else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    )
    context = _base(request, principal, "refunds")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda r: r.id), state=chosen, merchant_id=merchant
    )
    return await render(request, "operator/refunds.html", context)


@router.get("/users", response_class=HTMLResponse)
async def user_list(
    request: Request,
    principal: Operator,
    role: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = choice(role, shared.ROLES)
    search = clean_text(text)

    def work(session: Session) -> tuple[list[directory.UserRow], set[str]]:
        rows = directory.list_users(
            session,
            principal,
            role=Role(chosen) if chosen else None,
            text=search,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
        return rows, accounts.disabled_among(session, [u.id for u in rows])

    rows, disabled = await services_of(request).db.read_stale(work)
    context = _base(request, principal, "users")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda u: u.id),
        role=chosen,
        text=search or "",
        disabled=disabled,
    )
    return await render(request, "operator/users.html", context)


@router.post("/users/{user_id}/{action}", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def set_user_disabled(
    request: Request, user_id: str, action: str, principal: Operator
) -> Response:
    """Disable a user (signed out everywhere at once) or let them log in again."""
    if action not in USER_ACTIONS:
        raise NotFound("No such action.", code="not_found")

    def work(session: Session) -> dict[str, bool]:
        user = accounts.set_user_disabled(session, principal, user_id, action == "disable")
        return {"disabled": user.disabled_at is not None}

    await run_form_write(request, services_of(request), principal, work)
    return await _back(request, "/console/operator/users", action)


# ---------------------------------------------------------------------------- audit


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, principal: Operator) -> Response:
    history = await services_of(request).db.read(
        lambda s: runs.list_audit_runs(s, principal, cursor=None, limit=AUDIT_HISTORY)
    )
    context = _base(request, principal, "audit")
    context.update(latest=history[0] if history else None, history=history[:AUDIT_HISTORY])
    return await render(request, "operator/audit.html", context)


@router.post("/audit", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def run_audit(request: Request, principal: Operator) -> Response:
    """Check every invariant now (a read) and keep the result (a short write)."""
    services = services_of(request)
    started_at = utc_now()
    breaches = await services.db.report(audit_database, long=True)
    finished_at = utc_now()

    def work(session: Session) -> dict[str, str]:
        run = runs.record_audit_run(
            session,
            breaches,
            started_at=started_at,
            finished_at=finished_at,
            source=AuditSource.CONSOLE,
            ran_by=principal.user_id,
        )
        return {"run_id": run.id}

    await run_form_write(request, services, principal, work)
    return RedirectResponse("/console/operator/audit?done=audited", status_code=303)


# ---------------------------------------------------------------------------- reconciliation


@router.get("/reconciliation", response_class=HTMLResponse)
async def reconciliation_page(
    request: Request,
    principal: Operator,
    provider: str | None = None,
    day: str | None = Query(default=None, alias="date"),
) -> Response:
    """Our ledger against a provider's statement for one of its days: every difference."""
    services = services_of(request)
    context = _base(request, principal, "reconciliation")
    context.update(providers=sorted(services.providers), provider=provider, day=day or "")
    if provider and day:
        try:
            context["report"] = await ledger_api.reconciliation(
                principal, services, provider=provider, day=date.fromisoformat(day)
            )
        except ValueError:
            context["error"] = gettext(
                request_locale(request, principal), "Choose the statement day from the calendar."
            )
        except AppError as refused:
            if refused.status >= 500 and not isinstance(refused, ProviderUnavailable):
                raise
            context["error"] = error_message(refused, request_locale(request, principal))
    context["kept"] = await services.db.read(
        lambda s: findings.list_findings(
            s, principal, state=findings.FindingState.OPEN, cursor=None, limit=PAGE_SIZE
        )
    )
    return await render(request, "operator/reconciliation.html", context)


@router.post(
    "/reconciliation/findings/{finding_id}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def decide_finding(request: Request, finding_id: str, principal: Operator) -> Response:
    """Mark a kept reconciliation finding explained or fixed, with a note saying how."""
    fields = await form_fields(request)
    state = choice(fields.get("state"), ("explained", "fixed"))
    note = clean_text(fields.get("note"), 500)
    if state is None or note is None:
        raise InvalidInput(
            "Say how the difference was explained or fixed.", code="finding_note_required"
        )

    def work(session: Session) -> dict[str, str]:
        found = findings.decide_finding(
            session, principal, finding_id, findings.FindingState(state), note, utc_now()
        )
        return {"state": found.state}

    await run_form_write(request, services_of(request), principal, work)
    return RedirectResponse(with_done("/console/operator/reconciliation", state), status_code=303)
