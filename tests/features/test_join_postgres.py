"""The join on PostgreSQL's one-round-trip path gives exactly what the join one statement at a
time gives: the same seat, the same problem (code, status and words) and the same rows changed,
case by case. Each case is built twice on an empty database and run once through each path."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from pintuan.errors import AppError
from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import join_postgres, service
from tests.conftest import _empty_all_tables
from tests.factories import create_account, create_deal, create_merchant
from tests.features.round_trips import counted

HOLD = timedelta(minutes=10)


@dataclass(frozen=True)
class Case:
    """A team, a shopper about to join it, and when."""

    team_id: str
    user_id: str
    now: datetime


def _start(db: Database, user_id: str, deal_id: str) -> str:
    start = db.run_raw_sync(
        lambda tx: service.start_team(tx, user_id, deal_id, utc_now(), hold=HOLD)
    )
    return start.team_id


def _join(db: Database, user_id: str, team_id: str) -> None:
    db.run_raw_sync(lambda tx: service.join_team(tx, user_id, team_id, utc_now(), hold=HOLD))


def _set(db: Database, statement: str, **params: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _world(services: Services, **deal: Any) -> tuple[str, str, str]:
    """A deal with a team started by its leader; the deal, the team and a newcomer."""
    merchant = create_merchant(services.db)
    made = create_deal(services.db, merchant, **deal)
    leader = create_account(services)
    newcomer = create_account(services)
    return made.id, _start(services.db, leader.user_id, made.id), newcomer.user_id


def joins(services: Services) -> Case:
    _, team, user = _world(services)
    return Case(team, user, utc_now())


def team_full(services: Services) -> Case:
    _, team, user = _world(services, team_size=2)
    _join(services.db, create_account(services).user_id, team)
    return Case(team, user, utc_now())


def team_closed_by_time(services: Services) -> Case:
    _, team, user = _world(services)
    return Case(team, user, utc_now() + timedelta(days=1))


def team_failed(services: Services) -> Case:
    _, team, user = _world(services)
    _set(services.db, "UPDATE teams SET status = 'failed' WHERE id = :id", id=team)
    return Case(team, user, utc_now())


def no_team(services: Services) -> Case:
    _, _, user = _world(services)
    return Case("team_nosuchteam000000000000", user, utc_now())


def sold_out(services: Services) -> Case:
    _, team, user = _world(services, stock=1)
    return Case(team, user, utc_now())


def deal_paused(services: Services) -> Case:
    deal, team, user = _world(services)
    _set(services.db, "UPDATE deals SET status = 'paused' WHERE id = :id", id=deal)
    return Case(team, user, utc_now())


def merchant_suspended(services: Services) -> Case:
    deal, team, user = _world(services)
    _set(services.db, "UPDATE deals SET merchant_suspended = true WHERE id = :id", id=deal)
    return Case(team, user, utc_now())


def deal_over(services: Services) -> Case:
    _, team, user = _world(services)
    return Case(team, user, utc_now() + timedelta(days=8))


def limit_reached(services: Services) -> Case:
    deal, team, user = _world(services)
    _start(services.db, user, deal)
    return Case(team, user, utc_now())


def already_member_by_count(services: Services) -> Case:
    _, team, user = _world(services)
    _join(services.db, user, team)
    return Case(team, user, utc_now())


def already_member_by_seat(services: Services) -> Case:
    # A limit of two lets the count pass: the seat's unique index refuses the second seat.
    _, team, user = _world(services, per_user_limit=2, team_size=4)
    _join(services.db, user, team)
    return Case(team, user, utc_now())


def not_new_shopper(services: Services) -> Case:
    _, team, user = _world(services, new_shoppers_only=True)
    other = _start(services.db, user, create_deal(services.db, create_merchant(services.db)).id)
    _set(services.db, "UPDATE seats SET status = 'confirmed' WHERE team_id = :id", id=other)
    return Case(team, user, utc_now())


def new_shopper_joins(services: Services) -> Case:
    _, team, user = _world(services, new_shoppers_only=True)
    return Case(team, user, utc_now())


def solo_purchase(services: Services) -> Case:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant)
    buyer = create_account(services).user_id
    solo = services.db.run_raw_sync(
        lambda tx: service.buy_alone(tx, buyer, deal.id, utc_now(), hold=HOLD)
    )
    return Case(solo.team_id, create_account(services).user_id, utc_now())


CASES: list[Callable[[Services], Case]] = [
    joins,
    team_full,
    team_closed_by_time,
    team_failed,
    no_team,
    sold_out,
    deal_paused,
    merchant_suspended,
    deal_over,
    limit_reached,
    already_member_by_count,
    already_member_by_seat,
    not_new_shopper,
    new_shopper_joins,
    solo_purchase,
]

Join = Callable[[RawTx, str, str, datetime], Any]


def _by_function(tx: RawTx, user_id: str, team_id: str, now: datetime) -> Any:
    return service.join_team(tx, user_id, team_id, now, hold=HOLD)


def _by_statements(tx: RawTx, user_id: str, team_id: str, now: datetime) -> Any:
    return service.join_team_by_statements(tx, user_id, team_id, now, hold=HOLD)


def _outcome(services: Services, make: Callable[[Services], Case], join: Join) -> dict[str, Any]:
    """What one path did with a freshly built case: its answer and the rows it left."""
    _empty_all_tables(services.db)
    case = make(services)
    try:
        seat = services.db.run_raw_sync(lambda tx: join(tx, case.user_id, case.team_id, case.now))
        answer: dict[str, Any] = {
            "status": seat.status,
            "price": seat.price_amount,
            "currency": seat.currency,
            "is_leader": seat.is_leader,
            "holds": seat.hold_expires_at is not None,
        }
    except AppError as refusal:
        answer = {"refused": (type(refusal).__name__, refusal.problem("/x"))}
    with services.db.engine.connect() as conn:
        rows = {
            "deal": conn.execute(
                text(
                    "SELECT committed FROM deals d JOIN teams t ON t.deal_id = d.id WHERE t.id = :t"
                ),
                {"t": case.team_id},
            ).all(),
            "team": conn.execute(
                text("SELECT taken, paid, status FROM teams WHERE id = :t"), {"t": case.team_id}
            ).all(),
            "count": conn.execute(
                text("SELECT count FROM deal_shopper_counts WHERE user_id = :u"),
                {"u": case.user_id},
            ).all(),
            "seats": conn.execute(
                text(
                    "SELECT status, is_leader, price_amount, currency, hold_expires_at, paid_at, "
                    "created_at FROM seats WHERE user_id = :u AND team_id = :t ORDER BY created_at"
                ),
                {"u": case.user_id, "t": case.team_id},
            ).all(),
            "events": [
                (kind, json.loads(payload) if isinstance(payload, str) else payload)
                for kind, payload in conn.execute(
                    text(
                        "SELECT type, payload FROM outbox_events WHERE subject_id IN "
                        "(SELECT id FROM seats WHERE user_id = :u AND team_id = :t) ORDER BY id"
                    ),
                    {"u": case.user_id, "t": case.team_id},
                ).all()
            ],
        }
    # Instants and ids differ between the two builds; what they mean is compared instead.
    rows["seats"] = [
        (status, leader, price, currency, hold is not None and hold - created, paid is not None)
        for status, leader, price, currency, hold, paid, created in rows["seats"]
    ]
    names = {case.team_id: "the team", case.user_id: "the shopper"}
    rows["events"] = [
        (kind, {key: names.get(value, value) for key, value in payload.items()})
        for kind, payload in rows["events"]
    ]
    return {"answer": answer, **rows}


@pytest.mark.parametrize("make", CASES, ids=[make.__name__ for make in CASES])
def test_the_join_in_one_round_trip_answers_and_changes_as_the_join_by_statements(
    services: Services, make: Callable[[Services], Case]
) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("the one-round-trip join is PostgreSQL's; SQLite joins by statements")
    by_function = _outcome(services, make, _by_function)
    by_statements = _outcome(services, make, _by_statements)
    assert by_function == by_statements


def test_every_refusal_step_of_the_function_has_its_problem() -> None:
    now = utc_now()
    deal = json.dumps(
        {
            "status": "live",
            "stock": 1,
            "committed": 1,
            "starts_at": (now - HOLD).isoformat(),
            "ends_at": (now + HOLD).isoformat(),
            "merchant_suspended": False,
            "allow_solo": True,
        }
    )
    team = json.dumps(
        {
            "status": "forming",
            "team_size": 2,
            "taken": 2,
            "expires_at": (now + HOLD).isoformat(),
            "solo": False,
        }
    )
    codes = {
        step: join_postgres.refusal(step, detail, now).code
        for step, detail in [
            ("no_team", None),
            ("deal", deal),
            ("team", team),
            ("not_new_shopper", None),
            ("already_member", None),
            ("limit", "3"),
        ]
    }
    assert codes == {
        "no_team": "team_not_found",
        "deal": "sold_out",
        "team": "team_full",
        "not_new_shopper": "not_eligible",
        "already_member": "already_member",
        "limit": "limit_reached",
    }
    with pytest.raises(RuntimeError):
        join_postgres.refusal("something_new", None, now)


class _Counting(RawTx):
    __slots__ = ("statements",)

    def __init__(self, driver_connection: Any) -> None:
        super().__init__(driver_connection, sqlite=False)
        self.statements: list[str] = []

    def execute(self, sql: Any, params: Any = None) -> Any:
        self.statements.append(sql.text)
        return super().execute(sql, params)


def test_a_join_on_postgresql_is_one_statement(services: Services) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("SQLite joins by statements")
    case = joins(services)
    pooled = services.db.engine.raw_connection()
    try:
        tx = _Counting(pooled.driver_connection)
        seat = service.join_team(tx, case.user_id, case.team_id, case.now, hold=HOLD)
        pooled.driver_connection.commit()
    finally:
        pooled.close()
    assert seat.status == "held"
    assert tx.statements == [join_postgres.JOIN_TEAM.text]


@pytest.mark.parametrize("keyed", [True, False], ids=["with a key", "without a key"])
def test_a_join_through_the_api_on_postgresql_takes_three_round_trips_with_a_key_two_without(
    client: TestClient, services: Services, tmp_path: Path, keyed: bool
) -> None:
    """The token's lookup alone, before the transaction begins; then, with a key, the BEGIN
    with its last use, the key's read and the join, and the COMMIT with the key's answer; or,
    without a key, the BEGIN, its last use, the join and the COMMIT together. The key used to
    take a round trip of its own for its claim, and two statements more for a savepoint around
    the join; the join without a key a round trip for its COMMIT."""
    if services.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    deal_id, team_id, _ = _world(services, team_size=3)
    shopper = create_account(services)  # a new token: its last use is due a write
    client.get("/healthz")
    headers = {**shopper.headers, **({"Idempotency-Key": "join-once"} if keyed else {})}
    with counted(services, tmp_path / "libpq.trace") as trips:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=headers)
    assert joined.status_code == 201, joined.text
    assert trips == [3 if keyed else 2]
    # And the join, its last use and the key are there, once.
    with services.db.engine.connect() as conn:
        seats = conn.execute(
            text("SELECT count(*) FROM seats WHERE team_id = :t AND user_id = :u"),
            {"t": team_id, "u": shopper.user_id},
        ).scalar()
        used = conn.execute(
            text("SELECT last_used_at FROM api_tokens WHERE user_id = :u"),
            {"u": shopper.user_id},
        ).scalar()
        keys = conn.execute(
            text("SELECT count(*) FROM idempotency_keys WHERE key = 'join-once'")
        ).scalar()
    assert (seats, used is not None, keys) == (1, True, 1 if keyed else 0)
    assert deal_id


def test_a_join_without_a_key_whose_token_was_just_used_is_the_join_statement_alone(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    """Nothing else to write: the join goes out alone, a transaction of its own, with no
    BEGIN or COMMIT; refused, it leaves nothing behind and no transaction open."""
    if services.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    _, team_id, _ = _world(services, team_size=3)
    _, other_team, _ = _world(services, team_size=3)
    shopper = create_account(services)
    assert client.post(f"/v1/teams/{other_team}/seats", headers=shopper.headers).status_code == 201
    trace = tmp_path / "libpq.trace"
    with counted(services, trace) as trips:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
    assert joined.status_code == 201, joined.text
    assert trips == [2]
    sent = trace.read_text()
    assert [word for word in ("BEGIN", "COMMIT", "ROLLBACK") if word in sent] == []

    with counted(services, tmp_path / "again.trace") as trips:
        again = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
    assert (again.status_code, again.json()["code"]) == (409, "already_member")
    assert trips == [2]
    assert "ROLLBACK" not in (tmp_path / "again.trace").read_text()
    with services.db.engine.connect() as conn:
        seats = conn.execute(
            text("SELECT count(*) FROM seats WHERE team_id = :t AND user_id = :u"),
            {"t": team_id, "u": shopper.user_id},
        ).scalar()
    assert seats == 1
