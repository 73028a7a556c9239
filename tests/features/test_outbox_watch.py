"""The outbox as the read cache's watcher reads it, on both databases: the teams and deals each
event names (its subject, and the ``team_id`` and ``deal_id`` of its payload when they are
text), the deals of the teams named, and where reading stopped."""

from __future__ import annotations

from typing import Any

import pytest

from pintuan.events import watch
from pintuan.events.service import record_events
from pintuan.events.watch import changed_since, deals_of_teams, events_after, last_event_id
from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx
from pintuan.kit.readcache import DEAL_LISTS, deal_tag, team_tag
from pintuan.services import Services
from tests.factories import create_account, create_deal, create_merchant
from tests.features.sharing import start as start_team


def test_the_teams_and_deals_events_name_are_read_by_the_database(db: Database) -> None:
    start = db.run_raw_sync(last_event_id, write=False)
    db.run_raw_sync(
        record_events,
        [
            ("seat.paid", "seat_1", {"team_id": "team_1", "user_id": "usr_1"}),
            ("offer.changed", "deal_1", {}),
            ("team.waiting", "team_2", {"deal_id": "deal_2", "seats": 3}),
            # Not text: neither is a team's or a deal's id, and neither is read as one.
            ("seat.odd", "seat_2", {"team_id": 7, "deal_id": ["deal_9"]}),
            ("note", "usr_1", {"nested": {"team_id": "team_9"}}),
        ],
    )
    rows = db.run_raw_sync(events_after, start, 100, write=False)
    assert [tuple(row[1:]) for row in rows] == [
        ("seat.paid", "seat_1", "team_1", None),
        ("offer.changed", "deal_1", None, None),
        ("team.waiting", "team_2", None, "deal_2"),
        ("seat.odd", "seat_2", None, None),
        ("note", "usr_1", None, None),
    ]
    assert [int(row[0]) for row in rows] == sorted(int(row[0]) for row in rows)
    # A limit reads the first ones only, and reading on starts after the last one read.
    first_two = db.run_raw_sync(events_after, start, 2, write=False)
    assert [row[2] for row in first_two] == ["seat_1", "deal_1"]
    rest = db.run_raw_sync(events_after, int(first_two[-1][0]), 100, write=False)
    assert [row[2] for row in rest] == ["team_2", "seat_2", "usr_1"]


def test_the_tags_an_events_teams_and_deals_drop(db: Database) -> None:
    start = db.run_raw_sync(last_event_id, write=False)
    db.run_raw_sync(
        record_events,
        [
            ("seat.paid", "seat_1", {"team_id": "team_unknown"}),
            ("offer.changed", "deal_x", {}),
        ],
    )
    last, tags = db.run_raw_sync(changed_since, start, write=False)
    assert last == db.run_raw_sync(last_event_id, write=False) > start
    # A team the database does not know names no deal; the deal named drops its lists too.
    assert tags == {team_tag("team_unknown"), deal_tag("deal_x"), DEAL_LISTS}
    assert db.run_raw_sync(changed_since, last, write=False) == (last, set())


def test_a_teams_deal_is_read_once_then_known(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two teams on two deals, and a process that has read no team's deal yet
    monkeypatch.setattr(watch, "_team_deals", {})
    merchant = create_merchant(services.db)
    first_deal, second_deal = create_deal(services.db, merchant), create_deal(services.db, merchant)
    shopper = create_account(services)
    first = start_team(services, shopper, first_deal.id).team_id
    second = start_team(services, create_account(services), second_deal.id).team_id
    statements: list[str] = []
    real_all = RawTx.all

    def counted_all(tx: RawTx, sql: Any, params: Any = None) -> Any:
        if sql is watch.DEALS_OF_TEAMS:
            statements.append(sql.text)
        return real_all(tx, sql, params)

    monkeypatch.setattr(RawTx, "all", counted_all)

    # when the deals of the first team, then of both and an unknown one, then of both are asked
    once = services.db.run_raw_sync(deals_of_teams, [first], write=False)
    both = services.db.run_raw_sync(deals_of_teams, [first, second, "team_x"], write=False)
    asked_before = len(statements)
    again = services.db.run_raw_sync(deals_of_teams, [first, second], write=False)

    # then each answer holds the deals, the database read only the teams not known, and teams
    # known are answered without it
    assert once == {first_deal.id}
    assert both == again == {first_deal.id, second_deal.id}
    assert asked_before == 2
    assert len(statements) == asked_before
