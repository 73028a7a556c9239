"""HTTP endpoints of the ledger: wallets, merchant balances, settlements, payouts and
reconciliation. (The ledger's check is part of the audit, in ``audit/``.)"""

from __future__ import annotations

from datetime import date

import anyio.to_thread
from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.payments import ProviderError
from pintuan.errors import AppError, NotFound, ProviderUnavailable
from pintuan.idempotency.http import HEADER as IDEMPOTENCY_HEADER
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.schemas import MoneyOut
from pintuan.kit.time import utc_now
from pintuan.ledger import payouts, reads, settlement
from pintuan.ledger.reconcile import reconcile_day
from pintuan.ledger.schemas import (
    MerchantBalanceOut,
    PayoutIn,
    PayoutOut,
    PayoutStatusIn,
    ReconciliationOut,
    StatementOut,
    WalletLineOut,
    WalletOut,
    WithdrawalIn,
)
from pintuan.merchants.service import require_operator
from pintuan.services import ServicesDep

router = Router(tags=["ledger"])


def _require_key(request: Request, what: str) -> None:
    """Money that leaves is sent once: its request must say so with an ``Idempotency-Key``."""
    if not request.headers.get(IDEMPOTENCY_HEADER):
        raise AppError(
            f"{what} needs an Idempotency-Key header, so that a retry never pays twice.",
            code="idempotency_key_required",
        )


@router.get("/v1/me/wallet", response_model=WalletOut)
async def read_wallet(principal: CurrentPrincipal, services: ServicesDep) -> WalletOut:
    """Your wallet: balance per currency and the latest movements."""

    def read(session: Session) -> WalletOut:
        return WalletOut(
            balances=[
                MoneyOut.of(a, c) for a, c in reads.wallet_balances(session, principal.user_id)
            ],
            recent=[
                WalletLineOut.of(line)
                for line in reads.wallet_history(session, principal.user_id, 20)
            ],
        )

    return await services.db.read(read)


@router.post("/v1/me/wallet/withdrawals", status_code=201, response_model=PayoutOut)
async def withdraw(
    body: WithdrawalIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Withdraw from your wallet to your own bank or payment account (an ``Idempotency-Key`` is
    required): the wallet is debited now, never below zero (``withdrawal_exceeds_balance``),
    and the withdrawal is ``pending`` until operators send it; one that fails or comes back is
    in your wallet again."""
    _require_key(request, "A withdrawal")

    def work(session: Session) -> PayoutOut:
        return PayoutOut.of(
            payouts.create_withdrawal(
                session,
                principal.user_id,
                body.amount.amount,
                body.amount.currency,
                body.destination,
                utc_now(),
            )
        )

    return await run_write(request, services, principal, work, status_code=201)


@router.get("/v1/me/wallet/withdrawals", response_model=Page[PayoutOut])
async def list_my_withdrawals(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PayoutOut]:
    """Your withdrawals and where each stands, newest first."""
    rows = await services.db.read(
        lambda s: payouts.list_withdrawals(
            s, principal.user_id, status=None, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, PayoutOut.of)


@router.get("/v1/ops/withdrawals", response_model=Page[PayoutOut])
async def list_withdrawals(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: payouts.PayoutStatus | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PayoutOut]:
    """Shoppers' withdrawals, newest first, of one status if asked (operators only); each is
    moved along with ``POST /v1/payouts/{id}/status`` like a merchant's payout."""
    require_operator(principal)
    rows = await services.db.read(
        lambda s: payouts.list_withdrawals(s, None, status=status, cursor=cursor, limit=limit)
    )
    return page_of(rows, limit, PayoutOut.of)


@router.get("/v1/merchants/{merchant_id}/balance", response_model=MerchantBalanceOut)
async def read_merchant_balance(
    merchant_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> MerchantBalanceOut:
    """What the platform owes the merchant now, after fees and payouts."""
    owed = await services.db.read(reads.merchant_balances, principal, merchant_id)
    return MerchantBalanceOut(merchant_id=merchant_id, owed=[MoneyOut.of(a, c) for a, c in owed])


@router.get("/v1/merchants/{merchant_id}/settlements", response_model=Page[StatementOut])
async def list_settlements(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[StatementOut]:
    """Daily settlement statements (business days in the merchant's time zone), newest first."""
    cursor_id = decode_cursor(cursor) if cursor else None
    rows = await services.db.report(
        settlement.list_statements, principal, merchant_id, cursor_id, limit
    )
    return page_of(rows, limit, StatementOut.of)


@router.post("/v1/merchants/{merchant_id}/payouts", status_code=201, response_model=PayoutOut)
async def record_payout(
    merchant_id: str,
    body: PayoutIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Start a payout to the merchant (operators only; an ``Idempotency-Key`` is required): the
    money leaves what it is owed now, never more than that, and the payout is ``pending``."""
    require_operator(principal)
    _require_key(request, "A payout")

    def work(session: Session) -> PayoutOut:
        return PayoutOut.of(
            payouts.create_payout(
                session,
                principal,
                merchant_id,
                body.amount.amount,
                body.amount.currency,
                utc_now(),
            )
        )

    return await run_write(request, services, principal, work, status_code=201)


@router.get("/v1/merchants/{merchant_id}/payouts", response_model=Page[PayoutOut])
async def list_payouts(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PayoutOut]:
    """The merchant's payouts and where each stands, newest first (its staff and operators)."""
    rows = await services.db.read(
        lambda s: payouts.list_payouts(s, principal, merchant_id, cursor=cursor, limit=limit)
    )
    return page_of(rows, limit, PayoutOut.of)


@router.post("/v1/payouts/{payout_id}/status", response_model=PayoutOut)
async def move_payout(
    payout_id: str,
    body: PayoutStatusIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Record what became of a payout or a withdrawal (operators only): ``sent``, then
    ``paid``, ``failed`` or ``returned``; a failed or returned payout is owed to the merchant
    again, a withdrawal's money is in the shopper's wallet again."""
    require_operator(principal)

    def work(session: Session) -> PayoutOut:
        return PayoutOut.of(
            payouts.move_payout(
                session,
                principal,
                payout_id,
                payouts.PayoutStatus(body.status),
                utc_now(),
                reference=body.reference,
                reason=body.reason,
            )
        )

    return await run_write(request, services, principal, work)


@router.get("/v1/ops/reconciliation", response_model=ReconciliationOut)
async def reconciliation(
    principal: CurrentPrincipal,
    services: ServicesDep,
    provider: str = Query(min_length=1, max_length=20),
    day: date = Query(alias="date"),
) -> ReconciliationOut:
    """Our ledger against the provider's statement for one of its days (operators only):
    every missing, extra or different item."""
    require_operator(principal)
    found = services.provider(provider)
    if settlement.day_bounds(day, found.capabilities.bill_time_zone)[1] > utc_now():
        raise NotFound(
            "The provider has no statement for a day not yet over.", code="statement_not_ready"
        )
    try:
        records = await anyio.to_thread.run_sync(found.records_for_day, day)
    except ProviderError as exc:
        raise ProviderUnavailable(f"{provider} did not give its statement: {exc}") from exc
    result = await services.db.read(reconcile_day, found, day, records)
    return ReconciliationOut.of(provider, day, found.capabilities.bill_time_zone, result)
