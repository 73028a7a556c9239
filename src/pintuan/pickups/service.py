"""Use cases of pickup points (``domain/pickups.py``): a shopper applies to lead one and operators
decide; a pickup deal's shopper chooses a point for their seat; the point's leader sees its
orders per day, marks a deal's goods arrived and hands each order over by its code; the worker
refunds orders not collected in time.

Every transition of a pickup is one conditional write on its status, so racing writers end in
one state and the money follows the winner: a hand-over freezes the leader's commission from the
merchant's payable (``ledger/commissions.py``, released to their wallet when the order's refund
window closes, shrunk by refunds before that), the unclaimed refund gives
the seat's money back in full through ``payments.refunds``. A point's daily capacity is counted
while holding the point's row (its lock on PostgreSQL, the one writer on SQLite), so concurrent
choosers never exceed it. Everything runs on the raw path. Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pintuan.deals.service import refuse_problems
from pintuan.domain.commissions import CommissionKind, CommissionStatus, commission_on
from pintuan.domain.pickups import (
    PickupStatus,
    PickupTerms,
    PointApplication,
    PointStatus,
    application_problems,
    decided_status,
)
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus
from pintuan.domain.vouchers import new_code, normalize_code
from pintuan.errors import AppError, Conflict, Forbidden, NotFound
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import zone
from pintuan.ledger.commissions import NewCommission, freeze, paid_left
from pintuan.payments.refunds import EARNED_OF_SEAT, EarnedPayment

MAX_DRAWS = 5
MAX_REASON = 500

# ---------------------------------------------------------------------------- statements

_POINT_COLUMNS = """
    id, leader_id, name, address, opening_hours, capacity_per_day, time_zone, status,
    decided_by, decided_at, decision_reason, created_at
"""
POINT_BY_ID = Sql(f"SELECT {_POINT_COLUMNS} FROM pickup_points WHERE id = :id")  # noqa: S608
POINT_LOCKED = Sql(POINT_BY_ID.text + " FOR UPDATE")
POINTS_OF_STATUS = Sql(
    f"""SELECT {_POINT_COLUMNS} FROM pickup_points
    WHERE status = :status AND (CAST(:after AS VARCHAR(40)) IS NULL OR id > :after)
    ORDER BY id LIMIT :limit"""  # noqa: S608
)
POINTS_OF_LEADER = Sql(
    f"""SELECT {_POINT_COLUMNS} FROM pickup_points
    WHERE leader_id = :leader_id AND (CAST(:after AS VARCHAR(40)) IS NULL OR id > :after)
    ORDER BY id LIMIT :limit"""  # noqa: S608
)
INSERT_POINT = Sql(
    """
    INSERT INTO pickup_points (id, leader_id, name, address, opening_hours, capacity_per_day,
        time_zone, status, created_at, updated_at)
    VALUES (:id, :leader_id, :name, :address, :opening_hours, :capacity_per_day, :time_zone,
        :pending, :now, :now)
""",
    pending=PointStatus.PENDING,
)
DECIDE_POINT = Sql("""
    UPDATE pickup_points SET status = :to, decided_by = :by, decided_at = :now,
        decision_reason = :reason, updated_at = :now
    WHERE id = :id AND status = :from
    RETURNING id
""")
USER_TIME_ZONE = Sql("SELECT time_zone FROM users WHERE id = :id")

# A leader's commission on a pickup: its row's state; one paid into the wallet at the hand-over
# (before commissions froze) has no row and counts as released.
_COMMISSION_STATUS = (
    "CASE WHEN cm.id IS NOT NULL THEN cm.status"
    f" WHEN p.commission_amount > 0 THEN '{CommissionStatus.RELEASED.value}' END"
)
_PICKUP_COLUMNS = f"""
    p.seat_id, p.pickup_point_id, pp.name AS point_name, pp.address AS point_address,
    pp.opening_hours AS point_hours, pp.leader_id, p.deal_id, d.title AS deal_title,
    p.merchant_id, p.user_id, u.display_name AS shopper_name, p.code, p.status, p.day,
    p.arrived_at, p.claim_due_at, p.handed_over_at, p.handed_over_by, p.commission_base,
    p.commission_amount, {_COMMISSION_STATUS} AS commission_status, p.refund_id, p.ended_at,
    p.created_at, s.status AS seat_status, s.price_amount AS amount, d.currency
