"""Work shared among many workers: each due item is done by one of them, and by another if that
one dies.

One design for every queue the worker drains: **a lease on the row itself**. A claim is one
conditional write that sets the row's lease column to "now + lease" on up to ``limit`` due rows
whose lease is empty or past, chosen with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another
worker is claiming at that moment is passed over, never waited for, and a row claimed and
committed meanwhile fails the re-check of its lease, so no two workers hold the same row. The
claim commits at once; the work follows in transactions of its own (or outside any, for an HTTP
call) and moves the row on, which ends its lease. A worker killed after its claim leaves the
lease to run out, and the next claim after that takes the row again: its effects must therefore
be safe to repeat, which every job's conditional writes already are (a seat ends once, a call
goes with its idempotency key).

The same shape holds everywhere: seats and teams carry ``lease_until`` (:data:`LEASE_COLUMN`),
webhook deliveries their own ``lease_until``, payments' owed calls use their due time itself as
the lease (a claim moves ``next_attempt_at`` forward). Jobs that do their whole work in the
claiming transaction (ending deals, confirming receipts, dispatching the outbox) need no lease
column: their ``SKIP_LOCKED`` row locks are the claim and die with a killed worker's connection.

Jobs that must run one at a time (a cursor over the outbox, the daily roll-up, housekeeping) take
a row of ``worker_leases`` the same way (:func:`hold`): its holder keeps it by claiming it again
each time it runs; anyone else gets it only once it has run out.

A claim picks its rows in a ``MATERIALIZED`` common table expression and updates those: written
as ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``, PostgreSQL may run the
subquery again for each row of a nested loop, each run passing over the rows the last one took,
and update more than ``n`` rows; a materialized expression runs once.

On SQLite there is one writer: the claim runs whole while every other writer waits, so the same
statements are correct there without row locks. A job whose work is only writes to the same
database (failing teams, releasing holds) goes further there: it picks its rows and works on them
in one transaction (:func:`unleased_pick`), with no lease at all, because no other writer can run
between the pick and the commit, and a worker killed in between leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime
from pintuan.kit.rawsql import RawTx, Sql

LEASE_COLUMN = "lease_until"


class WorkerLease(Base):
    """Who runs a one-at-a-time job, and until when (a holder that stops renewing loses it)."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime())


_names: dict[int, str] = {}


def worker_name() -> str:
    """This process's name as a lease holder: host and pid, and a random part so that a
    restarted process with a reused pid is not mistaken for the one that died. One per process,
    not per worker object: a process is what dies and what a lease outlives."""
    pid = os.getpid()
    if pid not in _names:
        _names[pid] = f"{socket.gethostname()[:60]}:{pid}:{secrets.token_hex(4)}"
    return _names[pid]


_FREE = f"({LEASE_COLUMN} IS NULL OR {LEASE_COLUMN} <= :now)"


def leased_claim(*, table: str, key: str, due: str, order: str, returning: str) -> Sql:
    """The claim statement of a queue whose rows carry ``lease_until``: lease up to ``:limit``
    rows matching ``due`` (in ``order``) until ``:until``; it returns ``returning`` of each.

    ``due`` is written out rather than bound where a partial index must answer it (its status
    words, word for word as in the index's predicate). Parameters: ``:now``, ``:until``,
    ``:limit`` and whatever ``due`` names."""
    return Sql(
        f"""
        WITH picked AS MATERIALIZED (
            SELECT {key} FROM {table} WHERE {due} AND {_FREE}
            ORDER BY {order} LIMIT :limit SKIP_LOCKED
        )
        UPDATE {table} SET {LEASE_COLUMN} = :until
        WHERE {key} IN (SELECT {key} FROM picked) AND {_FREE}
        RETURNING {returning}
        """  # noqa: S608 - the callers' own constant text, no outside input
    )


def claim(
    tx: RawTx,
    statement: Sql,
    record: type[Any],
    now: datetime,
    limit: int,
    lease: timedelta,
    params: dict[str, Any] | None = None,
) -> list[Any]:
    """Run a :func:`leased_claim` statement: the rows this worker now holds, as ``record``s."""
    return tx.all_as(
        record,
        statement,
        {
            "now": tx.instant(now),
            "until": tx.instant(now + lease),
            "limit": limit,
            **(params or {}),
        },
    )


def unleased_pick(*, table: str, due: str, order: str, returning: str) -> Sql:
    """The rows a :func:`leased_claim` of the same words would lease, read without leasing them.

    For SQLite only, where a job picks its rows and works on them in one transaction: the one
    writer holds the database from the pick to the commit, so no other worker can see the rows
    in between, and a lease would be a write of every row for nothing. A row another worker's
    claim still leases is passed over, as a claim would pass it over. Parameters: ``:now``,
    ``:limit`` and whatever ``due`` names."""
    return Sql(
        f"SELECT {returning} FROM {table} WHERE {due} AND {_FREE} ORDER BY {order} LIMIT :limit"  # noqa: S608 - the callers' own constant text
    )


def pick(tx: RawTx, statement: Sql, record: type[Any], now: datetime, limit: int) -> list[Any]:
    """Run an :func:`unleased_pick` statement (on SQLite, inside the transaction that does the
    work): the due rows as ``record``s."""
    assert tx.sqlite, "without one writer, rows must be leased (claim)"
    return tx.all_as(record, statement, {"now": tx.instant(now), "limit": limit})


# ---------------------------------------------------------------------------- one at a time

_SEED = Sql(
    """
    INSERT INTO worker_leases (name, holder, lease_until) VALUES (:name, '', :epoch)
    ON CONFLICT (name) DO NOTHING
"""
)
_HOLD = Sql(
    """
    UPDATE worker_leases SET holder = :holder, lease_until = :until
    WHERE name IN (SELECT name FROM worker_leases
                   WHERE name = :name AND (holder = :holder OR lease_until <= :now) SKIP_LOCKED)
      AND (holder = :holder OR lease_until <= :now)
    RETURNING name
"""
)
_LET_GO = Sql("UPDATE worker_leases SET lease_until = :now WHERE name = :name AND holder = :holder")
_EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


@dataclass(frozen=True, slots=True)
class _Held:
    name: str


def hold(tx: RawTx, name: str, holder: str, now: datetime, lease: timedelta) -> bool:
    """Take or renew the lease on the one-at-a-time job ``name`` until ``now + lease``; False
    while another holder's lease runs (the job is theirs: skip it, do not wait)."""
    params = {
        "name": name,
        "holder": holder,
        "now": tx.instant(now),
        "until": tx.instant(now + lease),
    }
    if tx.one_as(_Held, _HOLD, params) is not None:
        return True
    # A job's first run anywhere: its row comes into being, then the claim is asked once more.
    tx.execute(_SEED, {"name": name, "epoch": tx.instant(_EPOCH)})
    return tx.one_as(_Held, _HOLD, params) is not None


def let_go(tx: RawTx, name: str, holder: str, now: datetime) -> None:
    """End this holder's lease at once (a worker stopping cleanly): another may take it now."""
    tx.execute(_LET_GO, {"name": name, "holder": holder, "now": tx.instant(now)})
