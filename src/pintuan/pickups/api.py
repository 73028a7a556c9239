"""HTTP endpoints of pickup points: applying to lead one and the operators' decision, the
approved points to choose from, a seat's choice, and the leader's side (the point's orders per
day, the goods' arrival, the hand-over by code, earnings)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request, Response

from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.domain.pickups import PointStatus
from pintuan.errors import Forbidden
from pintuan.idempotency.http import run_raw_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import RawTx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.pickups import service
from pintuan.pickups.schemas import (
    ArrivalIn,
    ArrivalOut,
    ChoosePointIn,
    DecisionIn,
    EarningLine,
    EarningsOut,
    HandOverIn,
    PickupOut,
    PointApplicationIn,
    PointOut,
)
from pintuan.services import ServicesDep

router = Router(prefix="/v1", tags=["pickup points"])

StatusQuery = Annotated[
    PointStatus | None,
    Query(description="Operators only: points in this status (default: approved)"),
]
DayQuery = Annotated[date | None, Query(description="YYYY-MM-DD at the point; default: its today")]


# ---------------------------------------------------------------------------- points


@router.post("/pickup-points", status_code=201, response_model=PointOut)
async def apply_for_point(
    body: PointApplicationIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Apply to lead a pickup point: its name, address, opening hours and the orders it takes
    a day. It opens once an operator approves it."""

    def work(tx: RawTx) -> PointOut:
        point = service.apply_for_point(tx, principal.user_id, body.to_application(), utc_now())
        return PointOut.of(point, private=True)

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.get("/pickup-points", response_model=Page[PointOut])
async def list_points(
    principal: MaybePrincipal,
    services: ServicesDep,
    status: StatusQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PointOut]:
    """The approved pickup points, to choose one for a pickup deal's order; operators may ask
    for the points in another status (the applications waiting: ``pending``)."""
    operator = principal is not None and principal.is_operator
    if status not in (None, PointStatus.APPROVED) and not operator:
        raise Forbidden(
            "Only platform operators list points that are not open.", code="operator_only"
        )
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.run_raw(
        service.points_of_status, status or PointStatus.APPROVED, after, limit + 1, write=False
    )
    return page_of(rows, limit, lambda p: PointOut.of(p, private=operator))


@router.get("/me/pickup-points", response_model=Page[PointOut])
async def my_points(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PointOut]:
    """The pickup points you lead or applied to lead, with their status."""
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.run_raw(
        service.points_of_leader, principal.user_id, after, limit + 1, write=False
    )
    return page_of(rows, limit, lambda p: PointOut.of(p, private=True))


@router.post("/pickup-points/{point_id}/decision", response_model=PointOut)
async def decide_point(
    point_id: str,
    body: DecisionIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Operators: approve or reject an application, suspend an approved point or approve a
    suspended one again. 409 ``pickup_point_already_decided`` when the decision does not fit
    the point's status."""

    def work(tx: RawTx) -> PointOut:
        point = service.decide(tx, principal, point_id, body.approve, body.reason, utc_now())
        return PointOut.of(point, private=True)

    return await run_raw_write(request, services, principal, work)


# ---------------------------------------------------------------------------- a shopper's order


@router.post("/seats/{seat_id}/pickup", response_model=PickupOut)
async def choose_point(
    seat_id: str,
    body: ChoosePointIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Collect your seat of a pickup deal at an approved point; change it until the goods have
    arrived. 409 ``pickup_point_full`` when the point takes no more orders today,
    ``pickup_point_not_approved``, ``not_a_pickup_deal``, ``pickup_not_changeable`` or
    ``order_closed``."""

    def work(tx: RawTx) -> PickupOut:
        return PickupOut.of(
            service.choose_point(tx, principal.user_id, seat_id, body.pickup_point_id, utc_now())
        )

    return await run_raw_write(request, services, principal, work)


@router.get("/seats/{seat_id}/pickup", response_model=PickupOut)
async def read_pickup(
    seat_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> PickupOut:
    """Your order's pickup: the point, the code to show there, and its state."""
    found = await services.db.run_raw(service.get_for_user, principal.user_id, seat_id, write=False)
    return PickupOut.of(found)


# ---------------------------------------------------------------------------- the leader


@router.get("/pickup-points/{point_id}/orders", response_model=Page[PickupOut])
async def point_orders(
    point_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    day: DayQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PickupOut]:
    """The point's orders of one day, with their codes and states (its leader and operators).
    403 ``not_pickup_leader``."""
    after = decode_cursor(cursor) if cursor else None

    def read(tx: RawTx) -> list[service.PickupView]:
        shown = day.isoformat() if day else None
        if shown is None:
            shown = service.point_day(service.get_point(tx, point_id).time_zone, utc_now())
        return service.orders_of_point(tx, principal, point_id, shown, after, limit + 1)

    rows = await services.db.run_raw(read, write=False)
    return page_of(rows, limit, PickupOut.of)


@router.post("/pickup-points/{point_id}/arrivals", response_model=ArrivalOut)
async def mark_arrived(
    point_id: str,
    body: ArrivalIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """The goods of a deal reached the point: its waiting orders of succeeded teams become
    ready to collect (their shoppers are told), each for the deal's ``unclaimed_days``."""

    def work(tx: RawTx) -> ArrivalOut:
        count = service.mark_arrived(tx, principal, point_id, body.deal_id, utc_now())
        return ArrivalOut(arrived=count)

    return await run_raw_write(request, services, principal, work)


@router.post("/pickups/handover", response_model=PickupOut)
async def hand_over(
    body: HandOverIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Hand an order over to its shopper by the code they show (the point's leader); the
    leader's commission goes to their wallet. With an ``Idempotency-Key`` a repeat answers as
    the first time. 404 ``pickup_not_found``; 403 ``pickup_of_another_point``; 409
    ``pickup_already_handed_over`` (with when), ``pickup_refunded``, ``pickup_not_arrived`` or
    ``pickup_payment_pending``."""

    def work(tx: RawTx) -> PickupOut:
        return PickupOut.of(service.hand_over(tx, principal, body.code, utc_now()))

    return await run_raw_write(request, services, principal, work)


@router.get("/me/pickup-earnings", response_model=EarningsOut)
async def my_earnings(principal: CurrentPrincipal, services: ServicesDep) -> EarningsOut:
    """What your pickup points earned: orders handed over and commissions, per currency."""
    rows = await services.db.run_raw(service.earnings_of_leader, principal.user_id, write=False)
    return EarningsOut(data=[EarningLine.of(e) for e in rows])