"""
_PICKUP_FROM = f"""
    FROM pickups p JOIN pickup_points pp ON pp.id = p.pickup_point_id
    JOIN deals d ON d.id = p.deal_id JOIN seats s ON s.id = p.seat_id
    JOIN users u ON u.id = p.user_id
    LEFT JOIN commissions cm ON cm.seat_id = p.seat_id AND cm.kind = '{CommissionKind.PICKUP.value}'
"""
PICKUP_BY_SEAT = Sql(f"SELECT {_PICKUP_COLUMNS} {_PICKUP_FROM} WHERE p.seat_id = :seat_id")
PICKUP_BY_CODE = Sql(f"SELECT {_PICKUP_COLUMNS} {_PICKUP_FROM} WHERE p.code = :code")
PICKUPS_OF_SEATS = Sql(f"SELECT {_PICKUP_COLUMNS} {_PICKUP_FROM} WHERE p.seat_id IN_LIST(:ids)")
PICKUPS_OF_POINT_DAY = Sql(
    f"""SELECT {_PICKUP_COLUMNS} {_PICKUP_FROM}
    WHERE p.pickup_point_id = :point_id AND p.day = :day
      AND (CAST(:after AS VARCHAR(40)) IS NULL OR p.seat_id > :after)
    ORDER BY p.seat_id LIMIT :limit"""
)

SEAT_FOR_PICKUP = Sql("""
    SELECT s.id, s.user_id, s.status, s.deal_id, d.merchant_id, d.ends_at,
           d.pickup_commission_bps, d.pickup_unclaimed_days
    FROM seats s JOIN deals d ON d.id = s.deal_id WHERE s.id = :id
""")
# The point's live orders of a day: pickups still to collect or collected, of seats still live.
TAKEN_ON_DAY = Sql(
    """
    SELECT COUNT(*) FROM pickups p JOIN seats s ON s.id = p.seat_id
    WHERE p.pickup_point_id = :point_id AND p.day = :day
      AND p.status IN (:waiting, :arrived, :handed_over)
      AND s.status IN (:held, :paid, :confirmed)
""",
    waiting=PickupStatus.WAITING,
    arrived=PickupStatus.ARRIVED,
    handed_over=PickupStatus.HANDED_OVER,
    held=SeatStatus.HELD,
    paid=SeatStatus.PAID,
    confirmed=SeatStatus.CONFIRMED,
)
# A code already taken (50 random bits: rare) or a seat that has its pickup already (a
# concurrent first choice) makes no row; the caller tells which.
INSERT_PICKUP = Sql(
    """
    INSERT INTO pickups (seat_id, pickup_point_id, deal_id, merchant_id, user_id, code, status,
        day, claim_due_at, commission_base, commission_amount, created_at, updated_at)
    VALUES (:seat_id, :point_id, :deal_id, :merchant_id, :user_id, :code, :waiting, :day,
        :claim_due_at, 0, 0, :now, :now)
    ON CONFLICT DO NOTHING
    RETURNING seat_id
""",
    waiting=PickupStatus.WAITING,
)
PICKUP_EXISTS = Sql("SELECT status, pickup_point_id FROM pickups WHERE seat_id = :seat_id")
MOVE_PICKUP = Sql(
    """
    UPDATE pickups SET pickup_point_id = :point_id, day = :day, updated_at = :now
    WHERE seat_id = :seat_id AND status = :waiting
    RETURNING seat_id
