"""HTTP endpoints of refunds after success and of disputes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.errors import InvalidInput, NotFound
from pintuan.idempotency.http import HEADER, run_write
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.payments import refund_reads, refunds
from pintuan.payments.refund_schemas import DisputeList, DisputeOut, RefundIn, RefundList, RefundOut
from pintuan.services import ServicesDep

router = Router(tags=["refunds"])


@router.post("/v1/seats/{seat_id}/refunds", status_code=201, response_model=RefundOut)
async def refund_seat(
    seat_id: str,
    body: RefundIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Refund a confirmed seat fully or in part (its merchant's staff or an operator), as often
    as needed up to what was paid. ``amount`` is in minor units of the payment's currency. The
    money comes back from the merchant's payable and the platform's fee in proportion. Requires
    an ``Idempotency-Key``: a refund asked twice must not be paid twice."""
    keyed = bool(request.headers.get(HEADER))

    def work(session: Session) -> RefundOut:
        tx = raw_tx(session)
        if not principal.can_manage(refunds.seat_merchant(tx, seat_id)):
            raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
        if not keyed:
            raise InvalidInput(
                f"A refund needs an {HEADER} header (a UUID, say), so that a retry refunds once.",
                code="idempotency_key_required",
            )
        refund_id = refunds.refund_seat(
            tx,
            seat_id,
            body.amount,
            body.reason,
            principal.user_id,
            utc_now(),
            window=timedelta(days=services.settings.refund_window_days),
        )
        return RefundOut.of(refund_reads.get_refund(session, refund_id))

    return await run_write(request, services, principal, work, status_code=201)


@router.get("/v1/seats/{seat_id}/refunds", response_model=RefundList)
async def list_seat_refunds(
    seat_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> RefundList:
    """A seat's refunds after success, oldest first: for its shopper, the merchant's staff and
    operators."""

    def read(session: Session) -> RefundList:
        refund_reads.seat_for_refunds(session, principal, seat_id)
        found = refund_reads.refunds_of_seats(session, [seat_id])
        return RefundList(items=[RefundOut.of(r) for r in found.get(seat_id, [])])

    return await services.db.read(read)


@router.get("/v1/merchants/{merchant_id}/disputes", response_model=DisputeList)
async def list_disputes(
    merchant_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> DisputeList:
    """The merchant's disputes (chargebacks), newest first: open, won or lost."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    found = await services.db.read(refund_reads.disputes_of_merchant, merchant_id)
    return DisputeList(items=[DisputeOut.of(d) for d in found])
