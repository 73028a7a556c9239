"""The merchant console: dashboard, deals (list, editor, publish / pause / end), teams, orders,
refunds and settlement statements of one merchant.

Every page is for the merchant's staff and for operators: the route's dependency refuses
anybody else (403), and the services check again and answer "not found" for data of another
merchant, so an id of merchant B typed into merchant A's pages shows nothing of B. Forms carry
the CSRF token and a ``form_key``, and call the same service functions as the JSON API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.auditlog import service as auditlog
from pintuan.auditlog.service import AuditRow
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.lifecycle import DEAL_TRANSITIONS, DealStatus
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.errors import AppError, Forbidden, NotFound
from pintuan.kit.pagination import MAX_LIMIT, decode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.ledger import reads as ledger_reads
from pintuan.ledger import settlement
from pintuan.ledger.models import SettlementStatement
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import get_merchant
from pintuan.payments import reports as money_reports
from pintuan.payments.reports import OrderFilters, RefundState
from pintuan.teams import reports
from pintuan.teams.reports import TeamFilters
from pintuan.web.console import deal_form, shared
from pintuan.web.console.deal_form import DealForm
from pintuan.web.console.shared import AUDIT_LOG_SIZE, PAGE_SIZE, choice, clean_text, listing
from pintuan.web.kit import queries
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

DASHBOARD_PERIODS = ("7", "30", "90")
DEAL_ACTIONS = tuple(DEAL_TRANSITIONS)  # publish, pause, end


def _base(request: Request, principal: Principal, merchant: Merchant, tab: str) -> dict[str, Any]:
    """What every merchant page's layout needs."""
    locale = request_locale(request, principal)
    context: dict[str, Any] = {
        "merchant": merchant,
        "tab": tab,
        "labels": shared,
        "tone": lambda status: shared.STATUS_TONES.get(status, ""),
    }
    notice = shared.done_notice(request, locale)
    if notice is not None:
        context["notice"] = notice
    return context


async def _merchant(request: Request, principal: Principal, merchant_id: str) -> Merchant:
    return await services_of(request).db.read(reports.managed_merchant, principal, merchant_id)


async def _recent_deals(request: Request, principal: Principal, merchant_id: str) -> list[Deal]:
    """The merchant's latest deals, for the filters' deal choice."""
    filters = deals.DealFilters(merchant_id=merchant_id)
    return await services_of(request).db.read_stale(
        lambda s: deals.list_deals(s, principal, filters, cursor=None, limit=MAX_LIMIT)[:MAX_LIMIT]
    )


# ---------------------------------------------------------------------------- entry


@router.get("", response_class=HTMLResponse)
async def console_home(request: Request, principal: LoggedIn) -> Response:
    """Operators go to their console; staff of one merchant to its dashboard."""
    if principal.is_operator:
        return RedirectResponse("/console/operator", status_code=303)
    merchant_ids = sorted(principal.merchant_ids)
    if not merchant_ids:
        raise Forbidden(
            "Only merchant staff and operators have a console.", code="not_merchant_staff"
        )
    if len(merchant_ids) == 1:
        return RedirectResponse(f"/console/merchants/{merchant_ids[0]}", status_code=303)
    merchants = await services_of(request).db.read(
        lambda s: [get_merchant(s, merchant_id) for merchant_id in merchant_ids]
    )
    return await render(request, "merchant/choose.html", {"merchants": merchants, "labels": shared})


# ---------------------------------------------------------------------------- dashboard


@router.get("/merchants/{merchant_id}", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    days: str | None = None,
    deal_id: str | None = None,
) -> Response:
    period = int(days) if days in DASHBOARD_PERIODS else 30
    chosen_deal = clean_text(deal_id, 40)
    board = await services_of(request).db.report_stale(
        lambda s: reports.merchant_dashboard(
            s, principal, merchant_id, days=period, deal_id=chosen_deal
        )
    )
    merchant = await _merchant(request, principal, merchant_id)
    locale = request_locale(request, principal)
    context = _base(request, principal, merchant, "dashboard")
    context.update(
        board=board,
        period=period,
        periods=DASHBOARD_PERIODS,
        deal_id=chosen_deal,
        deals=await _recent_deals(request, principal, merchant_id),
        charts=shared.dashboard_charts(board, locale),
        audit_entries=await _audit_entries(request, principal, merchant_id),
        duration=lambda seconds: shared.duration_text(seconds, locale),
        rate=lambda value: shared.rate_text(value, locale),
    )
    return await render(request, "merchant/dashboard.html", context)