""",
    waiting=PickupStatus.WAITING,
)
ARRIVE = Sql(
    """
    UPDATE pickups SET status = :arrived, arrived_at = :now, claim_due_at = :due,
        updated_at = :now
    WHERE pickup_point_id = :point_id AND deal_id = :deal_id AND status = :waiting
      AND EXISTS (SELECT 1 FROM seats s WHERE s.id = pickups.seat_id AND s.status = :confirmed)
    RETURNING seat_id, user_id
""",
    arrived=PickupStatus.ARRIVED,
    waiting=PickupStatus.WAITING,
    confirmed=SeatStatus.CONFIRMED,
)
HAND_OVER = Sql(
    """
    UPDATE pickups SET status = :handed_over, handed_over_at = :now, handed_over_by = :by,
        updated_at = :now
    WHERE seat_id = :seat_id AND status = :arrived
    RETURNING seat_id
""",
    handed_over=PickupStatus.HANDED_OVER,
    arrived=PickupStatus.ARRIVED,
)
NOTE_COMMISSION = Sql("""
    UPDATE pickups SET commission_base = :base, commission_amount = :amount
    WHERE seat_id = :seat_id
""")
DEAL_PICKUP_TERMS = Sql(
    "SELECT pickup_commission_bps, pickup_unclaimed_days FROM deals WHERE id = :id"
)
# What the leader keeps of each order handed over (its commission less what refunds took back),
# and of it what still waits for the order's refund window.
EARNINGS_OF_LEADER = Sql(
    """
    SELECT d.currency, COUNT(*) AS orders,
        COALESCE(SUM(COALESCE(cm.amount - cm.clawed_back, p.commission_amount)), 0) AS amount,
        COALESCE(SUM(CASE WHEN cm.status = :frozen THEN cm.amount - cm.clawed_back END), 0)
            AS frozen
    FROM pickups p JOIN pickup_points pp ON pp.id = p.pickup_point_id
    JOIN deals d ON d.id = p.deal_id
    LEFT JOIN commissions cm ON cm.seat_id = p.seat_id AND cm.kind = :pickup
    WHERE pp.leader_id = :leader_id AND p.status = :handed_over
    GROUP BY d.currency ORDER BY d.currency
""",
    handed_over=PickupStatus.HANDED_OVER,
    frozen=CommissionStatus.FROZEN,
    pickup=CommissionKind.PICKUP,
)


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class PointView:
    id: str
    leader_id: str
    name: str
    address: str
    opening_hours: str
    capacity_per_day: int
    time_zone: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PickupView:
    """A pickup with what its shopper and its point's leader read of the point, deal and seat."""

    seat_id: str
    pickup_point_id: str
    point_name: str
    point_address: str
    point_hours: str
    leader_id: str
    deal_id: str
    deal_title: str
    merchant_id: str
    user_id: str
    shopper_name: str
    code: str
    status: str
    day: str
    arrived_at: datetime | None
    claim_due_at: datetime
    handed_over_at: datetime | None
    handed_over_by: str | None
    commission_base: int
    commission_amount: int
    commission_status: str | None  # the leader's commission, once handed over
    refund_id: str | None
    ended_at: datetime | None
    created_at: datetime
    seat_status: str
    amount: int
    currency: str

    @property
    def id(self) -> str:
        """Its seat's id: a pickup is one seat's (lists page by it)."""
        return self.seat_id


@dataclass(frozen=True, slots=True)
class Earnings:
    """A leader's commissions in one currency: orders handed over, what they earned (less what
    refunds took back) and of it what is still frozen."""

    currency: str
    orders: int
    amount: int
    frozen: int


@dataclass(frozen=True, slots=True)
class _Seat:
    id: str
    user_id: str
    status: str
    deal_id: str
    merchant_id: str
    ends_at: Any
    pickup_commission_bps: int | None
    pickup_unclaimed_days: int | None


