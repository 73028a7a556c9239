"""The operator console's payments queue (``/console/operator/payments``): each payment whose
owed provider call ran out of attempts or time, or whose provider's news ended its course
(payments/endings.py), with its history of attempts and the actions that fit it; and beside it
the queue of refunds after success that their provider refused or that ran out of attempts or
time (``/console/operator/refund-queue``, payments/refunds.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.domain.refunds import RefundQueueAction
from pintuan.errors import NotFound
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.payments import endings, refunds
from pintuan.payments.queue_api import QueuedPaymentDetail, queue_page, with_history
from pintuan.payments.refund_queue_api import (
    QueuedRefundDetail,
    open_refund_queue,
    refund_histories,
)
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, listing
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.forms import run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator

router = Router(include_in_schema=False)

REASONS: dict[str, str] = {
    "capture_failed": N_("The capture ran out of attempts"),
    "hold_expired": N_("The hold ended before its capture"),
    "amount_mismatch": N_("The provider took another amount"),
    "refund_failed": N_("The refund did not go through"),
    "void_failed": N_("The hold could not be let go"),
    "no_news": N_("No news of the checkout"),
    "unpaid": N_("The shopper did not pay again in time"),
}
ACTIONS: dict[str, str] = {
    "retry": N_("Retry"),
    "refund": N_("Refund the payer"),
    "write_off": N_("Write off"),
    "charge_again": N_("Charge again"),
}
DONE: dict[str, str] = {
    "retry": N_("The call is owed again; the worker makes it next."),
    "refund": N_("The payer gets the money back."),
    "write_off": N_("Written off: the platform pays the merchant for the seat."),
    "charge_again": N_("The shopper is asked to pay for the seat again."),
}


@router.get("/console/operator/payments", response_class=HTMLResponse)
async def payments_queue(
    request: Request, principal: Operator, cursor: str | None = None
) -> Response:
    """Payments waiting for an operator, each with its history of attempts."""
    after = decode_cursor(cursor) if cursor else None

    def work(session: Session) -> list[QueuedPaymentDetail]:
        rows, facts = queue_page(session, after, PAGE_SIZE)
        return [with_history(session, p, facts[p.id]) for p in rows]

    rows = await services_of(request).db.read(work)
    context = {"reasons": REASONS, "actions": ACTIONS}
    return await _queue_page(request, principal, rows, "operator/payments.html", DONE, context)


async def _queue_page(
    request: Request,
    principal: Operator,
    rows: Sequence[QueuedPaymentDetail] | Sequence[QueuedRefundDetail],
    template: str,
    done_words: dict[str, str],
    context: dict[str, Any],
) -> Response:
    """A page of a queue, saying what the action the operator just took did (``?done=``)."""
    done = request.query_params.get("done", "")
    context = {
        **context,
        "tab": "payments",
        "labels": shared,
        "page": listing(request, rows, PAGE_SIZE, lambda row: row.id),
    }
    if done in done_words:
        context["notice"] = gettext(request_locale(request, principal), done_words[done])
    return await render(request, template, context)


@router.post(
    "/console/operator/payments/{payment_id}/{action}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def act_on_payment(
    request: Request, payment_id: str, action: str, principal: Operator
) -> Response:
    """An operator's action on a queued payment; the form's key makes a repeat do nothing."""
    if action not in ACTIONS:
        raise NotFound("No such action.", code="not_found")
    chosen = endings.QueueAction(action)
    services = services_of(request)

    def work(session: Session) -> dict[str, str]:
        reason = endings.act_on_queued_payment(
            raw_tx(session),
            payment_id,
            chosen,
            principal.user_id,
            utc_now(),
            repay_within=timedelta(hours=services.settings.payment_repay_hours),
        )
        return {"reason": reason}

    await run_form_write(request, services, principal, work)
    return RedirectResponse(f"/console/operator/payments?done={action}", status_code=303)


# ---------------------------------------------------------------------------- refunds

REFUND_ACTIONS: dict[str, str] = {
    "retry": N_("Retry"),
    "wallet": N_("Pay into the wallet"),
}
REFUND_OUTCOMES: dict[str, str] = {
    "failed": N_("No answer: it may have been made"),
    "refused": N_("The provider refused it"),
    "returned": N_("It did not reach the payer"),
}
REFUND_DONE: dict[str, str] = {
    "retry": N_("The refund is owed again; the worker asks the provider next."),
    "wallet": N_("The refund went into the payer's wallet."),
}


@router.get("/console/operator/refund-queue", response_class=HTMLResponse)
async def refunds_queue(
    request: Request, principal: Operator, cursor: str | None = None
) -> Response:
    """Refunds after success waiting for an operator, each with its history of attempts."""
    after = decode_cursor(cursor) if cursor else None

    def work(session: Session) -> list[QueuedRefundDetail]:
        return refund_histories(session, open_refund_queue(session, after, PAGE_SIZE))

    rows = await services_of(request).db.read(work)
    context = {"outcomes": REFUND_OUTCOMES, "actions": REFUND_ACTIONS}
    template = "operator/refund_queue.html"
    return await _queue_page(request, principal, rows, template, REFUND_DONE, context)


@router.post(
    "/console/operator/refund-queue/{refund_id}/{action}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def act_on_refund(
    request: Request, refund_id: str, action: str, principal: Operator
) -> Response:
    """An operator's action on a queued refund; the form's key makes a repeat do nothing."""
    if action not in REFUND_ACTIONS:
        raise NotFound("No such action.", code="not_found")
    chosen = RefundQueueAction(action)

    def work(session: Session) -> dict[str, str]:
        refunds.act_on_queued_refund(
            raw_tx(session), refund_id, chosen, principal.user_id, utc_now()
        )
        return {"refund_id": refund_id}

    await run_form_write(request, services_of(request), principal, work)
    return RedirectResponse(f"/console/operator/refund-queue?done={action}", status_code=303)
