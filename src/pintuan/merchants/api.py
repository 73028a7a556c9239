"""HTTP endpoints of merchants."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.domain.lifecycle import MerchantStatus
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.schemas import ReasonIn
from pintuan.merchants import service
from pintuan.merchants.schemas import MerchantIn, MerchantOut, StaffIn, StaffList, StaffOut
from pintuan.services import ServicesDep

router = Router(prefix="/v1/merchants", tags=["merchants"])


@router.post("", status_code=201, response_model=MerchantOut)
async def create_merchant(
    body: MerchantIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Register a merchant (operators). It is ``pending`` until approved."""

    def work(session: Session) -> MerchantOut:
        merchant = service.create_merchant(
            session, principal, service.NewMerchant(**body.model_dump())
        )
        return MerchantOut.of(merchant)

    return await run_write(request, services, principal, work, status_code=201)


@router.get("", response_model=Page[MerchantOut])
async def list_merchants(
    principal: MaybePrincipal,
    services: ServicesDep,
    status: MerchantStatus | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[MerchantOut]:
    """Approved merchants for everyone; operators may list every status."""
    rows = await services.db.read(
        lambda s: service.list_merchants(s, principal, status=status, cursor=cursor, limit=limit)
    )
    return page_of(rows, limit, MerchantOut.of)


@router.get("/{merchant_id}", response_model=MerchantOut)
async def read_merchant(
    merchant_id: str, principal: MaybePrincipal, services: ServicesDep
) -> MerchantOut:
    merchant = await services.db.read(service.visible_merchant, principal, merchant_id)
    return MerchantOut.of(merchant)


async def _change_status(
    merchant_id: str,
    action: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    reason = body.reason if body else None

    def work(session: Session) -> MerchantOut:
        merchant = service.change_merchant_status(
            session, principal, merchant_id, action, reason=reason
        )
        return MerchantOut.of(merchant)

    return await run_write(request, services, principal, work)


@router.post("/{merchant_id}/approve", response_model=MerchantOut)
async def approve_merchant(
    merchant_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Approve a pending or suspended merchant (operators); its deals may then go live."""
    return await _change_status(merchant_id, "approve", request, principal, services)


@router.post("/{merchant_id}/suspend", response_model=MerchantOut)
async def suspend_merchant(
    merchant_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    """Suspend a merchant (operators); an optional ``reason`` is kept in the audit log."""
    return await _change_status(merchant_id, "suspend", request, principal, services, body)


@router.post("/{merchant_id}/staff", status_code=201, response_model=StaffOut)
async def add_staff(
    merchant_id: str,
    body: StaffIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Make an existing user staff of this merchant (operators)."""

    def work(session: Session) -> StaffOut:
        user = service.add_staff(session, principal, merchant_id, body.email)
        return StaffOut(user_id=user.id, display_name=user.display_name, email=user.email)

    return await run_write(request, services, principal, work, status_code=201)


@router.get("/{merchant_id}/staff", response_model=StaffList)
async def list_staff(
    merchant_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> StaffList:
    users = await services.db.read(service.list_staff, principal, merchant_id)
    return StaffList(
        data=[StaffOut(user_id=u.id, display_name=u.display_name, email=u.email) for u in users]
    )


@router.delete("/{merchant_id}/staff/{user_id}", status_code=204)
async def remove_staff(
    merchant_id: str, user_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Take a user off this merchant's staff (operators); their next request already acts
    without it."""
    await services.db.run(service.remove_staff, principal, merchant_id, user_id)
    return Response(status_code=204)
