"""The operators' queue of refunds after success that their provider refused, or that ran out
of attempts or time (payments/refunds.py): the list, one refund, and the actions that fit it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.refunds import RefundQueueAction
from pintuan.errors import InvalidInput, NotFound
from pintuan.idempotency.http import HEADER, run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut
from pintuan.kit.time import utc_now
from pintuan.merchants.service import require_operator
from pintuan.payments import refunds
from pintuan.payments.queue_api import AttemptOut
from pintuan.payments.refund_models import Refund, RefundAttempt
from pintuan.services import ServicesDep

router = Router(tags=["refunds"])


class QueuedRefundOut(BaseModel):
    id: str
    seat_id: str
    payment_id: str
    merchant_id: str
    provider: str
    amount: MoneyOut
    reason: str
    source: str
    status: str  # pending while it waits: the payer is still owed
    destination: str
    attempts: int
    last_error: str | None
    # failed (it may have been made), refused (it was not), returned (it did not reach the payer)
    last_outcome: str | None
    call_deadline: datetime | None
    created_at: datetime
    queued_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    actions: list[str]  # what fits now (none unless it waits in the queue)

    @classmethod
    def of(cls, r: Refund) -> QueuedRefundOut:
        return cls(
            id=r.id,
            seat_id=r.seat_id,
            payment_id=r.payment_id,
            merchant_id=r.merchant_id,
            provider=r.provider,
            amount=MoneyOut.of(r.amount, r.currency),
            reason=r.reason,
            source=r.source,
            status=r.status,
            destination=r.destination,
            attempts=r.attempts,
            last_error=r.last_error,
            last_outcome=r.last_outcome,
            call_deadline=r.call_deadline,
            created_at=r.created_at,
            queued_at=r.queued_at,
            resolved_at=r.resolved_at,
            resolution=r.resolution,
            resolved_by=r.resolved_by,
            actions=refunds.refund_actions(r),
        )


class QueuedRefundDetail(QueuedRefundOut):
    # Each provider call and its outcome, the provider's news, the giving up, the operators'
    # acts, oldest first.
    history: list[AttemptOut]


class RefundActionIn(BaseModel):
    action: Literal["retry", "wallet"] = Field(
        description="retry: ask the provider again under the refund's key, with a fresh count "
        "of attempts and time; wallet: pay it into the payer's wallet at once (only when the "
        "provider refused it: an unanswered call may have made it)"
    )


class RefundActionOut(BaseModel):
    refund: QueuedRefundOut
    action: str


def open_refund_queue(session: Session, after: str | None, limit: int) -> list[Refund]:
    """Refunds waiting for an operator, oldest refund id first."""
    query = (
        select(Refund)
        .where(Refund.queued_at.is_not(None), Refund.resolved_at.is_(None))
        .order_by(Refund.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Refund.id > after)
    return list(session.scalars(query))


def _refund(session: Session, refund_id: str) -> Refund:
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise NotFound(f"No refund {refund_id}.", code="refund_not_found")
    return refund


def queued_refund(session: Session, refund_id: str) -> QueuedRefundOut:
    return QueuedRefundOut.of(_refund(session, refund_id))


def refund_histories(session: Session, refunds_shown: list[Refund]) -> list[QueuedRefundDetail]:
    """Each refund as the queue shows it, with its history (one query for all of them)."""
    lines: dict[str, list[AttemptOut]] = {r.id: [] for r in refunds_shown}
    if lines:
        for a in session.scalars(
            select(RefundAttempt)
            .where(RefundAttempt.refund_id.in_(list(lines)))
            .order_by(RefundAttempt.refund_id, RefundAttempt.id)
        ):
            lines[a.refund_id].append(AttemptOut.of(a))
    return [
        QueuedRefundDetail(**QueuedRefundOut.of(r).model_dump(), history=lines[r.id])
        for r in refunds_shown
    ]


def refund_with_history(session: Session, refund_id: str) -> QueuedRefundDetail:
    [detail] = refund_histories(session, [_refund(session, refund_id)])
    return detail


@router.get("/v1/operator/refunds/queue", response_model=Page[QueuedRefundOut])
async def list_refund_queue(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[QueuedRefundOut]:
    """Refunds after success that their provider refused, or whose calls ran out of attempts
    or time, waiting for an operator (operators only)."""
    require_operator(principal)
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.read(open_refund_queue, after, limit)
    return page_of(rows, limit, QueuedRefundOut.of)


@router.get("/v1/operator/refunds/{refund_id}", response_model=QueuedRefundDetail)
async def read_queued_refund(
    refund_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> QueuedRefundDetail:
    """One refund after success as the queue shows it, in the queue or not, with its history
    of calls, news and acts (operators only)."""
    require_operator(principal)
    return await services.db.read(refund_with_history, refund_id)


@router.post("/v1/operator/refunds/{refund_id}/actions", response_model=RefundActionOut)
async def act_on_refund(
    refund_id: str,
    body: RefundActionIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Act on a refund in the queue (operators only): ``retry`` asks its provider again;
    ``wallet`` pays it into the payer's wallet, and moves money, so it requires an
    ``Idempotency-Key``."""
    require_operator(principal)
    action = RefundQueueAction(body.action)
    if action is RefundQueueAction.WALLET and not request.headers.get(HEADER):
        raise InvalidInput(
            f"Paying a refund into the wallet moves money: send it with an {HEADER} header.",
            code="idempotency_key_required",
        )

    def work(session: Session) -> RefundActionOut:
        refunds.act_on_queued_refund(
            raw_tx(session), refund_id, action, principal.user_id, utc_now()
        )
        return RefundActionOut(refund=queued_refund(session, refund_id), action=action.value)

    return await run_write(request, services, principal, work)
