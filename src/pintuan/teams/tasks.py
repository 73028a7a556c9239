"""Worker jobs of teams: release seats whose payment did not come in time, fail teams whose
window closed before they filled.

Each job finds at most one batch of due rows through the partial index on their due time and
hands them to the engine (``teams.service``), which takes the locks, ends each seat and team at
most once and gives back their stock, places and money.

The status words of the due queries stay written in the SQL, unlike everywhere else in the
engine: each query must repeat the predicate of its partial index
(``ix_seats_held_hold_expires_at``, ``ix_teams_forming_expires_at``) word for word, or the
planner cannot use the index (a bound value is unknown to PostgreSQL's generic plan of a
prepared statement).

Many workers share the sweeps (``kit.claims``): a short first transaction leases the batch's seats
or teams (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers pass over each other's rows), and a
second one ends them under the deal and team locks. Two transactions, because the claim locks
seats or teams, which come after the deal in the global lock order: taking the deal's lock while
holding them could deadlock against a join. A worker killed between the two leaves its batch to
the next claim after the lease. On SQLite, whose one writer takes no row locks, a batch is picked
without a lease and ended in the same transaction: half the commits, and no lease written to
every row.
"""

from __future__ import annotations

from datetime import timedelta

from pintuan.kit.claims import claim, leased_claim, pick, unleased_pick
from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import utc_now
from pintuan.teams import service
from pintuan.teams.service import DueHold, DueTeam

_DUE_HOLDS = {
    "table": "seats",
    "due": "status = 'held' AND hold_expires_at <= :now",
    "order": "hold_expires_at",
    "returning": "id AS seat_id, deal_id, team_id",
}
_DUE_TEAMS = {
    "table": "teams",
    "due": "status = 'forming' AND expires_at <= :now",
    "order": "expires_at",
    "returning": "id AS team_id, deal_id",
}
CLAIM_HOLDS = leased_claim(key="id", **_DUE_HOLDS)
CLAIM_TEAMS = leased_claim(key="id", **_DUE_TEAMS)
PICK_HOLDS = unleased_pick(**_DUE_HOLDS)
PICK_TEAMS = unleased_pick(**_DUE_TEAMS)


def claim_holds(tx: RawTx, batch: int, lease: timedelta) -> list[DueHold]:
    """Lease up to ``batch`` held seats whose hold ran out, the oldest first, for this worker."""
    return claim(tx, CLAIM_HOLDS, DueHold, utc_now(), batch, lease)


def claim_teams(tx: RawTx, batch: int, lease: timedelta) -> list[DueTeam]:
    """Lease up to ``batch`` forming teams whose window closed, the oldest first."""
    return claim(tx, CLAIM_TEAMS, DueTeam, utc_now(), batch, lease)


def release_expired_holds(db: Database, batch: int, lease: timedelta) -> int:
    """Release up to ``batch`` held seats whose payment did not come in time, and owe back any
    money that came late; returns how many were released."""
    if db.is_sqlite:
        return len(db.run_raw_sync(_release_picked_holds, batch))
    due = db.run_raw_sync(claim_holds, batch, lease)
    if not due:
        return 0
    return len(db.run_raw_sync(lambda tx: service.release_expired_holds(tx, due, utc_now())))


def close_expired_teams(db: Database, batch: int, lease: timedelta) -> int:
    """Fail up to ``batch`` forming teams whose window ended before they filled (their money is
    owed back); returns how many teams were failed."""
    if db.is_sqlite:
        return len(db.run_raw_sync(_close_picked_teams, batch))
    due = db.run_raw_sync(claim_teams, batch, lease)
    if not due:
        return 0
    failed, _ = db.run_raw_sync(lambda tx: service.close_expired_teams(tx, due, utc_now()))
    return len(failed)


def _release_picked_holds(tx: RawTx, batch: int) -> list[service.EndedSeat]:
    now = utc_now()
    return service.release_expired_holds(tx, pick(tx, PICK_HOLDS, DueHold, now, batch), now)


def _close_picked_teams(tx: RawTx, batch: int) -> list[str]:
    now = utc_now()
    failed, _ = service.close_expired_teams(tx, pick(tx, PICK_TEAMS, DueTeam, now, batch), now)
    return failed
