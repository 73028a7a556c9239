"""Joining a team on PostgreSQL in one round trip: the join of ``teams/service.py`` as one call
of the server-side function ``pintuan_join_team`` (created by the migration "join in one round
trip").

Where joining is decided stays ``teams/service.py``: this module runs the same steps (stock,
place, the new-shoppers rule, the shopper's count, the seat and its outbox event) in the same
lock order, and turns the function's refusals into the same problems, worded by the same rules
of ``domain/teams.py``. A refusal arrives as SQLSTATE ``PJ409`` naming the step that refused,
with the deal's or team's state as JSON when the wording needs it; the exception has already
undone the steps before it. The tests run both paths over the same cases.

On SQLite the generic path is the fast one (no round trips), so this runs on PostgreSQL only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pintuan.domain.teams import (
    DealState,
    TeamState,
    already_member,
    deal_refusal,
    limit_refusal,
    not_new_shopper,
    team_refusal,
)
from pintuan.errors import AppError
from pintuan.kit.ids import new_id
from pintuan.kit.jsontext import dumps
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql

# The SQLSTATE the function raises for a refusal (class PJ is no standard class).
REFUSED = "PJ409"

JOIN_TEAM = Sql("""
    SELECT joined_deal_id AS deal_id, joined_price AS price, joined_currency AS currency,
           joined_status AS status
    FROM pintuan_join_team(:team_id, :user_id, :seat_id, :now, :hold_expires_at, :payload)
""")


@dataclass(frozen=True, slots=True)
class Joined:
    """The seat the function inserted: what the deal's terms made of it."""

    seat_id: str
    deal_id: str
    price: int
    currency: str
    status: str


@dataclass(frozen=True, slots=True)
class _Row:
    deal_id: str
    price: int
    currency: str
    status: str


def join_team(tx: RawTx, user_id: str, team_id: str, now: datetime, *, hold: timedelta) -> Joined:
    """Join a forming team in one statement (``teams.service.join_team`` calls this on
    PostgreSQL): the seat taken, or the refusal raised as the generic path raises it."""
    seat_id = new_id("seat")
    params = {
        "team_id": team_id,
        "user_id": user_id,
        "seat_id": seat_id,
        "now": now,
        "hold_expires_at": now + hold,
        # The outbox event's body, as ``events.service.record_event`` writes it.
        "payload": dumps({"team_id": team_id, "user_id": user_id}),
    }
    try:
        # The work's last statement: without an Idempotency-Key, its COMMIT goes with it.
        row = tx.last_one_as(_Row, JOIN_TEAM, params)
    except IntegrityViolation as exc:
        # The seat's unique (team, shopper) index: a concurrent join by the same shopper.
        raise already_member() from exc
    except psycopg.Error as exc:
        if exc.sqlstate != REFUSED:
            raise
        raise refusal(exc.diag.message_primary or "", exc.diag.message_detail, now) from exc
    if row is None:  # the function returns one row or raises
        raise RuntimeError("pintuan_join_team returned no row")
    return Joined(seat_id, row.deal_id, row.price, row.currency, row.status)


def refusal(step: str, detail: str | None, now: datetime) -> AppError:
    """The problem for the step the function refused at, worded as the generic path words it."""
    state: dict[str, Any] = json.loads(detail) if detail and step in ("deal", "team") else {}
    if step == "no_team":
        return team_refusal(None, now)
    if step == "deal":
        return deal_refusal(
            DealState(
                state["status"],
                state["stock"],
                state["committed"],
                datetime.fromisoformat(state["starts_at"]),
                datetime.fromisoformat(state["ends_at"]),
                state["merchant_suspended"],
                state["allow_solo"],
            ),
            now,
        )
    if step == "team":
        return team_refusal(
            TeamState(
                state["status"],
                state["team_size"],
                state["taken"],
                datetime.fromisoformat(state["expires_at"]),
                state["solo"],
            ),
            now,
        )
    if step == "not_new_shopper":
        return not_new_shopper()
    if step == "already_member":
        return already_member()
    if step == "limit" and detail is not None:
        return limit_refusal(int(detail))
    raise RuntimeError(f"pintuan_join_team refused at an unknown step {step!r}")