# ---------------------------------------------------------------------------- deals


@router.get("/merchants/{merchant_id}/deals", response_class=HTMLResponse)
async def deal_list(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    status: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    chosen = choice(status, shared.DEAL_STATUSES)
    filters = deals.DealFilters(
        merchant_id=merchant_id,
        status=DealStatus(chosen) if chosen else None,
        text=clean_text(text),
    )

    def work(session: Session) -> tuple[list[Deal], dict[str, int]]:
        rows = deals.list_deals(session, principal, filters, cursor=cursor, limit=PAGE_SIZE)
        forming = queries.forming_team_counts(session, [d.id for d in rows], utc_now())
        return rows, forming

    rows, forming = await services_of(request).db.read_stale(work)
    context = _base(request, principal, merchant, "deals")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda d: d.id),
        forming=forming,
        status=chosen,
        text=filters.text or "",
    )
    return await render(request, "merchant/deals.html", context)


def _new_values(merchant: Merchant) -> dict[str, str]:
    start = utc_now().replace(second=0, microsecond=0)
    return {
        "title": "",
        "description": "",
        "vertical": Vertical.GOODS.value,
        "list_price": "",
        "group_price": "",
        "leader_price": "",
        "new_shoppers_only": "",
        "allow_solo": "on",
        "team_size": "2",
        "team_window_minutes": "1440",
        "stock": "100",
        "per_user_limit": "1",
        "starts_at": deal_form.local_text(start, merchant.time_zone),
        "ends_at": deal_form.local_text(start + timedelta(days=14), merchant.time_zone),
        "flash_sale": "",
        "lottery_coupon_days": deal_form.DEFAULT_COUPON_DAYS,
    }


async def _editor(
    request: Request,
    principal: Principal,
    merchant: Merchant,
    deal: Deal | None,
    form: DealForm,
    status_code: int = 200,
    picture_error: str | None = None,
) -> Response:
    status = DealStatus(deal.status) if deal else DealStatus.DRAFT
    context = _base(request, principal, merchant, "deals")
    context.update(
        deal=deal,
        form=form,
        editable=deal_form.editable_fields(status),
        actions=[a for a in DEAL_ACTIONS if deal and status in DEAL_TRANSITIONS[a]],
        verticals=shared.VERTICALS,
        example_price=deal_form.example_price(merchant.currency),
        ladder_example=deal_form.ladder_example(merchant.currency),
        coupon_example=deal_form.example_price(merchant.currency, 300),
        picture_error=picture_error,
        audit_entries=await _audit_entries(request, principal, merchant.id, deal.id)
        if deal
        else [],
    )
    return await render(request, "merchant/deal_form.html", context, status_code=status_code)


async def deal_editor_with_picture_error(
    request: Request,
    principal: Principal,
    merchant_id: str,
    deal_id: str,
    message: str,
    status_code: int,
) -> Response:
    """The deal editor again, saying why a picture was refused (see deal_images.py)."""
    merchant = await _merchant(request, principal, merchant_id)
    deal = await services_of(request).db.read(_merchant_deal, principal, merchant_id, deal_id)
    form = DealForm(deal_form.values_of(deal, merchant.time_zone))
    return await _editor(
        request, principal, merchant, deal, form, status_code, picture_error=message
    )


async def _audit_entries(
    request: Request, principal: Principal, merchant_id: str, target_id: str | None = None
) -> list[AuditRow]:
    """The latest audit log entries of the merchant, or of one of its deals."""
    return await services_of(request).db.read(
        lambda s: auditlog.list_actions(
            s, principal, merchant_id, target_id=target_id, cursor=None, limit=AUDIT_LOG_SIZE
        )[:AUDIT_LOG_SIZE]
    )


def _merchant_deal(session: Session, principal: Principal, merchant_id: str, deal_id: str) -> Deal:
    """The deal, if it is this merchant's; a deal of another merchant is not found here."""
    deal = deals.visible_deal(session, principal, deal_id)
    if deal.merchant_id != merchant_id:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    return deal


