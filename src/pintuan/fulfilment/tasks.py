"""Worker job of fulfilment: confirm receipt of parcels shipped long enough ago.

A shopper who never says their parcel arrived would leave the order open forever; after
``PINTUAN_AUTO_RECEIVE_DAYS`` (fixed on each shipment when it ships, as ``receive_due_at``) the
worker confirms it for them. At most ``batch`` shipments per transaction, the longest overdue
first, found through the partial index on shipped parcels' due time
(``ix_shipments_shipped_receive_due_at``). The status word of the due query stays written in
the SQL: it must repeat the index's predicate word for word for the planner to use the index
(see ``teams.tasks``). The write itself is conditional (``AND status = 'shipped'``), so a shopper
confirming at the same moment and the sweep end in one state with one event.

Many workers share it: each passes over the parcels another is confirming (``SKIP_LOCKED``,
``kit.claims``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pintuan.domain.fulfilment import ReceivedBy, ShipmentStatus
from pintuan.events.service import record_events
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now

CONFIRM_OVERDUE = Sql(
    """
    WITH picked AS MATERIALIZED (
        SELECT seat_id FROM shipments WHERE status = 'shipped' AND receive_due_at <= :now
        ORDER BY receive_due_at LIMIT :limit SKIP_LOCKED
    )
    UPDATE shipments SET status = :received, received_at = :now, received_by = :auto
    WHERE seat_id IN (SELECT seat_id FROM picked) AND status = :shipped
    RETURNING seat_id, user_id
""",
    received=ShipmentStatus.RECEIVED,
    shipped=ShipmentStatus.SHIPPED,
    auto=ReceivedBy.AUTO,
)


@dataclass(frozen=True, slots=True)
class _Received:
    seat_id: str
    user_id: str


def confirm_overdue_receipts(tx: RawTx, batch: int) -> int:
    """Confirm receipt of up to ``batch`` parcels whose waiting time ran out; returns how many."""
    now = tx.instant(utc_now())
    done = tx.all_as(_Received, CONFIRM_OVERDUE, {"now": now, "limit": batch})
    record_events(
        tx,
        [
            ("seat.received", r.seat_id, {"user_id": r.user_id, "by": ReceivedBy.AUTO.value})
            for r in done
        ],
    )
    return len(done)
