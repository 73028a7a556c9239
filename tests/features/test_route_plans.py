"""No route reads a whole growing table where it would hold up the others.

``test_query_plans.py`` plans the statements the engine defines once in a module. The ORM's are
built inside functions, so they are caught here as they are sent: every route is called as each
caller on seeded data (the access matrix's walk, ``test_access.py``), every statement sent to
the database meanwhile is kept with the line of Pintuan's code that sent it, whether it ran on
the event loop and whether its transaction held SQLite's write lock (begun IMMEDIATE), and
SQLite plans each one afterwards. A pass over a whole table, unless it is a page (newest first
with no filter, so it stops after ``limit`` rows), breaks the rules:

- **on the event loop** (on SQLite a read runs there, and a join waits for as long as it takes);
- **holding the write lock**, for every join would wait for it too;
- **anywhere else** (a report's own thread), unless the code that sent it is listed in
  ``REPORTS``, each with why it reads what it reads.

The worker is held the same way, after it has worked through a world with money in every
state, its passes listed in ``WORKER_PASSES``.

The walk found the audits, the ledger check and the cross-vertical figures recomputing over
every seat and journal on the event loop (they are reports now), and the directory of merchants
of one status, the apps to review and the operators' withdrawals walking every row newest first
until a page was found (each has an index now). The worker's found the daily growth roll-up
counting over every seat and team, and reconciliation over every payment, each holding the
write lock meanwhile (each reads first now, without it).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import URL, Engine, event, text
from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.kit.db import _IMMEDIATE as BEGIN_IMMEDIATE
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant, seed_world
from tests.features.test_access import walk_every_route
from tests.features.test_ledger import paid_team, pay
from tests.plans import positional_passes

# The code (module, or module:function) whose statements may pass over a whole table off the
# event loop, and why.
REPORTS = {
    "pintuan.audit.": "the audit recomputes every invariant from every row, on purpose",
    "pintuan.growth.service:": "growth figures: sums over the days' and samples' rows, and the "
    "cross-vertical flow over the paid seats of the weeks asked for",
    "pintuan.payments.providers.sandbox:read": "reconciliation reads the sandbox's statement",
    "pintuan.payments.reports:": "a merchant's orders and refunds, the operators' refunds: newest "
    "first until a page, which passes over every seat only for a merchant with few",
    "pintuan.fulfilment.service:shipping_queue": "the merchant's seats to ship, as their orders",
    "pintuan.fills.service:filled_teams": "the teams the platform filled, newest first",
    "pintuan.web.console.growth:_channel_names": "the partner apps' names, for the channels",
}
# Frames that are the plumbing between the code that asks and the driver.
_PLUMBING = ("pintuan.kit.", "sqlalchemy.", "asyncio.", "anyio.", "concurrent.", "threading")


def _origin() -> str:
    """``module:function`` of the nearest frame of Pintuan's (or a test's) own code."""
    frame: Any = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(("pintuan.", "tests.")) and not module.startswith(_PLUMBING):
            return f"{module}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class Sent:
    """One statement as it was sent: by which calls, from where, and whether on the loop."""

    calls: set[str] = field(default_factory=set)
    origins: set[str] = field(default_factory=set)
    on_the_loop: bool = False
    # In a transaction that holds SQLite's write lock (begun IMMEDIATE).
    holding_the_lock: bool = False


@contextmanager
def recording(url: URL) -> Iterator[tuple[dict[str, Sent], list[str | None]]]:
    """Every statement sent to ``url`` while ``call[0]`` names a call (set it, then None)."""
    sent: dict[str, Sent] = {}
    call: list[str | None] = [None]
    lock = threading.Lock()

    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        now = call[0]
        if now is None or conn.engine.url != url:
            return
        origin, on_the_loop = _origin(), _on_the_loop()
        writing = bool(conn.get_execution_options().get(BEGIN_IMMEDIATE, False))
        with lock:
            seen = sent.setdefault(statement, Sent())
            seen.calls.add(now)
            seen.origins.add(origin)
            seen.on_the_loop |= on_the_loop
            seen.holding_the_lock |= writing

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent, call
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _a_page(statement: str, passed: str) -> bool:
    """A pass in an index's order over a table read with no filter, which stops at its LIMIT."""
    upper = statement.upper()
    return " USING " in passed and "LIMIT" in upper and "WHERE" not in upper


def offenders(
    conn: sqlite3.Connection, sent: dict[str, Sent], listed: Mapping[str, str]
) -> list[str]:
    """What breaks the module's rules, one line each: a pass over a whole table on the event
    loop, or holding SQLite's write lock, or by code that ``listed`` does not name."""
    found = []
    for statement, seen in sent.items():
        passes = [p for p in positional_passes(conn, statement) if not _a_page(statement, p)]
        if not passes:
            continue
        if seen.on_the_loop:
            why = "on the event loop"
        elif seen.holding_the_lock:
            why = "holding the write lock"
        elif not all(any(o.startswith(code) for code in listed) for o in seen.origins):
            why = "not a known report"
        else:
            continue
        where = f"{', '.join(sorted(seen.origins))} for {', '.join(sorted(seen.calls)[:3])}"
        found.append(f"{why}: {passes} by {where}: {' '.join(statement.split())[:160]}")
    return sorted(found)


