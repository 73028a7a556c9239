"""Worker job of deals: end live and paused deals whose end has passed.

Ending honours the batch like every other sweep: at most ``batch`` deals per transaction, the
ones that ended first, found through the partial index on open deals' ends
(``ix_deals_open_ends_at``). Its predicate's status words stay written in the SQL: a query must
repeat them word for word for the planner to use the index (SQLite never matches a bound ``IN``
list, nor PostgreSQL's generic plan of a prepared statement a bound value).

Many workers share it: each passes over the deals another is ending (``SKIP_LOCKED``,
``kit.claims``); a deal a join holds at that moment waits for the next tick rather than holding
the sweep up.
"""

from __future__ import annotations

from pintuan.domain.lifecycle import DealStatus
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now

END_PAST_DEALS = Sql(
    """
    WITH picked AS MATERIALIZED (
        SELECT id FROM deals WHERE status IN ('live', 'paused') AND ends_at <= :now
        ORDER BY ends_at LIMIT :limit SKIP_LOCKED
    )
    UPDATE deals SET status = :ended, updated_at = :now
    WHERE id IN (SELECT id FROM picked) AND status IN ('live', 'paused')
    RETURNING id
""",
    ended=DealStatus.ENDED,
)


def end_past_deals(tx: RawTx, batch: int) -> int:
    """End up to ``batch`` open deals whose end has passed; returns how many were ended."""
    at = tx.instant(utc_now())
    return len(tx.all(END_PAST_DEALS, {"now": at, "limit": batch}))
