"""Use cases of fulfilment: the address book, a seat's delivery address, shipping and receipt.

Where shipping is decided: :func:`ship_seat` (one order) and :func:`ship_many` (a merchant's
CSV or the bulk API), both through :func:`_ship`; receipt in :func:`confirm_receipt` and the
worker's sweep (``fulfilment.tasks``). The states and their transitions are written down in
``domain/fulfilment.py``; every transition here is one conditional write whose "0 rows changed"
means another writer got there first, so racing writers end in one state with one event.
Services never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Result, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.addresses import FIELDS, AddressInvalid, address_lines, check_address
from pintuan.domain.deals import Vertical
from pintuan.domain.fulfilment import (
    Dispatch,
    DispatchInvalid,
    OrderFacts,
    QueueState,
    ReceivedBy,
    ShipmentStatus,
    TimelineStep,
    check_dispatch,
    queue_state,
    timeline,
)
from pintuan.domain.refunds import RefundSource
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.errors import AppError, Conflict, InvalidInput, NotFound
from pintuan.events.service import record_event
from pintuan.fulfilment.models import Address, Shipment
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import raw_tx
from pintuan.merchants.models import Merchant
from pintuan.payments.refund_models import Refund
from pintuan.teams.models import Seat, Team

MAX_ADDRESSES = 20
MAX_BULK_ROWS = 1000
LIVE_SEATS = (SeatStatus.HELD.value, SeatStatus.PAID.value, SeatStatus.CONFIRMED.value)
# What a seat was given back, its leader's reward left out (a free seat still ships).
GIVEN_BACK = (
    select(func.coalesce(func.sum(Refund.amount), 0))
    .where(Refund.seat_id == Seat.id, Refund.source != RefundSource.REWARD.value)
    .correlate(Seat)
    .scalar_subquery()
)
# A seat keeps its money (and so its goods ship) unless it lost its team's draw, whose money
# all went back, or was refunded in full.
KEEPS_MONEY: ColumnElement[bool] = and_(
    or_(Seat.lottery_won.is_(None), Seat.lottery_won.is_(True)), Seat.price_amount > GIVEN_BACK
)


def _rows_changed(result: Result[Any]) -> int:
    """Rows a conditional write changed: 0 means another writer got there first."""
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- address book


def invalid_address(error: AddressInvalid) -> InvalidInput:
    """The API's ``validation_error`` naming every field of an address that is wrong."""
    return InvalidInput(
        "Some fields of the address are not valid: " + str(error),
        code="validation_error",
        extra={
            "errors": [
                {"field": p.field, "reason": p.reason, "message": p.message} for p in error.problems
            ]
        },
    )


def list_addresses(session: Session, user_id: str) -> list[Address]:
    """The shopper's addresses, the default first, then the newest."""
    return list(
        session.scalars(
            select(Address)
            .where(Address.user_id == user_id)
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
    )


def get_address(session: Session, user_id: str, address_id: str) -> Address:
    """One of the shopper's addresses; anybody else's is not found."""
    address = session.get(Address, address_id)
    if address is None or address.user_id != user_id:
        raise NotFound(f"No address {address_id}.", code="address_not_found")
    return address


def add_address(
    session: Session,
    user_id: str,
    typed: Mapping[str, object],
    now: datetime,
    *,
    make_default: bool = False,
) -> Address:
    """Add an address to the book once it fits its country's format (every wrong field is
    named at once). The first address is the default."""
    try:
        checked = check_address(typed)
    except AddressInvalid as error:
        raise invalid_address(error) from error
    count = session.scalar(select(func.count()).where(Address.user_id == user_id)) or 0
    if count >= MAX_ADDRESSES:
        raise Conflict(
            f"An address book holds {MAX_ADDRESSES} addresses; delete one first.",
            code="address_book_full",
        )
    address = Address(
        id=new_id("addr"),
        user_id=user_id,
        is_default=False,
        created_at=now,
        updated_at=now,
        **checked.as_dict(),
    )
    session.add(address)
    session.flush()
    if make_default or count == 0:
        _make_default(session, user_id, address.id)
    return address


def update_address(
    session: Session,
    user_id: str,
    address_id: str,
    changes: Mapping[str, object],
    now: datetime,
    *,
    make_default: bool = False,
) -> Address:
    """Change an address (fields not given keep their value); orders that already use it keep
    their own copy."""
    address = get_address(session, user_id, address_id)
    typed: dict[str, object] = {name: getattr(address, name) for name in FIELDS}
    typed.update({k: v for k, v in changes.items() if k in FIELDS and v is not None})
    try:
        checked = check_address(typed)
    except AddressInvalid as error:
        raise invalid_address(error) from error
    for name, value in checked.as_dict().items():
        setattr(address, name, value)
    address.updated_at = now
    session.flush()
    if make_default:
        _make_default(session, user_id, address.id)
    return address


def delete_address(session: Session, user_id: str, address_id: str) -> None:
    """Delete an address; if it was the default, the newest remaining one becomes it."""
    address = get_address(session, user_id, address_id)
    was_default = address.is_default
    session.delete(address)
    session.flush()
    if was_default:
        newest = session.scalar(
            select(Address.id)
            .where(Address.user_id == user_id)
            .order_by(Address.id.desc())
            .limit(1)
        )
        if newest is not None:
            _make_default(session, user_id, newest)


def make_default(session: Session, user_id: str, address_id: str) -> Address:
    """Make one of the shopper's addresses the one checkouts offer first."""
    address = get_address(session, user_id, address_id)
    _make_default(session, user_id, address.id)
    session.refresh(address)
    return address


def _make_default(session: Session, user_id: str, address_id: str) -> None:
    # The shopper's rows locked first (PostgreSQL; SQLite has one writer), so two changes of
    # default at once wait for each other instead of both passing the unique index's check.
    session.execute(
        select(Address.id).where(Address.user_id == user_id).order_by(Address.id).with_for_update()
    ).all()
    # Off first, then on: the partial unique index allows one default per shopper at any moment.
    session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.is_default.is_(True), Address.id != address_id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Address)
        .where(Address.id == address_id)
        .values(is_default=True)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