def _points(tx: RawTx, sql: Sql, params: dict[str, Any]) -> list[PointView]:
    def build(**row: Any) -> PointView:
        row["created_at"] = tx.read_instant(row["created_at"])
        row["decided_at"] = tx.read_optional_instant(row["decided_at"])
        return PointView(**row)

    return tx.all_as(build, sql, params)


def _pickups(tx: RawTx, sql: Sql, params: dict[str, Any]) -> list[PickupView]:
    def build(**row: Any) -> PickupView:
        row["claim_due_at"] = tx.read_instant(row["claim_due_at"])
        row["created_at"] = tx.read_instant(row["created_at"])
        for name in ("arrived_at", "handed_over_at", "ended_at"):
            row[name] = tx.read_optional_instant(row[name])
        return PickupView(**row)

    return tx.all_as(build, sql, params)


def pickup_of_seat(tx: RawTx, seat_id: str) -> PickupView:
    found = _pickups(tx, PICKUP_BY_SEAT, {"seat_id": seat_id})
    assert found, seat_id
    return found[0]


def point_day(time_zone: str, now: datetime) -> str:
    """The calendar day at a point (in its time zone) of the instant ``now``."""
    return now.astimezone(zone(time_zone)).date().isoformat()


# ---------------------------------------------------------------------------- points


def get_point(tx: RawTx, point_id: str) -> PointView:
    found = _points(tx, POINT_BY_ID, {"id": point_id})
    if not found:
        raise NotFound(f"No pickup point {point_id}.", code="pickup_point_not_found")
    return found[0]


def apply_for_point(
    tx: RawTx, user_id: str, application: PointApplication, now: datetime
) -> PointView:
    """A signed-in shopper asks to lead a pickup point; it waits for an operator's decision.
    Its days are the shopper's time zone's."""
    application = PointApplication(
        name=" ".join(application.name.split()),
        address=application.address.strip(),
        opening_hours=" ".join(application.opening_hours.split()),
        capacity_per_day=application.capacity_per_day,
    )
    refuse_problems(application_problems(application))
    point_id = new_id("pp")
    tx.execute(
        INSERT_POINT,
        {
            "id": point_id,
            "leader_id": user_id,
            "name": application.name,
            "address": application.address,
            "opening_hours": application.opening_hours,
            "capacity_per_day": application.capacity_per_day,
            "time_zone": str(tx.scalar(USER_TIME_ZONE, {"id": user_id}) or "UTC"),
            "now": tx.instant(now),
        },
    )
    record_event(tx, "pickup_point.applied", point_id, user_id=user_id)
    return get_point(tx, point_id)


def points_of_status(
    tx: RawTx, status: PointStatus, after: str | None, limit: int
) -> list[PointView]:
    """Points in one status, oldest first (approved ones for shoppers choosing)."""
    return _points(tx, POINTS_OF_STATUS, {"status": status.value, "after": after, "limit": limit})


def points_of_leader(tx: RawTx, user_id: str, after: str | None, limit: int) -> list[PointView]:
    """The points a shopper leads or applied to lead, oldest first."""
    return _points(tx, POINTS_OF_LEADER, {"leader_id": user_id, "after": after, "limit": limit})


def decide(
    tx: RawTx,
    principal: Principal,
    point_id: str,
    approve: bool,
    reason: str | None,
    now: datetime,
) -> PointView:
    """An operator approves or rejects an application, suspends an approved point, or approves
    a suspended one again (``domain.pickups.decided_status``)."""
    if not principal.is_operator:
        raise Forbidden("Only platform operators decide on pickup points.", code="operator_only")
    point = get_point(tx, point_id)
    to = decided_status(PointStatus(point.status), approve)
    said = " ".join((reason or "").split())[:MAX_REASON] or None
    done = (
        tx.scalar(
            DECIDE_POINT,
            {
                "id": point_id,
                "from": point.status,
                "to": to.value,
                "by": principal.user_id,
                "reason": said,
                "now": tx.instant(now),
            },
        )
        if to is not None
        else None
    )
    if done is None:
        now_status = get_point(tx, point_id).status
        raise Conflict(
            f"This pickup point is {now_status}; it cannot be "
            f"{'approved' if approve else 'rejected or suspended'} now.",
            code="pickup_point_already_decided",
            extra={"status": now_status},
        )
    assert to is not None
    record_event(tx, f"pickup_point.{to.value}", point_id, user_id=point.leader_id, reason=said)
    return get_point(tx, point_id)