@router.get("/merchants/{merchant_id}/deals/new", response_class=HTMLResponse)
async def new_deal_page(request: Request, merchant_id: str, principal: StaffOfMerchant) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    return await _editor(request, principal, merchant, None, DealForm(_new_values(merchant)))


@router.post(
    "/merchants/{merchant_id}/deals", response_class=HTMLResponse, dependencies=[CsrfProtected]
)
async def create_deal(request: Request, merchant_id: str, principal: StaffOfMerchant) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    locale = request_locale(request, principal)
    fields = await form_fields(request)
    form, draft = deal_form.parse_new_deal(
        fields, merchant.id, merchant.currency, merchant.time_zone, locale
    )
    if draft is None:
        return await _editor(request, principal, merchant, None, form, status_code=422)
    valid_draft = draft

    def work(session: Session) -> dict[str, str]:
        return {"deal_id": deals.create_deal(session, principal, valid_draft).id}

    try:
        outcome = await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        deal_form.apply_refusal(form, refused, merchant.currency, locale)
        return await _editor(request, principal, merchant, None, form, refused.status)
    return RedirectResponse(
        f"/console/merchants/{merchant.id}/deals/{outcome['deal_id']}?done=created",
        status_code=303,
    )


@router.get("/merchants/{merchant_id}/deals/{deal_id}", response_class=HTMLResponse)
async def deal_page(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    deal = await services_of(request).db.read(_merchant_deal, principal, merchant_id, deal_id)
    form = DealForm(deal_form.values_of(deal, merchant.time_zone))
    return await _editor(request, principal, merchant, deal, form)


@router.post(
    "/merchants/{merchant_id}/deals/{deal_id}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def save_deal(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    db = services_of(request).db
    deal = await db.read(_merchant_deal, principal, merchant_id, deal_id)
    locale = request_locale(request, principal)
    form, changes = deal_form.parse_deal_changes(
        await form_fields(request), deal, merchant.time_zone, locale
    )
    if changes is None:
        return await _editor(request, principal, merchant, deal, form, status_code=422)
    if changes:
        valid_changes = changes

        def work(session: Session) -> Deal:
            _merchant_deal(session, principal, merchant_id, deal_id)
            return deals.update_deal(session, principal, deal_id, valid_changes)

        try:
            await db.run(work)
        except AppError as refused:
            deal_form.apply_refusal(form, refused, merchant.currency, locale)
            return await _editor(request, principal, merchant, deal, form, refused.status)
    return RedirectResponse(
        f"/console/merchants/{merchant_id}/deals/{deal_id}?done=saved", status_code=303
    )


@router.post(
    "/merchants/{merchant_id}/deals/{deal_id}/{action}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def change_deal_status(
    request: Request, merchant_id: str, deal_id: str, action: str, principal: StaffOfMerchant
) -> Response:
    """Publish, pause or end the deal; pausing and ending say why (kept in the audit log)."""
    if action not in DEAL_ACTIONS:
        raise NotFound("No such action.", code="not_found")

    reason = auditlog.clean_reason(action, (await form_fields(request)).get("reason"))

    def work(session: Session) -> dict[str, str]:
        _merchant_deal(session, principal, merchant_id, deal_id)
        changed = deals.change_deal_status(session, principal, deal_id, action, reason=reason)
        return {"status": changed.status}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status == 404:
            raise
        merchant = await _merchant(request, principal, merchant_id)
        deal = await services_of(request).db.read(_merchant_deal, principal, merchant_id, deal_id)
        form = DealForm(deal_form.values_of(deal, merchant.time_zone))
        locale = request_locale(request, principal)
        known = deal_form.CODE_MESSAGES.get(refused.code)
        form.form_error = gettext(locale, known) if known else refused.detail
        return await _editor(request, principal, merchant, deal, form, refused.status)
    return RedirectResponse(
        f"/console/merchants/{merchant_id}/deals/{deal_id}?done={action}", status_code=303
    )


# ---------------------------------------------------------------------------- teams


@router.get("/merchants/{merchant_id}/teams", response_class=HTMLResponse)
async def team_list(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    status: str | None = None,
    deal_id: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    chosen = choice(status, shared.TEAM_STATUSES)
    filters = TeamFilters(
        status=TeamStatus(chosen) if chosen else None,
        deal_id=clean_text(deal_id, 40),
        text=clean_text(text),
    )
    rows = await services_of(request).db.read_stale(
        lambda s: reports.list_merchant_teams(
            s, principal, merchant_id, filters, cursor=cursor, limit=PAGE_SIZE
        )
    )
    context = _base(request, principal, merchant, "teams")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda t: t.id),
        status=chosen,
        deal_id=filters.deal_id,
        text=filters.text or "",
        deals=await _recent_deals(request, principal, merchant_id),
    )
    return await render(request, "merchant/teams.html", context)


@router.get("/merchants/{merchant_id}/teams/{team_id}", response_class=HTMLResponse)
async def team_page(
    request: Request, merchant_id: str, team_id: str, principal: StaffOfMerchant
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)

    def work(session: Session) -> tuple[reports.TeamRow, list[money_reports.OrderRow]]:
        team = reports.merchant_team(session, principal, merchant_id, team_id)
        seats = money_reports.list_merchant_orders(
            session,
            principal,
            merchant_id,
            OrderFilters(team_id=team_id),
            cursor=None,
            limit=MAX_LIMIT,
        )
        return team, seats

    team, seats = await services_of(request).db.read(work)
    context = _base(request, principal, merchant, "teams")
    context.update(team=team, seats=seats[::-1])
    return await render(request, "merchant/team.html", context)


# ---------------------------------------------------------------------------- orders and refunds


@router.get("/merchants/{merchant_id}/orders", response_class=HTMLResponse)
async def order_list(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    status: str | None = None,
    deal_id: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    chosen = choice(status, shared.SEAT_STATUSES)
    filters = OrderFilters(
        status=SeatStatus(chosen) if chosen else None,
        deal_id=clean_text(deal_id, 40),
        text=clean_text(text),
    )
    rows = await services_of(request).db.report_stale(
        lambda s: money_reports.list_merchant_orders(
            s, principal, merchant_id, filters, cursor=cursor, limit=PAGE_SIZE
        )
    )
    context = _base(request, principal, merchant, "orders")
    context.update(
        page=listing(request, rows, PAGE_SIZE, lambda o: o.id),
        status=chosen,
        deal_id=filters.deal_id,
        text=filters.text or "",
        deals=await _recent_deals(request, principal, merchant_id),
    )
    return await render(request, "merchant/orders.html", context)


@router.get("/merchants/{merchant_id}/refunds", response_class=HTMLResponse)
async def refund_list(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    state: str | None = None,
    cursor: str | None = None,
) -> Response:
    merchant = await _merchant(request, principal, merchant_id)
    chosen = choice(state, shared.REFUND_STATES)
    rows = await services_of(request).db.report_stale(
        lambda s: money_reports.list_merchant_refunds(
            s,
            principal,
            merchant_id,
            state=RefundState(chosen) if chosen else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    )
    context = _base(request, principal, merchant, "refunds")
    context.update(page=listing(request, rows, PAGE_SIZE, lambda r: r.id), state=chosen)
    return await render(request, "merchant/refunds.html", context)


# ---------------------------------------------------------------------------- settlements


@router.get("/merchants/{merchant_id}/settlements", response_class=HTMLResponse)
async def settlement_list(
    request: Request, merchant_id: str, principal: StaffOfMerchant, cursor: str | None = None
) -> Response:
    """What the merchant is owed now, and its statement for each business day."""
    merchant = await _merchant(request, principal, merchant_id)
    cursor_id = decode_cursor(cursor) if cursor else None

    def work(session: Session) -> tuple[list[tuple[int, str]], list[SettlementStatement]]:
        owed = ledger_reads.merchant_balances(session, principal, merchant_id)
        statements = settlement.list_statements(
            session, principal, merchant_id, cursor_id, PAGE_SIZE
        )
        return owed, statements

    owed, statements = await services_of(request).db.read(work)
    context = _base(request, principal, merchant, "settlements")
    context.update(owed=owed, page=listing(request, statements, PAGE_SIZE, lambda s: s.id))
    return await render(request, "merchant/settlements.html", context)
