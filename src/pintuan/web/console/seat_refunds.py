"""The merchant console's view of one order, with its refunds and a form to refund it fully or
in part (staff and operators), and the merchant's disputes.

The form's amount is typed in major units (``5.00``) and refunded through the same service as
``POST /v1/seats/{id}/refunds``, once per form key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.errors import AppError, InvalidInput, NotFound
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.payments import refund_reads, refunds
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.payments.refund_schemas import progress_of
from pintuan.teams import reports
from pintuan.teams.models import Seat
from pintuan.web.console import shared
from pintuan.web.console.deal_form import parse_amount
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

AMOUNT_NOT_READ = N_("Type the amount to refund as a number, such as 5.00.")


@dataclass(frozen=True, slots=True)
class OrderView:
    seat: Seat
    deal_title: str
    payments: list[Payment]
    refunds: list[Refund]
    disputes: list[Dispute]
    left: int  # what may still be refunded (0: nothing, or not refundable)


def _order(session: Session, principal: Principal, merchant_id: str, seat_id: str) -> OrderView:
    found = session.execute(
        select(Seat, Deal.title)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.id == seat_id, Deal.merchant_id == merchant_id)
    ).first()
    if found is None or not principal.can_manage(merchant_id):
        raise NotFound(f"No order {seat_id}.", code="seat_not_found")
    seat, title = found
    payments = list(
        session.scalars(
            select(Payment).where(Payment.seat_id == seat_id).order_by(Payment.created_at)
        )
    )
    disputes = list(
        session.scalars(
            select(Dispute).where(Dispute.seat_id == seat_id).order_by(Dispute.opened_at)
        )
    )
    kept = next(
        (p for p in payments if p.status in ("captured", "charged") and p.pending_action is None),
        None,
    )
    left = 0
    if seat.status == "confirmed" and kept is not None:
        disputed = session.scalar(
            select(func.coalesce(func.sum(Dispute.amount), 0)).where(
                Dispute.payment_id == kept.id, Dispute.status.in_(("open", "lost"))
            )
        )
        left = max(kept.amount - kept.refunded_amount - int(disputed or 0), 0)
    return OrderView(
        seat=seat,
        deal_title=title,
        payments=payments,
        refunds=refund_reads.refunds_of_seats(session, [seat_id]).get(seat_id, []),
        disputes=disputes,
        left=left,
    )


def _tone(status: str) -> str:
    return shared.STATUS_TONES.get(status, "")


async def _order_page(
    request: Request,
    principal: Principal,
    merchant_id: str,
    seat_id: str,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    db = services_of(request).db
    merchant = await db.read(reports.managed_merchant, principal, merchant_id)
    order = await db.read(_order, principal, merchant_id, seat_id)
    context: dict[str, Any] = {
        "merchant": merchant,
        "tab": "orders",
        "labels": shared,
        "tone": _tone,
        "order": order,
        "refund_progress": progress_of,
        "error": error,
        "typed": typed or {},
    }
    notice = shared.done_notice(request, request_locale(request, principal))
    if notice is not None:
        context["notice"] = notice
    return await render(request, "merchant/order.html", context, status_code=status_code)


@router.get("/merchants/{merchant_id}/seats/{seat_id}", response_class=HTMLResponse)
async def order_view(
    request: Request, merchant_id: str, seat_id: str, principal: StaffOfMerchant
) -> Response:
    """One order: its payments, refunds and disputes, and the form to refund it."""
    return await _order_page(request, principal, merchant_id, seat_id)


@router.post(
    "/merchants/{merchant_id}/seats/{seat_id}/refunds",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def refund_order(
    request: Request, merchant_id: str, seat_id: str, principal: StaffOfMerchant
) -> Response:
    """Refund the order fully or in part, with a reason."""
    fields = await form_fields(request)
    typed = {"amount": fields.get("amount", ""), "reason": fields.get("reason", "")}
    locale = request_locale(request, principal)
    window = timedelta(days=services_of(request).settings.refund_window_days)

    def work(session: Session) -> dict[str, str]:
        order = _order(session, principal, merchant_id, seat_id)
        try:
            amount = parse_amount(typed["amount"], order.seat.currency)
        except ValueError as exc:
            raise InvalidInput(
                gettext(locale, AMOUNT_NOT_READ), code="refund_amount_unreadable"
            ) from exc
        refund_id = refunds.refund_seat(
            raw_tx(session),
            seat_id,
            amount,
            typed["reason"],
            principal.user_id,
            utc_now(),
            window=window,
        )
        return {"refund_id": refund_id}

    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status == 404 or refused.status >= 500:
            raise
        return await _order_page(
            request,
            principal,
            merchant_id,
            seat_id,
            error=error_message(refused, locale),
            typed=typed,
            status_code=refused.status,
        )
    return RedirectResponse(
        shared.with_done(f"/console/merchants/{merchant_id}/seats/{seat_id}", "refunded"),
        status_code=303,
    )


@router.get("/merchants/{merchant_id}/disputes", response_class=HTMLResponse)
async def dispute_list(request: Request, merchant_id: str, principal: StaffOfMerchant) -> Response:
    """The merchant's disputes (chargebacks): open, won and lost, newest first."""
    db = services_of(request).db
    merchant = await db.read(reports.managed_merchant, principal, merchant_id)
    disputes = await db.read(refund_reads.disputes_of_merchant, merchant_id)
    context = {
        "merchant": merchant,
        "tab": "disputes",
        "labels": shared,
        "tone": _tone,
        "disputes": disputes,
    }
    return await render(request, "merchant/disputes.html", context)
