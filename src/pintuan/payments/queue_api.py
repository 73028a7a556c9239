"""The operators' queue of payments that left their usual course (payments/endings.py): the
list, one payment with its history of attempts, and the actions that fit it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.payments import ProviderAction
from pintuan.errors import InvalidInput, NotFound
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut
from pintuan.kit.time import utc_now
from pintuan.merchants.service import require_operator
from pintuan.payments import endings
from pintuan.payments.models import Payment, PaymentAttempt
from pintuan.payments.refund_models import RefundAttempt
from pintuan.services import ServicesDep
from pintuan.teams.models import Seat

router = Router(tags=["payments"])


class AttemptOut(BaseModel):
    action: str
    outcome: str
    detail: str | None
    actor_id: str | None  # None: the worker
    at: datetime

    @classmethod
    def of(cls, a: PaymentAttempt | RefundAttempt) -> AttemptOut:
        """A line of a payment's or a refund's history."""
        return cls(
            action=a.action, outcome=a.outcome, detail=a.detail, actor_id=a.actor_id, at=a.at
        )


class QueuedPaymentOut(BaseModel):
    id: str
    provider: str
    status: str
    end_reason: str | None
    amount: MoneyOut
    taken: MoneyOut | None  # what the provider took, when it was not what was asked
    seat_id: str | None
    attempts: int
    last_error: str | None
    capture_before: datetime | None
    queued_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    actions: list[str]  # what fits now (none once resolved)

    @classmethod
    def of(cls, p: Payment, facts: endings.QueueFacts) -> QueuedPaymentOut:
        waiting = p.queued_at is not None and p.resolved_at is None and p.pending_action is None
        fits = endings.fitting_actions(p.end_reason, facts) if waiting else []
        return cls(
            id=p.id,
            provider=p.provider,
            status=p.status,
            end_reason=p.end_reason,
            amount=MoneyOut.of(p.amount, p.currency),
            taken=MoneyOut.of(p.taken_amount, p.currency) if p.taken_amount else None,
            seat_id=p.seat_id,
            attempts=p.attempts,
            last_error=p.last_error,
            capture_before=p.capture_before,
            queued_at=p.queued_at,
            resolved_at=p.resolved_at,
            resolution=p.resolution,
            actions=fits,
        )


class QueuedPaymentDetail(QueuedPaymentOut):
    history: list[AttemptOut]


class QueueActionIn(BaseModel):
    action: Literal["retry", "refund", "write_off", "charge_again"] = Field(
        description="retry: owe the failed call again; refund: give the payer everything back "
        "(a hold voided, a charge to the wallet); write_off: the platform pays the merchant "
        "for the seat (a ledger journal); charge_again: ask the seat's shopper to pay for it "
        "again within PINTUAN_PAYMENT_REPAY_HOURS"
    )


class QueueActionOut(BaseModel):
    payment: QueuedPaymentOut
    action: str


def open_queue(session: Session, after: str | None, limit: int) -> list[Payment]:
    """Payments waiting for an operator, oldest payment id first."""
    query = (
        select(Payment)
        .where(
            Payment.queued_at.is_not(None),
            Payment.resolved_at.is_(None),
            Payment.pending_action.is_(None),
        )
        .order_by(Payment.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Payment.id > after)
    return list(session.scalars(query))


def queue_facts(session: Session, payments: list[Payment]) -> dict[str, endings.QueueFacts]:
    """For each payment, what besides its reason decides the actions that fit it: its latest
    refund call's outcome and whether its seat is confirmed and keeps its money."""
    ids = [p.id for p in payments]
    latest: dict[str, str] = {}
    for payment_id, outcome in session.execute(
        select(PaymentAttempt.payment_id, PaymentAttempt.outcome)
        .where(
            PaymentAttempt.payment_id.in_(ids),
            PaymentAttempt.action == ProviderAction.REFUND.value,
        )
        .order_by(PaymentAttempt.id)
    ):
        latest[payment_id] = outcome
    seat_ids = [p.seat_id for p in payments if p.seat_id]
    confirmed = set(
        session.scalars(
            select(Seat.id).where(Seat.id.in_(seat_ids), text(endings.SEAT_KEEPS_MONEY))
        )
    )
    return {p.id: endings.QueueFacts(latest.get(p.id), p.seat_id in confirmed) for p in payments}


def queue_page(
    session: Session, after: str | None, limit: int
) -> tuple[list[Payment], dict[str, endings.QueueFacts]]:
    """A page of the queue, and the facts of each payment on it (:func:`queue_facts`)."""
    rows = open_queue(session, after, limit)
    return rows, queue_facts(session, rows)


def queued_payment(session: Session, payment: Payment) -> QueuedPaymentOut:
    """One payment as the queue shows it."""
    return QueuedPaymentOut.of(payment, queue_facts(session, [payment])[payment.id])


def payment_with_history(session: Session, payment_id: str) -> QueuedPaymentDetail:
    """One payment as the queue shows it, with every attempt and decision about it."""
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.", code="payment_not_found")
    return with_history(session, payment, queue_facts(session, [payment])[payment.id])


def with_history(
    session: Session, payment: Payment, facts: endings.QueueFacts
) -> QueuedPaymentDetail:
    """``payment`` as the queue shows it (its ``facts`` read already), with its history."""
    history = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.payment_id == payment.id)
        .order_by(PaymentAttempt.id)
    )
    return QueuedPaymentDetail(
        **QueuedPaymentOut.of(payment, facts).model_dump(),
        history=[AttemptOut.of(a) for a in history],
    )


@router.get("/v1/operator/payments/queue", response_model=Page[QueuedPaymentOut])
async def list_payment_queue(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[QueuedPaymentOut]:
    """Payments whose owed provider call ran out of attempts or time, or whose provider's news
    ended their course, waiting for an operator (operators only)."""
    require_operator(principal)
    after = decode_cursor(cursor) if cursor else None
    rows, facts = await services.db.read(queue_page, after, limit)
    return page_of(rows, limit, lambda p: QueuedPaymentOut.of(p, facts[p.id]))


@router.get("/v1/operator/payments/{payment_id}", response_model=QueuedPaymentDetail)
async def read_queued_payment(
    payment_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> QueuedPaymentDetail:
    """One payment with its history of attempts (operators only)."""
    require_operator(principal)
    return await services.db.read(payment_with_history, payment_id)


@router.post("/v1/operator/payments/{payment_id}/actions", response_model=QueueActionOut)
async def act_on_payment(
    payment_id: str,
    body: QueueActionIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Act on a payment in the queue (operators only): ``retry`` its failed call, ``refund``
    its payer in full, ``write_off`` its seat's missing money, or ``charge_again``: ask the
    seat's shopper to pay again. All but a retry move money and require an
    ``Idempotency-Key``."""
    require_operator(principal)
    action = endings.QueueAction(body.action)
    if action is not endings.QueueAction.RETRY and not request.headers.get("idempotency-key"):
        raise InvalidInput(
            "A refund, write-off or new charge moves money: send it with an Idempotency-Key "
            "header.",
            code="idempotency_key_required",
        )

    def work(session: Session) -> QueueActionOut:
        endings.act_on_queued_payment(
            raw_tx(session),
            payment_id,
            action,
            principal.user_id,
            utc_now(),
            repay_within=timedelta(hours=services.settings.payment_repay_hours),
        )
        payment = session.get(Payment, payment_id)
        assert payment is not None  # just acted on
        return QueueActionOut(payment=queued_payment(session, payment), action=action.value)

    return await run_write(request, services, principal, work)