def _led_point(tx: RawTx, principal: Principal, point_id: str) -> PointView:
    """A point the caller leads (or any, for an operator)."""
    point = get_point(tx, point_id)
    if point.leader_id != principal.user_id and not principal.is_operator:
        raise Forbidden(
            "Only this pickup point's leader may see and change its orders.",
            code="not_pickup_leader",
        )
    return point


# ---------------------------------------------------------------------------- choosing


def _seat_for_pickup(tx: RawTx, user_id: str, seat_id: str) -> tuple[_Seat, PickupTerms]:
    seat = tx.one_as(_Seat, SEAT_FOR_PICKUP, {"id": seat_id})
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    if seat.pickup_commission_bps is None or seat.pickup_unclaimed_days is None:
        raise Conflict("This order is not collected at a pickup point.", code="not_a_pickup_deal")
    if seat.status not in (SeatStatus.HELD, SeatStatus.PAID, SeatStatus.CONFIRMED):
        raise Conflict(
            f"This order is {seat.status}; it will not be collected.", code="order_closed"
        )
    return seat, PickupTerms(int(seat.pickup_commission_bps), int(seat.pickup_unclaimed_days))


def choose_point(tx: RawTx, user_id: str, seat_id: str, point_id: str, now: datetime) -> PickupView:
    """The shopper collects their seat of a pickup deal at an approved point: the seat gets its
    pickup (and its code), or moves to another point until its goods have arrived. A point
    takes at most its capacity of live orders a day: counted while holding the point's row,
    so that concurrent choosers never exceed it (``pickup_point_full``)."""
    seat, terms = _seat_for_pickup(tx, user_id, seat_id)
    found = _points(tx, POINT_BY_ID if tx.sqlite else POINT_LOCKED, {"id": point_id})
    if not found:
        raise NotFound(f"No pickup point {point_id}.", code="pickup_point_not_found")
    point = found[0]
    if point.status != PointStatus.APPROVED:
        raise Conflict(
            "This pickup point is not open for orders; choose another.",
            code="pickup_point_not_approved",
        )
    existing = tx.one(PICKUP_EXISTS, {"seat_id": seat_id})
    if existing is not None and existing[1] == point_id:
        return pickup_of_seat(tx, seat_id)
    if existing is not None and existing[0] != PickupStatus.WAITING:
        raise _not_changeable()
    day = point_day(point.time_zone, now)
    taken = int(tx.scalar(TAKEN_ON_DAY, {"point_id": point_id, "day": day}))
    if taken >= point.capacity_per_day:
        raise Conflict(
            f"{point.name} takes {point.capacity_per_day} orders a day and is full today; "
            "choose another point.",
            code="pickup_point_full",
        )
    at = tx.instant(now)
    if existing is None:
        due = terms.claim_due(tx.read_instant(seat.ends_at))
        for _ in range(MAX_DRAWS):
            made = tx.scalar(
                INSERT_PICKUP,
                {
                    "seat_id": seat_id,
                    "point_id": point_id,
                    "deal_id": seat.deal_id,
                    "merchant_id": seat.merchant_id,
                    "user_id": user_id,
                    "code": new_code(),
                    "day": day,
                    "claim_due_at": tx.instant(due),
                    "now": at,
                },
            )
            if made is not None:
                break
            if tx.one(PICKUP_EXISTS, {"seat_id": seat_id}) is not None:
                break  # chosen meanwhile by the same shopper: move it below
        else:  # pragma: no cover - five collisions in a space of 2**50 codes
            raise RuntimeError("could not draw a free pickup code")
        if made is not None:
            record_event(tx, "pickup.chosen", seat_id, user_id=user_id, point_id=point_id)
            return pickup_of_seat(tx, seat_id)
    if tx.scalar(MOVE_PICKUP, {"seat_id": seat_id, "point_id": point_id, "day": day, "now": at}):
        record_event(tx, "pickup.chosen", seat_id, user_id=user_id, point_id=point_id)
        return pickup_of_seat(tx, seat_id)
    raise _not_changeable()


