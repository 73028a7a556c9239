"""How far behind the worker is: the oldest due work of each kind, and whether that is too old.

One read answers it, from the same partial indexes the sweeps use: the first row of each index
range ``due time <= now`` is the oldest due one, so the read costs the same with ten due rows as
with a million. The worker makes this read its idle probe (``worker.what_is_due``) and sets the
``pintuan_sweep_lag_seconds`` gauge from it; ``/readyz`` makes it to say whether the worker keeps
up.

The status words stay written in the SQL: each subquery must repeat its partial index's
predicate word for word for the planner to use that index (see ``teams.tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pintuan.errors import AppError
from pintuan.kit.rawsql import RawTx, Sql

# Kept as text, so that the worker's probe can ask it in the same read as its other questions.
OLDEST_DUE_COLUMNS = """
      (SELECT hold_expires_at FROM seats WHERE status = 'held' AND hold_expires_at <= :now
       ORDER BY hold_expires_at LIMIT 1) AS holds,
      (SELECT expires_at FROM teams WHERE status = 'forming' AND expires_at <= :now
       ORDER BY expires_at LIMIT 1) AS teams,
      (SELECT next_attempt_at FROM payments
       WHERE pending_action IS NOT NULL AND next_attempt_at <= :now
       ORDER BY next_attempt_at LIMIT 1) AS calls
"""
OLDEST_DUE = Sql(f"SELECT {OLDEST_DUE_COLUMNS}")

# What each kind of due work is, in the words an operator reads in a probe's answer.
WORK = {
    "holds": "held seats past their hold",
    "teams": "forming teams past their window",
    "calls": "provider calls past their time",
}


@dataclass(frozen=True, slots=True)
class OldestDue:
    """The due time of the oldest due row of each kind, as the driver stores it (None: none
    is due)."""

    holds: object
    teams: object
    calls: object

    def lag(self, tx: RawTx, now: datetime) -> dict[str, float]:
        """Seconds each kind of work has waited past its due time (0 when nothing is due)."""
        return {
            name: round(max((now - tx.read_instant(due)).total_seconds(), 0.0), 3)
            if due is not None
            else 0.0
            for name, due in (("holds", self.holds), ("teams", self.teams), ("calls", self.calls))
        }


def work_lag(tx: RawTx, now: datetime) -> dict[str, float]:
    """Seconds the oldest due held seat, forming team and provider call have waited past their
    due time, by kind of work (0 when none is due)."""
    oldest = tx.one_as(OldestDue, OLDEST_DUE, {"now": tx.instant(now)})
    assert oldest is not None  # a SELECT without FROM always gives its one row
    return oldest.lag(tx, now)


class WorkerLagging(AppError):
    status = 503
    code = "worker_lagging"
    title = "Not ready: the worker is behind"


def check_lag(lag: dict[str, float], max_lag_seconds: float) -> None:
    """Refuse with ``worker_lagging`` when any kind of due work has waited longer than
    ``max_lag_seconds``, saying which."""
    behind = {name: seconds for name, seconds in lag.items() if seconds > max_lag_seconds}
    if behind:
        said = "; ".join(f"{WORK[name]}: {seconds:.0f} s" for name, seconds in behind.items())
        raise WorkerLagging(
            f"Due work has waited longer than {max_lag_seconds:g} s ({said}); is the worker "
            "running and keeping up?",
            extra={"lag_seconds": lag, "max_lag_seconds": max_lag_seconds},
        )
