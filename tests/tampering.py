"""Change posted money the way an attacker with database rights would: lift the append-only
triggers, change rows, put the triggers back, all in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from pintuan.kit.db import Database
from pintuan.ledger import guard


def tamper(db: Database, change: Callable[[Session], Any]) -> None:
    """Run ``change`` with the ledger's guard lifted for that one transaction."""

    def work(session: Session) -> None:
        connection = session.connection()
        guard.remove(connection)
        change(session)
        session.flush()
        guard.install(connection)

    db.run_sync(work)