def _not_changeable() -> Conflict:
    return Conflict(
        "The goods of this order are at its pickup point already; it is collected there.",
        code="pickup_not_changeable",
    )


def pickups_of_seats(tx: RawTx, seat_ids: list[str]) -> dict[str, PickupView]:
    """The pickups of these seats, by seat (order and team pages show them)."""
    if not seat_ids:
        return {}
    return {p.seat_id: p for p in _pickups(tx, PICKUPS_OF_SEATS, {"ids": seat_ids})}


def get_for_user(tx: RawTx, user_id: str, seat_id: str) -> PickupView:
    found = _pickups(tx, PICKUP_BY_SEAT, {"seat_id": seat_id})
    if not found or found[0].user_id != user_id:
        raise NotFound(f"No pickup for seat {seat_id}.", code="pickup_not_found")
    return found[0]


def needs_pickup_first(tx: RawTx, seat_id: str) -> bool:
    """Whether a seat just taken is of a pickup deal and has no point yet: its checkout asks
    for one before the payment."""
    row = tx.one(SEAT_FOR_PICKUP, {"id": seat_id})
    if row is None or row[6] is None:
        return False
    return tx.one(PICKUP_EXISTS, {"seat_id": seat_id}) is None


# ---------------------------------------------------------------------------- the leader


def orders_of_point(
    tx: RawTx,
    principal: Principal,
    point_id: str,
    day: str,
    after: str | None,
    limit: int,
) -> list[PickupView]:
    """A point's orders of one day (its leader and operators), by seat."""
    _led_point(tx, principal, point_id)
    return _pickups(
        tx,
        PICKUPS_OF_POINT_DAY,
        {"point_id": point_id, "day": day, "after": after, "limit": limit},
    )


def mark_arrived(
    tx: RawTx, principal: Principal, point_id: str, deal_id: str, now: datetime
) -> int:
    """The goods of a deal reached the point: its waiting orders of succeeded teams are ready
    to collect, each until ``unclaimed_days`` from now. Returns how many; 0 when none waited."""
    point = _led_point(tx, principal, point_id)
    row = tx.one(DEAL_PICKUP_TERMS, {"id": deal_id})
    if row is None or row[0] is None:
        raise NotFound(f"No pickup deal {deal_id}.", code="deal_not_found")
    terms = PickupTerms(int(row[0]), int(row[1]))
    arrived = tx.all(
        ARRIVE,
        {
            "point_id": point_id,
            "deal_id": deal_id,
            "now": tx.instant(now),
            "due": tx.instant(terms.claim_due(now)),
        },
    )
    for seat_id, user_id in arrived:
        record_event(
            tx, "pickup.arrived", seat_id, user_id=user_id, point_id=point_id, location=point.name
        )
    return len(arrived)


def look_up(tx: RawTx, principal: Principal, typed_code: str) -> PickupView:
    """The order a code names, for its point's leader to check before handing it over."""
    code = normalize_code(typed_code)
    found = _pickups(tx, PICKUP_BY_CODE, {"code": code}) if code else []
    if not found:
        raise NotFound(
            "No order has this pickup code; check it letter by letter.", code="pickup_not_found"
        )
    pickup = found[0]
    if pickup.leader_id != principal.user_id and not principal.is_operator:
        raise Forbidden(
            "This order is collected at another pickup point.", code="pickup_of_another_point"
        )
    return pickup


