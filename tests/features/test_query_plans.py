"""No raw statement reads a whole table that grows with the business.

Twice a statement was found walking every seat ever sold, because SQLite's planner, which has no
statistics here, chose a plan that a small test database could not tell from a good one: the
notifications of a failed team, and the search for referral commissions to freeze (72 ms a call
with 200,000 seats). This test asks SQLite for the plan of every statement the engine defines
once in a module (the raw path: joins, payments, sweeps, the worker) and fails on a full pass
over a table, unless the pass is over a partial index (the rows due, which the sweeps keep few)
or the statement is listed below with the reason its pass is bounded. The ORM's queries are made
inside functions: ``test_route_plans.py`` plans those every route sends, and the last test here
holds the reads first found passing over a whole table when traced over the feature suite.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import pintuan
from pintuan.apps.oauth import _revoke_family
from pintuan.domain.roles import Principal, Role
from pintuan.kit.migrations import upgrade
from pintuan.kit.rawsql import Sql
from pintuan.payments.queue_api import queue_page
from pintuan.payments.refund_queue_api import open_refund_queue, refund_histories
from pintuan.payments.reports import OrderFilters, list_merchant_orders
from pintuan.services import Services
from pintuan.web.console.seat_refunds import _order as order_view
from tests.factories import create_account, create_deal, create_merchant
from tests.plans import positional_passes, statements_sent, whole_passes

# Statement -> the table it may pass over whole, and why that pass stays small.
BOUNDED_PASSES = {
    # The deals that pay their sharers, the catalogue's few, read first so that the seats are
    # found from their conversions (not the other way round: see the module's docstring).
    "pintuan.ledger.commissions.FREEZE_CANDIDATES": "deals",
}
# What SQLite cannot prepare because only PostgreSQL runs it (row locks, its functions, a
# write inside a WITH): such statements are never sent to SQLite.
_POSTGRES_ONLY = re.compile(
    r"FOR (UPDATE|SHARE|NO KEY UPDATE|KEY SHARE)\b|hashtextextended|pintuan_join_team"
    r"|\bAS \(\s*(INSERT|UPDATE|DELETE)\b",
    re.IGNORECASE,
)


def _statements() -> dict[str, Sql]:
    found: dict[str, Sql] = {}
    seen: set[int] = set()
    for module in pkgutil.walk_packages(pintuan.__path__, "pintuan."):
        if ".migrations" in module.name:
            continue
        for name, value in vars(importlib.import_module(module.name)).items():
            if isinstance(value, Sql) and id(value) not in seen:
                seen.add(id(value))
                found[f"{module.name}.{name}"] = value
    return found


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path: Path = tmp_path_factory.mktemp("plans") / "plans.db"
    upgrade(f"sqlite:///{path}")
    return sqlite3.connect(path)


def test_no_raw_statement_passes_over_a_whole_growing_table(schema: sqlite3.Connection) -> None:
    # given every statement the engine defines once, as SQLite runs it
    statements = _statements()
    assert len(statements) > 200  # the walk found the engine's statements, not a few of them
    planned, offenders = 0, {}
    for name, sql in sorted(statements.items()):
        text = sql.for_driver(True)
        if _POSTGRES_ONLY.search(text):
            continue
        # when SQLite plans it (every parameter NULL: the plan does not hang on values)
        passes = whole_passes(schema, text)
        planned += 1
        allowed = BOUNDED_PASSES.get(name)
        unbounded = [p for p in passes if not (allowed and p.startswith(f"{allowed} "))]
        if unbounded:
            offenders[name] = unbounded
    # then none reads a table whole, except where the list above says why
    assert planned > 200
    assert offenders == {}


def test_the_check_finds_a_whole_pass_and_lets_a_due_index_pass(
    schema: sqlite3.Connection,
) -> None:
    # a coupon's bargain check as it was, before bargains had an index on their seat
    schema.execute("DROP INDEX IF EXISTS ix_bargains_seat_id")
    try:
        before = whole_passes(
            schema,
            "SELECT s.id, EXISTS (SELECT 1 FROM bargains b WHERE b.seat_id = s.id) "
            "FROM seats s WHERE s.id = :id",
        )
    finally:
        schema.execute(
            "CREATE INDEX ix_bargains_seat_id ON bargains (seat_id) WHERE seat_id IS NOT NULL"
        )
    assert [p.split(" ")[0] for p in before] == ["bargains"]
    # and the operators found among every user, by the primary key's index
    assert whole_passes(schema, "SELECT id FROM users ORDER BY id")[0].startswith("users ")
    # while the worker's pass over the teams that are due (a partial index) is not one
    assert (
        whole_passes(
            schema,
            "SELECT id FROM teams WHERE status = 'forming' AND expires_at <= :now "
            "ORDER BY expires_at",
        )
        == []
    )


def test_the_lists_found_passing_over_whole_tables_now_use_their_indexes(
    services: Services, client: TestClient
) -> None:
    if not services.db.is_sqlite:
        pytest.skip("SQLite's plans: PostgreSQL plans with statistics of its own")
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=2)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    assert started.status_code == 201, started.text
    seat_id = started.json()["seat"]["id"]
    staff = Principal(
        user_id="usr_staff",
        role=Role.MERCHANT,
        display_name="Staff",
        locale="en",
        time_zone="UTC",
        merchant_ids=frozenset({merchant.id}),
    )
    now = datetime.now(UTC)
    reads: dict[str, Callable[[Session], object]] = {
        # the operators' queues, by their partial indexes (they were read by every payment's id)
        "payments queue": lambda s: queue_page(s, None, 50),
        "payments queue, next page": lambda s: queue_page(s, "pay_0", 50),
        "refunds queue": lambda s: refund_histories(s, open_refund_queue(s, None, 50)),
        # a deal's orders, through its teams (seats have no index by deal)
        "a deal's orders": lambda s: list_merchant_orders(
            s, staff, merchant.id, OrderFilters(deal_id="deal_0"), cursor=None, limit=50
        ),
        # a replayed grant's tokens, by the code they came from
        "a grant's tokens": lambda s: _revoke_family(s, "code_0", now),
        # an order as its merchant's staff see it: its payments and its disputes, by the seat
        "an order's payments and disputes": lambda s: order_view(s, staff, merchant.id, seat_id),
    }
    path = services.db.engine.url.database
    assert path
    found: dict[str, list[str]] = {}
    with closing(sqlite3.connect(path)) as conn:
        for name, read in reads.items():
            with statements_sent(services.db.engine.url) as sent:
                services.db.run_sync(read)
            assert sent, name
            passes = [p for text in sent for p in positional_passes(conn, text)]
            if passes:
                found[name] = passes
    assert found == {}
