"""The worker's sweep of pickups (``domain/pickups.py``): orders not collected by their
claim-due instant are refunded in full through ``payments.refunds``, and those whose seat ended
before success (its money went back with it) are closed. The end is a conditional write on the
pickup's status, so a hand-over racing the sweep and the sweep end the order once between them.
"""

from __future__ import annotations

from datetime import datetime

from pintuan.domain.pickups import PickupStatus
from pintuan.domain.refunds import RefundSource
from pintuan.domain.teams import SeatStatus
from pintuan.events.service import record_event
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.payments.refunds import (
    EARNED_OF_SEAT,
    LEFT_TO_REFUND,
    PAYMENT_EARNED,
    EarnedPayment,
    refund_seat,
)
from pintuan.pickups.service import PickupView, pickup_of_seat

UNCLAIMED_REASON = "The order was not collected at its pickup point in time."

# Open pickups past their claim whose seat's money its merchant earned (to refund), or whose seat
# ended before success (to close; its money went back with it). Found through the partial index
# on open pickups' claim-due instant, whose predicate the status words repeat as written.
DUE_UNCLAIMED = Sql(
    f"""
    WITH picked AS MATERIALIZED (
        SELECT p.seat_id FROM pickups p
        WHERE p.status IN ('waiting', 'arrived') AND p.claim_due_at <= :now
          AND (EXISTS (SELECT 1 FROM seats s WHERE s.id = p.seat_id
                       AND s.status IN ('released', 'refunded')) OR EXISTS (
              SELECT 1 FROM payments p2 WHERE p2.seat_id = p.seat_id
                AND {PAYMENT_EARNED.replace("p.id", "p2.id")}))
        ORDER BY p.claim_due_at LIMIT :limit SKIP_LOCKED
    )
    SELECT seat_id FROM picked
"""  # noqa: S608 - constant text
)
END_UNCLAIMED = Sql(
    """
    UPDATE pickups SET status = :to, ended_at = :now, updated_at = :now
    WHERE seat_id = :seat_id AND status IN (:waiting, :arrived) AND claim_due_at <= :now
    RETURNING seat_id
""",
    waiting=PickupStatus.WAITING,
    arrived=PickupStatus.ARRIVED,
)
NOTE_REFUND = Sql("UPDATE pickups SET refund_id = :refund_id WHERE seat_id = :seat_id")


def refund_unclaimed(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund up to ``limit`` orders not collected by their claim-due instant (and close those
    whose seat ended before success); returns how many ended."""
    seat_ids = [row[0] for row in tx.all(DUE_UNCLAIMED, {"now": tx.instant(now), "limit": limit})]
    done = 0
    for seat_id in seat_ids:
        p = pickup_of_seat(tx, seat_id)
        if p.status not in (PickupStatus.WAITING, PickupStatus.ARRIVED):
            continue
        closed = p.seat_status in (SeatStatus.RELEASED, SeatStatus.REFUNDED)
        to = PickupStatus.CANCELLED if closed else PickupStatus.REFUNDED
        if tx.scalar(END_UNCLAIMED, {"seat_id": seat_id, "to": to.value, "now": tx.instant(now)}):
            if not closed:
                _refund_in_full(tx, p, now)
            done += 1
    return done


def _refund_in_full(tx: RawTx, p: PickupView, now: datetime) -> None:
    payment = tx.one_as(EarnedPayment, EARNED_OF_SEAT, {"seat_id": p.seat_id})
    assert payment is not None  # the claim picked only earned seats
    left = int(tx.scalar(LEFT_TO_REFUND, {"id": payment.id}) or 0)
    refund_id = None
    if left > 0:
        refund_id = refund_seat(
            tx, p.seat_id, left, UNCLAIMED_REASON, None, now, source=RefundSource.PICKUP
        )
        tx.execute(NOTE_REFUND, {"seat_id": p.seat_id, "refund_id": refund_id})
    record_event(
        tx,
        "pickup.unclaimed",
        p.seat_id,
        user_id=p.user_id,
        amount=left,
        currency=payment.currency,
        refund_id=refund_id,
        location=p.point_name,
    )