def _refused(tx: RawTx, seat_id: str) -> AppError:
    """Why a hand-over changed nothing: the order's state as it now stands."""
    p = pickup_of_seat(tx, seat_id)
    if p.status == PickupStatus.HANDED_OVER:
        at = p.handed_over_at
        assert at is not None
        return Conflict(
            f"This order was handed over {at.isoformat(timespec='seconds')}.",
            code="pickup_already_handed_over",
            extra={"handed_over_at": at.isoformat()},
        )
    if p.status in (PickupStatus.REFUNDED, PickupStatus.CANCELLED):
        return Conflict(
            "This order was not collected in time and is refunded; do not hand it over.",
            code="pickup_refunded",
        )
    return Conflict(
        "The goods of this order have not been marked as arrived yet.", code="pickup_not_arrived"
    )


def hand_over(tx: RawTx, principal: Principal, typed_code: str, now: datetime) -> PickupView:
    """Hand an arrived order over to its shopper, by the code they show. Of several hand-overs
    of one code at once, or a hand-over racing the unclaimed refund, exactly one wins; the
    others hear what the order has become. The leader's commission (the deal's basis points of
    what the seat's payment keeps) is frozen in the same transaction: refunds shrink it until
    the order's refund window, opened by this hand-over, closes and the worker pays it into
    their wallet."""
    pickup = look_up(tx, principal, typed_code)
    done = tx.scalar(
        HAND_OVER, {"seat_id": pickup.seat_id, "by": principal.user_id, "now": tx.instant(now)}
    )
    if done is None:
        raise _refused(tx, pickup.seat_id)
    payment = tx.one_as(EarnedPayment, EARNED_OF_SEAT, {"seat_id": pickup.seat_id})
    if payment is None:
        raise Conflict(
            "This order's payment is still being completed; try again in a few minutes.",
            code="pickup_payment_pending",
        )
    row = tx.one(DEAL_PICKUP_TERMS, {"id": pickup.deal_id})
    assert row is not None  # a pickup is of a pickup deal
    assert row[0] is not None
    # Locked (PostgreSQL) before it is read: a refund racing this hand-over either committed
    # before, or waits and then shrinks the commission frozen here.
    base = paid_left(tx, payment.id)
    amount = commission_on(base, int(row[0]))
    tx.execute(NOTE_COMMISSION, {"seat_id": pickup.seat_id, "base": base, "amount": amount})
    freeze(
        tx,
        NewCommission(
            kind=CommissionKind.PICKUP,
            seat_id=pickup.seat_id,
            payment_id=payment.id,
            deal_id=pickup.deal_id,
            merchant_id=pickup.merchant_id,
            sharer_id=pickup.leader_id,
            buyer_id=pickup.user_id,
            share_id=None,
            currency=payment.currency,
            base=base,
            rate_bps=int(row[0]),
            amount=amount,
        ),
        now,
    )
    record_event(
        tx,
        "pickup.handed_over",
        pickup.seat_id,
        user_id=pickup.user_id,
        leader_id=pickup.leader_id,
        commission=amount,
        currency=payment.currency,
    )
    return pickup_of_seat(tx, pickup.seat_id)


def earnings_of_leader(tx: RawTx, user_id: str) -> list[Earnings]:
    """What the leader's points earned: orders handed over and commissions, per currency."""
    # PostgreSQL sums a BIGINT as NUMERIC: money stays whole minor units.
    return [
        Earnings(e.currency, int(e.orders), int(e.amount), int(e.frozen))
        for e in tx.all_as(Earnings, EARNINGS_OF_LEADER, {"leader_id": user_id})
    ]
