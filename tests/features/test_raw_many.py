"""Many rows at once through the raw path: on SQLite an ``INSERT ... VALUES`` becomes a few
statements of many rows each; on either database every row is written once, in order, and a
broken constraint writes none of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pintuan.kit import rawsql
from pintuan.kit.db import Database
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql
from pintuan.kit.time import utc_now

CANDIDATE = Sql(
    "INSERT INTO feed_candidates (id, kind, item_id, vertical, merchant_id, features)"
    " VALUES (:id, :kind, :item_id, :vertical, lower(:merchant_id), :features)"
)
CANDIDATE_ONCE = Sql(CANDIDATE.text + " ON CONFLICT (id) DO NOTHING")
EVENT = Sql(
    "INSERT INTO outbox_events (type, subject_id, payload, created_at)"
    " VALUES (:type, :subject_id, :payload, :at)",
    type="bench.test",
)
COUNT = Sql("SELECT count(*) FROM feed_candidates")
EVENTS = Sql("SELECT subject_id FROM outbox_events WHERE type = 'bench.test' ORDER BY id")
MERCHANTS = Sql("SELECT DISTINCT merchant_id FROM feed_candidates")


def candidate(n: int) -> dict[str, Any]:
    return {
        "id": f"c{n:06d}",
        "kind": "deal",
        "item_id": f"deal_{n}",
        "vertical": "food",
        "merchant_id": "MER_1",
        "features": json.dumps([1.0, n / 10]),
    }


@pytest.fixture
def small_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 7 rows a statement, so that a few hundred rows cross many statements' edges."""
    monkeypatch.setattr(rawsql, "_MAX_ROWS_PER_INSERT", 7)


@pytest.mark.usefixtures("small_statements")
def test_every_row_is_written_once_in_order(db: Database) -> None:
    at = utc_now()

    def write(tx: RawTx) -> None:
        tx.many(CANDIDATE, [candidate(n) for n in range(250)])
        tx.many(
            EVENT,
            [
                {"subject_id": f"s{n:04d}", "payload": "{}", "at": tx.instant(at)}
                for n in range(101)
            ],
        )

    db.run_raw_sync(write)

    assert db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 250
    assert db.run_raw_sync(lambda tx: tx.column(MERCHANTS)) == ["mer_1"]  # expressions kept
    # Outbox events keep the order they were given in: their ids follow it.
    assert db.run_raw_sync(lambda tx: tx.column(EVENTS)) == [f"s{n:04d}" for n in range(101)]


@pytest.mark.usefixtures("small_statements")
def test_on_conflict_skips_rows_already_there_and_repeated_in_the_batch(db: Database) -> None:
    db.run_raw_sync(lambda tx: tx.many(CANDIDATE, [candidate(n) for n in range(10)]))
    rows = [candidate(n) for n in range(5, 40)] + [candidate(n) for n in range(30, 45)]
    db.run_raw_sync(lambda tx: tx.many(CANDIDATE_ONCE, rows))
    assert db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 45


@pytest.mark.usefixtures("small_statements")
def test_a_broken_constraint_writes_none_of_the_rows(db: Database) -> None:
    db.run_raw_sync(lambda tx: tx.many(CANDIDATE, [candidate(n) for n in range(3)]))
    with pytest.raises(IntegrityViolation):
        db.run_raw_sync(
            lambda tx: tx.many(CANDIDATE, [candidate(n) for n in range(3, 60)] + [candidate(1)])
        )
    assert db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 3


def test_only_plain_inserts_are_written_as_many_rows() -> None:
    assert CANDIDATE.rows_form() is not None
    assert CANDIDATE_ONCE.rows_form() is not None
    # Another statement, quoted text in the row, or a parameter outside it: one row a statement.
    assert Sql("UPDATE deals SET committed = committed - :n WHERE id = :id").rows_form() is None
    assert Sql("INSERT INTO t (a, b) VALUES (:a, 'x:y')").rows_form() is None
    assert (
        Sql("INSERT INTO t (a) VALUES (:a) ON CONFLICT (a) DO UPDATE SET a = :b").rows_form()
        is None
    )
    assert Sql("INSERT INTO t (a) SELECT :a").rows_form() is None
    form = Sql("INSERT INTO t (a, b) VALUES (:a, coalesce(:b, :a))").rows_form()
    assert form is not None
    assert form.names == ("a", "b", "a")
    assert form.text(2) == "INSERT INTO t (a, b) VALUES (?, coalesce(?, ?)), (?, coalesce(?, ?))"


def test_postgresql_writes_many_rows_a_statement_except_an_upsert() -> None:
    form = Sql("INSERT INTO t (a, b) VALUES (:a, :b % 7) ON CONFLICT DO NOTHING").rows_form(
        sqlite=False
    )
    assert form is not None
    assert form.names == ("a", "b")
    # psycopg's placeholders, the statement's own % doubled.
    assert form.text(2) == (
        "INSERT INTO t (a, b) VALUES (%s, %s %% 7), (%s, %s %% 7) ON CONFLICT DO NOTHING"
    )
    # One statement may not update a row twice on PostgreSQL, where one statement a row could.
    upsert = Sql("INSERT INTO t (a) VALUES (:a) ON CONFLICT (a) DO UPDATE SET a = excluded.a")
    assert upsert.rows_form() is not None
    assert upsert.rows_form(sqlite=False) is None


def test_an_upsert_meeting_one_key_twice_in_a_batch_applies_both(db: Database) -> None:
    replace = Sql(CANDIDATE.text + " ON CONFLICT (id) DO UPDATE SET features = excluded.features")
    first, second = candidate(1), {**candidate(1), "features": "[2.0, 0.5]"}

    db.run_raw_sync(lambda tx: tx.many(replace, [first, second]))

    features = Sql("SELECT features FROM feed_candidates WHERE id = :id")
    stored = db.run_raw_sync(lambda tx: tx.scalar(features, {"id": first["id"]}))
    assert (json.loads(stored) if isinstance(stored, str) else stored) == [2.0, 0.5]
