"""Telling a database that is gone (restarting, failing over, unreachable) from a bug.

A request that meets PostgreSQL going away mid-transaction has changed nothing (the server rolls
the transaction back), so it is safe to send again: it is answered 503 with ``Retry-After``,
never a bare 500. The pool's pre-ping gives later requests a fresh connection once the server is
back.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa

# Lost connections, refused connections and a server shutting down are OperationalError; using a
# connection that already broke is InterfaceError.
_GONE = (psycopg.OperationalError, psycopg.InterfaceError)


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL being unreachable, as the driver or SQLAlchemy raised it."""
    if isinstance(error, sa.DBAPIError):
        return isinstance(error.orig, _GONE) or error.connection_invalidated
    return isinstance(error, _GONE)