# ---------------------------------------------------------------------------- a seat's address


@dataclass(frozen=True, slots=True)
class _SeatOfGoods:
    seat: Seat
    deal: Deal


def _seat_of_goods(seat: Seat | None, seat_id: str, session: Session) -> _SeatOfGoods:
    if seat is None:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    deal = session.get(Deal, seat.deal_id)
    assert deal is not None
    if deal.vertical != Vertical.GOODS.value:
        raise Conflict(
            "This order is not for goods; there is nothing to deliver.",
            code="nothing_to_deliver",
        )
    if deal.pickup_unclaimed_days is not None:
        raise Conflict(
            "This order is collected at a pickup point; there is nothing to deliver.",
            code="nothing_to_deliver",
        )
    return _SeatOfGoods(seat, deal)


def choose_address(
    session: Session, user_id: str, seat_id: str, address_id: str, now: datetime
) -> Shipment:
    """Deliver the shopper's seat of goods to one of their addresses: a copy of it goes onto
    the order. Allowed while the seat is live and until the parcel ships."""
    seat = session.get(Seat, seat_id)
    found = _seat_of_goods(seat if seat and seat.user_id == user_id else None, seat_id, session)
    if found.seat.status not in LIVE_SEATS:
        raise Conflict(
            f"This order is {found.seat.status}; it will not be delivered.", code="order_closed"
        )
    address = get_address(session, user_id, address_id)
    merchant = session.get(Merchant, found.deal.merchant_id)
    assert merchant is not None
    if address.country != merchant.country:
        raise Conflict(
            f"{merchant.name} delivers only within {merchant.country}; choose an address there.",
            code="address_not_served",
            extra={"countries": [merchant.country]},
        )
    snapshot = {name: getattr(address, name) or "" for name in FIELDS}
    values = {
        "seat_id": seat_id,
        "user_id": user_id,
        "merchant_id": merchant.id,
        "status": ShipmentStatus.ADDRESSED.value,
        "address": snapshot,
        "address_at": now,
    }
    dialect_insert = (
        postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    created = session.execute(
        dialect_insert(Shipment).values(**values).on_conflict_do_nothing(index_elements=["seat_id"])
    )
    changed = _rows_changed(created) == 1
    if not changed:
        # A conditional write: once shipped, the address is what the parcel carries.
        result = session.execute(
            update(Shipment)
            .where(Shipment.seat_id == seat_id, Shipment.status == ShipmentStatus.ADDRESSED.value)
            .values(address=snapshot, address_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rows_changed(result) != 1:
            raise Conflict(
                "This order has shipped; its address can no longer change.",
                code="already_shipped",
            )
    record_event(
        raw_tx(session), "seat.address_chosen", seat_id, user_id=user_id, deal_id=found.deal.id
    )
    session.expire_all()
    shipment = session.get(Shipment, seat_id)
    assert shipment is not None
    return shipment


# ---------------------------------------------------------------------------- shipping


@dataclass(frozen=True, slots=True)
class ShipOutcome:
    shipment: Shipment
    changed: bool  # False: it was already shipped with this very carrier and number


def ship_seat(
    session: Session,
    principal: Principal,
    seat_id: str,
    carrier: object,
    tracking_number: object,
    now: datetime,
    *,
    auto_receive_days: int,
) -> ShipOutcome:
    """Mark one succeeded order of goods shipped with a carrier and tracking number (the
    merchant's staff, operators). The same carrier and number again changes nothing; another
    one after it shipped is refused (``already_shipped``)."""
    try:
        dispatch = check_dispatch(carrier, tracking_number)
    except DispatchInvalid as error:
        raise InvalidInput(
            "The carrier or tracking number is not usable: " + str(error),
            code="validation_error",
            extra={"errors": [{"field": k, "message": v} for k, v in error.problems.items()]},
        ) from error
    seat = session.get(Seat, seat_id)
    deal = session.get(Deal, seat.deal_id) if seat else None
    if seat is None or deal is None or not principal.can_manage(deal.merchant_id):
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return _ship(
        session, principal, _seat_of_goods(seat, seat_id, session), dispatch, now, auto_receive_days
    )


def _ship(
    session: Session,
    principal: Principal,
    found: _SeatOfGoods,
    dispatch: Dispatch,
    now: datetime,
    auto_receive_days: int,
) -> ShipOutcome:
    seat_id = found.seat.id
    if found.seat.status != SeatStatus.CONFIRMED.value:
        raise Conflict(
            f"Only an order whose team succeeded ships; this one is {found.seat.status}.",
            code="not_ready_to_ship",
        )
    if session.scalar(select(Seat.id).where(Seat.id == seat_id, KEEPS_MONEY)) is None:
        raise Conflict(
            "This order's money went back to its buyer (refunded in full, or it lost its "
            "team's draw): do not ship it.",
            code="order_refunded",
        )
    result = session.execute(
        update(Shipment)
        .where(Shipment.seat_id == seat_id, Shipment.status == ShipmentStatus.ADDRESSED.value)
        .values(
            status=ShipmentStatus.SHIPPED.value,
            carrier=dispatch.carrier,
            tracking_number=dispatch.tracking_number,
            shipped_at=now,
            shipped_by=principal.user_id,
            receive_due_at=now + timedelta(days=auto_receive_days),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    shipment = session.get(Shipment, seat_id)
    if _rows_changed(result) == 1:
        assert shipment is not None
        record_event(
            raw_tx(session),
            "seat.shipped",
            seat_id,
            user_id=found.seat.user_id,
            deal_id=found.deal.id,
            carrier=dispatch.carrier,
            tracking_number=dispatch.tracking_number,
        )
        return ShipOutcome(shipment, True)
    if shipment is None:
        raise Conflict(
            "The shopper has not chosen a delivery address yet; they are asked for one.",
            code="address_missing",
        )
    if (shipment.carrier, shipment.tracking_number) == (
        dispatch.carrier,
        dispatch.tracking_number,
    ):
        return ShipOutcome(shipment, False)
    raise Conflict(
        f"This order has already shipped with {shipment.carrier} {shipment.tracking_number}.",
        code="already_shipped",
    )


@dataclass(frozen=True, slots=True)
class BulkRow:
    """One row of a bulk shipment: its number in the file (the header is row 1)."""

    row: int
    seat_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class BulkResult:
    row: int
    seat_id: str
    outcome: str  # shipped, unchanged or refused
    code: str | None = None
    message: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def ship_many(
    session: Session,
    principal: Principal,
    merchant_id: str,
    rows: Sequence[BulkRow],
    now: datetime,
    *,
    auto_receive_days: int,
) -> list[BulkResult]:
    """Ship many orders of one merchant, row by row: each good row ships, each bad row changes
    nothing and says why (its problem ``code`` and message). A row repeating an order already
    in the file is refused."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    if len(rows) > MAX_BULK_ROWS:
        raise InvalidInput(
            f"Send at most {MAX_BULK_ROWS} rows at once; split the file.",
            code="too_many_rows",
        )
    results: list[BulkResult] = []
    seen: set[str] = set()
    for row in rows:
        try:
            if not row.seat_id:
                raise InvalidInput(
                    "The order (seat_id) is empty.",
                    code="validation_error",
                    extra={"errors": [{"field": "seat_id", "message": "empty"}]},
                )
            if row.seat_id in seen:
                raise Conflict("This order is already on an earlier row.", code="duplicate_row")
            seen.add(row.seat_id)
            try:
                dispatch = check_dispatch(row.carrier, row.tracking_number)
            except DispatchInvalid as error:
                raise InvalidInput(
                    str(error),
                    code="validation_error",
                    extra={
                        "errors": [{"field": k, "message": v} for k, v in error.problems.items()]
                    },
                ) from error
            seat = session.get(Seat, row.seat_id)
            deal = session.get(Deal, seat.deal_id) if seat else None
            if seat is None or deal is None or deal.merchant_id != merchant_id:
                raise NotFound(f"No order {row.seat_id} of this shop.", code="seat_not_found")
            outcome = _ship(
                session,
                principal,
                _seat_of_goods(seat, row.seat_id, session),
                dispatch,
                now,
                auto_receive_days,
            )
        except AppError as refused:
            if refused.status >= 500:
                raise
            problems = {
                str(e.get("field")): str(e.get("message"))
                for e in refused.extra.get("errors", [])
                if isinstance(e, dict)
            }
            results.append(
                BulkResult(row.row, row.seat_id, "refused", refused.code, refused.detail, problems)
            )
            continue
        results.append(
            BulkResult(row.row, row.seat_id, "shipped" if outcome.changed else "unchanged")
        )
    return results


# ---------------------------------------------------------------------------- receipt


def confirm_receipt(session: Session, user_id: str, seat_id: str, now: datetime) -> Shipment:
    """The shopper says the parcel arrived. If the worker confirmed it first, this changes
    nothing and answers the same received order."""
    shipment = session.get(Shipment, seat_id)
    if shipment is None or shipment.user_id != user_id:
        seat = session.get(Seat, seat_id)
        if seat is None or seat.user_id != user_id:
            raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
        raise Conflict("This order has not shipped yet.", code="not_shipped")
    result = session.execute(
        update(Shipment)
        .where(Shipment.seat_id == seat_id, Shipment.status == ShipmentStatus.SHIPPED.value)
        .values(
            status=ShipmentStatus.RECEIVED.value,
            received_at=now,
            received_by=ReceivedBy.SHOPPER.value,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    shipment = session.get(Shipment, seat_id)
    assert shipment is not None
    if _rows_changed(result) == 1:
        record_event(
            raw_tx(session), "seat.received", seat_id, user_id=user_id, by=ReceivedBy.SHOPPER.value
        )
    elif shipment.status == ShipmentStatus.ADDRESSED.value:
        raise Conflict("This order has not shipped yet.", code="not_shipped")
    return shipment


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """What a shopper's order of goods shows: whether it still needs an address, where it
    goes, its state and its timeline."""

    seat_id: str
    status: str | None  # the shipment's status; None: no address chosen yet
    needs_address: bool
    can_choose_address: bool
    can_confirm_receipt: bool
    address: dict[str, str] | None
    address_lines: list[str]
    carrier: str | None
    tracking_number: str | None
    receive_due_at: datetime | None
    steps: list[TimelineStep]


def fulfilments_of_seats(session: Session, seat_ids: Sequence[str]) -> dict[str, Fulfilment]:
    """The fulfilment of each seat of goods among ``seat_ids`` (other verticals are left out)."""
    if not seat_ids:
        return {}
    rows = session.execute(
        select(Seat, Team.status, Team.ended_at, Shipment, KEEPS_MONEY)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(Team, Team.id == Seat.team_id)
        .outerjoin(Shipment, Shipment.seat_id == Seat.id)
        .where(
            Seat.id.in_(list(seat_ids)),
            Deal.vertical == Vertical.GOODS.value,
            Deal.pickup_unclaimed_days.is_(None),  # collected at a pickup point instead
        )
    ).all()
    return {
        seat.id: _fulfilment(seat, ts, ended, ship, bool(keeps))
        for seat, ts, ended, ship, keeps in rows
    }


def needs_address_first(session: Session, seat_id: str) -> bool:
    """Whether a seat just taken is of goods and has no delivery address yet: its checkout asks
    for one before the payment."""
    chosen = session.scalar(select(Shipment.seat_id).where(Shipment.seat_id == seat_id))
    if chosen is not None:
        return False
    vertical = session.scalar(
        select(Deal.vertical)
        .join(Seat, Seat.deal_id == Deal.id)
        .where(Seat.id == seat_id, Deal.pickup_unclaimed_days.is_(None))
    )
    return vertical == Vertical.GOODS.value


def order_fulfilment(session: Session, user_id: str, seat_id: str) -> Fulfilment:
    """The fulfilment of one of the shopper's seats of goods."""
    seat = session.get(Seat, seat_id)
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    found = fulfilments_of_seats(session, [seat_id]).get(seat_id)
    if found is None:
        _seat_of_goods(seat, seat_id, session)  # raises nothing_to_deliver
        raise AssertionError("a seat of goods has a fulfilment")
    return found


def _fulfilment(
    seat: Seat,
    team_status: str,
    team_ended_at: datetime | None,
    shipment: Shipment | None,
    keeps_money: bool,
) -> Fulfilment:
    succeeded = team_status == TeamStatus.SUCCEEDED.value
    live = seat.status in LIVE_SEATS
    # An order whose money went back before it shipped asks for no address any more.
    to_deliver = live and keeps_money
    status = shipment.status if shipment else None
    facts = OrderFacts(
        paid_at=seat.paid_at,
        team_succeeded_at=team_ended_at if succeeded and live else None,
        address_at=shipment.address_at if shipment else None,
        shipped_at=shipment.shipped_at if shipment else None,
        carrier=shipment.carrier if shipment else None,
        tracking_number=shipment.tracking_number if shipment else None,
        received_at=shipment.received_at if shipment else None,
        received_by=shipment.received_by if shipment else None,
    )
    return Fulfilment(
        seat_id=seat.id,
        status=status,
        needs_address=to_deliver and shipment is None,
        can_choose_address=to_deliver and status in (None, ShipmentStatus.ADDRESSED.value),
        can_confirm_receipt=status == ShipmentStatus.SHIPPED.value,
        address=dict(shipment.address) if shipment else None,
        address_lines=address_lines(shipment.address) if shipment else [],
        carrier=facts.carrier,
        tracking_number=facts.tracking_number,
        receive_due_at=shipment.receive_due_at if shipment else None,
        steps=timeline(facts),
    )


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One succeeded order of goods in the merchant's shipping queue."""

    id: str  # the seat's, for the cursor
    deal_id: str
    deal_title: str
    shopper_name: str
    state: QueueState
    team_succeeded_at: datetime | None
    address: dict[str, str] | None
    address_lines: list[str]
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    received_at: datetime | None
    received_by: str | None


def shipping_queue(
    session: Session,
    principal: Principal,
    merchant_id: str,
    state: QueueState | None,
    cursor_id: str | None,
    limit: int,
) -> list[QueueRow]:
    """Orders of the merchant's succeeded teams of goods, oldest first (the first to ship),
    in one ``state`` or all; ``limit + 1`` rows so the caller knows whether more follow."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    query = (
        select(Seat, Deal.title, User.display_name, Team.ended_at, Shipment)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(Team, Team.id == Seat.team_id)
        .join(User, User.id == Seat.user_id)
        .outerjoin(Shipment, Shipment.seat_id == Seat.id)
        .where(
            Deal.merchant_id == merchant_id,
            Deal.vertical == Vertical.GOODS.value,
            Deal.pickup_unclaimed_days.is_(None),  # collected at a pickup point instead
            Seat.status == SeatStatus.CONFIRMED.value,
            # Not an order whose money went back before it shipped (a draw lost, a refund in
            # full); one shipped or received stays listed whatever came after.
            or_(
                Shipment.status.in_((ShipmentStatus.SHIPPED.value, ShipmentStatus.RECEIVED.value)),
                KEEPS_MONEY,
            ),
        )
        .order_by(Seat.id)
        .limit(limit + 1)
    )
    if state is QueueState.AWAITING_ADDRESS:
        query = query.where(Shipment.seat_id.is_(None))
    elif state is not None:
        word = {
            QueueState.TO_SHIP: ShipmentStatus.ADDRESSED,
            QueueState.SHIPPED: ShipmentStatus.SHIPPED,
            QueueState.RECEIVED: ShipmentStatus.RECEIVED,
        }[state]
        query = query.where(Shipment.status == word.value)
    if cursor_id is not None:
        query = query.where(Seat.id > cursor_id)
    return [
        QueueRow(
            id=seat.id,
            deal_id=seat.deal_id,
            deal_title=title,
            shopper_name=name,
            state=queue_state(ship.status if ship else None),
            team_succeeded_at=ended_at,
            address=dict(ship.address) if ship else None,
            address_lines=address_lines(ship.address) if ship else [],
            carrier=ship.carrier if ship else None,
            tracking_number=ship.tracking_number if ship else None,
            shipped_at=ship.shipped_at if ship else None,
            received_at=ship.received_at if ship else None,
            received_by=ship.received_by if ship else None,
        )
        for seat, title, name, ended_at, ship in session.execute(query).all()
    ]