def _sqlite_url(services: Services) -> URL:
    """The database's URL; the test is skipped on PostgreSQL, which plans with statistics of
    its own and never reads on the event loop."""
    if not services.db.is_sqlite:
        pytest.skip("SQLite's plans, and its reads on the event loop")
    return services.db.engine.url


def test_no_route_passes_over_a_whole_table_on_the_loop_or_outside_a_report(
    settings: Settings, services: Services
) -> None:
    url = _sqlite_url(services)

    # given every route called as each caller, with what each call sent
    with recording(url) as (sent, call):

        def watch(now: tuple[str, str, str] | None) -> None:
            call[0] = f"{now[0]} {now[1]}" if now else None

        walk_every_route(settings, services, watch)

    # then SQLite's plan of each keeps to the rules
    assert len(sent) > 200  # the walk reached the routes' own reads, not a few of them
    assert any(seen.on_the_loop for seen in sent.values())
    assert url.database
    with closing(sqlite3.connect(url.database)) as conn:
        found = offenders(conn, sent, REPORTS)
    assert not found, f"{len(found)} statements break the rules:\n" + "\n".join(found)


def test_the_rules_catch_a_pass_on_the_loop_and_one_outside_a_report(services: Services) -> None:
    url = _sqlite_url(services)

    def every_failed_seat(session: Session) -> object:
        return session.execute(text("SELECT id FROM seats WHERE status = 'failed'")).all()

    def newest_seats(session: Session) -> object:
        return session.execute(text("SELECT id FROM seats ORDER BY id DESC LIMIT 20")).all()

    async def read_all() -> None:
        await services.db.read(every_failed_seat)  # on the loop
        await services.db.read(newest_seats)  # on the loop, but a page
        await services.db.report(every_failed_seat)  # off the loop, in no report

    with recording(url) as (sent, call):
        call[0] = "GET /test"
        asyncio.run(read_all())

    assert url.database
    with closing(sqlite3.connect(url.database)) as conn:
        found = offenders(conn, sent, REPORTS)
    assert len(found) == 1  # both reads of every failed seat are one statement
    assert found[0].startswith("on the event loop: ['seats (SCAN seats)']")
    assert "tests.features.test_route_plans:every_failed_seat" in found[0]
    assert any("ORDER BY id DESC LIMIT 20" in s for s in sent)  # recorded, and let pass

    sent.clear()
    with recording(url) as (sent, call):
        call[0] = "GET /test"
        asyncio.run(services.db.report(every_failed_seat))
    with closing(sqlite3.connect(url.database)) as conn:
        assert [f.split(":")[0] for f in offenders(conn, sent, REPORTS)] == ["not a known report"]


# The worker's code whose statements may pass over a whole table, and why. The worker runs off
# the event loop, but a pass still costs a core while it lasts, and inside a write transaction
# it would hold SQLite's write lock, so that every join waits: none may.
WORKER_PASSES = {
    "pintuan.ledger.settlement:recently_active": "the merchants with money moved in the last "
    "days, every five minutes (journals have no index by when they were recorded, so that "
    "recording one stays cheap)",
    "pintuan.growth.service:_count_": "a closed day's growth figures, once a day, counted over "
    "the seats and teams (an index by when each was paid or ended would cost every payment and "
    "every team's end a write)",
    "pintuan.ledger.findings:held_by_us": "reconciliation's payments holding money at a "
    "provider, once a day (an index would cost every hold's authorisation and capture a write)",
    "pintuan.payments.providers.sandbox:read": "the sandbox answering as a provider: its own "
    "statement and open holds (a real provider's are calls to its API)",
}


def test_the_worker_passes_over_a_whole_table_only_where_listed(
    client: TestClient, services: Services
) -> None:
    url = _sqlite_url(services)
    # given a world with money in every state the worker acts on: a team that succeeds with
    # its seats paid through the sandbox, one that fails with a paid seat, a lapsing hold
    seed_world(client, services)
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, live=True, team_size=2)
    full, alone, holding = (create_account(services) for _ in range(3))
    paid_team(client, deal.id, [full, alone])
    lonely = client.post(f"/v1/deals/{deal.id}/teams", headers=holding.headers)
    assert lonely.status_code == 201, lonely.text
    pay(client, holding, lonely.json()["seat"]["id"])

    # when the worker works through it now, after the teams' windows and after the days settle
    with recording(url) as (sent, call):
        call[0] = "worker"
        Worker(services).run_until_idle()
        for days in (2, 9):
            clock.advance(timedelta(days=days))
            Worker(services).run_until_idle()

    # then only the listed code passes over a whole table, and never holding the write lock
    assert len(sent) > 20
    assert url.database
    with closing(sqlite3.connect(url.database)) as conn:
        found = offenders(conn, sent, WORKER_PASSES)
    assert not found, f"{len(found)} statements break the rule:\n" + "\n".join(found)
