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
"""

from __future__ import annotations

from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now
from pintuan.teams import service
from pintuan.teams.service import DueHold, DueTeam

DUE_HOLDS = Sql("""
    SELECT id AS seat_id, deal_id, team_id FROM seats
    WHERE status = 'held' AND hold_expires_at <= :now
    ORDER BY hold_expires_at LIMIT :limit
""")
DUE_TEAMS = Sql("""
    SELECT id AS team_id, deal_id FROM teams
    WHERE status = 'forming' AND expires_at <= :now
    ORDER BY expires_at LIMIT :limit
""")


def release_expired_holds(tx: RawTx, batch: int) -> int:
    """Release up to ``batch`` held seats whose payment did not come in time, and owe back any
    money that came late; returns how many were released."""
    now = utc_now()
    due = tx.all_as(DueHold, DUE_HOLDS, {"now": tx.instant(now), "limit": batch})
    return len(service.release_expired_holds(tx, due, now))


def close_expired_teams(tx: RawTx, batch: int) -> int:
    """Fail up to ``batch`` forming teams whose window ended before they filled (their money is
    owed back); returns how many teams were failed."""
    now = utc_now()
    due = tx.all_as(DueTeam, DUE_TEAMS, {"now": tx.instant(now), "limit": batch})
    failed, _ = service.close_expired_teams(tx, due, now)
    return len(failed)
