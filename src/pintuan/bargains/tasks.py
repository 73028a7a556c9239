"""The worker's sweep of bargains (``domain/bargains.py``): open bargains past their deadline are
written down as bought (their seat was paid) or expired (no seat, or its hold lapsed). A bargain
whose seat is still held for its payment waits for the hold's end. Readers never wait for this:
they derive both states from the seat and the deadline (``domain.bargains.shown_status``); the
sweep keeps the stored status honest for lists, reports and the one-open-per-deal rule.
"""

from __future__ import annotations

from datetime import datetime

from pintuan.kit.rawsql import RawTx, Sql

# Found through the partial index on open bargains' deadline, whose predicate the status words
# repeat as written (see kit/rawsql.py); the update re-checks each row's state.
SETTLE_PAST_DEADLINE = Sql(
    """
    UPDATE bargains
    SET status = CASE WHEN EXISTS (SELECT 1 FROM seats s WHERE s.id = bargains.seat_id
                                   AND s.status IN ('paid', 'confirmed', 'refunded'))
                      THEN 'bought' ELSE 'expired' END,
        updated_at = :now
    WHERE id IN (
        SELECT b.id FROM bargains b
        WHERE b.status = 'open' AND b.expires_at <= :now
          AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.id = b.seat_id AND s.status = 'held')
        ORDER BY b.expires_at LIMIT :limit
    ) AND status = 'open'
    RETURNING id
"""
)


def close_past_deadline(tx: RawTx, now: datetime, limit: int) -> int:
    """Write down up to ``limit`` open bargains past their deadline as bought or expired;
    returns how many."""
    return len(tx.all(SETTLE_PAST_DEADLINE, {"now": tx.instant(now), "limit": limit}))
