"""HTTP endpoints of fulfilment: the address book, a seat's delivery address and timeline, the
merchant's shipping queue, shipping one order or many, and confirming receipt."""

from __future__ import annotations

from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.fulfilment import QueueState
from pintuan.fulfilment import service
from pintuan.fulfilment.schemas import (
    AddressIn,
    AddressList,
    AddressOut,
    BulkReportOut,
    BulkShipmentsIn,
    ChooseAddressIn,
    FulfilmentOut,
    QueueRowOut,
    ShipmentIn,
    ShipmentOut,
)
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.services import ServicesDep

router = Router(prefix="/v1", tags=["fulfilment"])


# ---------------------------------------------------------------------------- address book


@router.get("/me/addresses", response_model=AddressList)
async def list_addresses(principal: CurrentPrincipal, services: ServicesDep) -> AddressList:
    """Your address book, the default first."""
    rows = await services.db.read(service.list_addresses, principal.user_id)
    return AddressList(data=[AddressOut.of(a) for a in rows])


@router.post("/me/addresses", status_code=201, response_model=AddressOut)
async def add_address(
    body: AddressIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Add an address; the fields required and the postcode's form depend on its country, and
    every wrong field is named at once. Your first address is the default."""

    def work(session: Session) -> AddressOut:
        address = service.add_address(
            session, principal.user_id, body.typed(), utc_now(), make_default=body.is_default
        )
        return AddressOut.of(address)

    return await run_write(request, services, principal, work, status_code=201)


@router.patch("/me/addresses/{address_id}", response_model=AddressOut)
async def update_address(
    address_id: str, body: AddressIn, principal: CurrentPrincipal, services: ServicesDep
) -> AddressOut:
    """Change an address (fields left out keep their value); orders already using it keep
    their own copy. ``is_default: true`` makes it the default."""

    def work(session: Session) -> AddressOut:
        address = service.update_address(
            session,
            principal.user_id,
            address_id,
            body.typed(),
            utc_now(),
            make_default=body.is_default,
        )
        return AddressOut.of(address)

    return await services.db.run(work)


@router.delete("/me/addresses/{address_id}", status_code=204)
async def delete_address(
    address_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Delete an address; orders already using it keep their own copy."""
    await services.db.run(service.delete_address, principal.user_id, address_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- a seat of goods


@router.post("/seats/{seat_id}/address", response_model=ShipmentOut)
async def choose_address(
    seat_id: str,
    body: ChooseAddressIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Deliver your seat of goods to one of your addresses (a copy goes onto the order): at
    checkout, or after the team succeeded, and again until it ships."""

    def work(session: Session) -> ShipmentOut:
        return ShipmentOut.of(
            service.choose_address(session, principal.user_id, seat_id, body.address_id, utc_now())
        )

    return await run_write(request, services, principal, work)


@router.get("/seats/{seat_id}/fulfilment", response_model=FulfilmentOut)
async def read_fulfilment(
    seat_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> FulfilmentOut:
    """Your order of goods: its address, shipment and timeline (paid, team succeeded, address,
    shipped, received)."""
    found = await services.db.read(service.order_fulfilment, principal.user_id, seat_id)
    return FulfilmentOut.of(found)


@router.post("/seats/{seat_id}/shipment", response_model=ShipmentOut)
async def ship_seat(
    seat_id: str,
    body: ShipmentIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Mark an order of a succeeded team shipped with its carrier and tracking number (the
    merchant's staff). The same carrier and number again changes nothing; 409
    ``already_shipped`` for another one."""
    days = services.settings.auto_receive_days

    def work(session: Session) -> ShipmentOut:
        outcome = service.ship_seat(
            session,
            principal,
            seat_id,
            body.carrier,
            body.tracking_number,
            utc_now(),
            auto_receive_days=days,
        )
        return ShipmentOut.of(outcome.shipment)

    return await run_write(request, services, principal, work)


@router.post("/seats/{seat_id}/receipt", response_model=ShipmentOut)
async def confirm_receipt(
    seat_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Say your parcel arrived (it is confirmed for you ``PINTUAN_AUTO_RECEIVE_DAYS`` after
    shipping otherwise)."""

    def work(session: Session) -> ShipmentOut:
        return ShipmentOut.of(
            service.confirm_receipt(session, principal.user_id, seat_id, utc_now())
        )

    return await run_write(request, services, principal, work)


# ---------------------------------------------------------------------------- the merchant


@router.get("/merchants/{merchant_id}/shipments", response_model=Page[QueueRowOut])
async def shipping_queue(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    state: QueueState | None = Query(
        default=None, description="awaiting_address, to_ship, shipped or received; all if none"
    ),
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[QueueRowOut]:
    """Orders of the merchant's succeeded teams of goods, oldest first, with their address."""
    cursor_id = decode_cursor(cursor) if cursor else None
    rows = await services.db.report(
        service.shipping_queue, principal, merchant_id, state, cursor_id, limit
    )
    return page_of(rows, limit, QueueRowOut.of)


@router.post("/merchants/{merchant_id}/shipments/bulk", response_model=BulkReportOut)
async def ship_many(
    merchant_id: str,
    body: BulkShipmentsIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Ship many orders at once: each good row ships, each bad row changes nothing and says
    why, row by row (the console's CSV upload does the same)."""
    days = services.settings.auto_receive_days
    rows = [
        service.BulkRow(n, r.seat_id.strip(), r.carrier, r.tracking_number)
        for n, r in enumerate(body.shipments, start=1)
    ]

    def work(session: Session) -> BulkReportOut:
        results = service.ship_many(
            session, principal, merchant_id, rows, utc_now(), auto_receive_days=days
        )
        return BulkReportOut.of(results)

    return await run_write(request, services, principal, work)
