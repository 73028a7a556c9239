"""Statements sent without waiting for their answer, and statements read together: what one
transaction writes and reads is the same as when each statement ran alone and in turn (on
PostgreSQL they share round trips; on SQLite they run at once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pintuan.kit.db import Database
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql
from pintuan.kit.time import utc_now

EVENT = Sql(
    "INSERT INTO outbox_events (type, subject_id, payload, created_at)"
    " VALUES (:type, :subject_id, :payload, :at)",
    type="raw.test",
)
EVENT_AGAIN = Sql(
    "INSERT INTO outbox_events (id, type, subject_id, payload, created_at)"
    " VALUES (:id, :type, :subject_id, :payload, :at)",
    type="raw.test",
)
SUBJECTS = Sql("SELECT subject_id FROM outbox_events WHERE type = 'raw.test' ORDER BY id")
LAST = Sql(
    "SELECT id, subject_id FROM outbox_events WHERE type = 'raw.test' ORDER BY id DESC LIMIT 1"
)
NOTHING = Sql("SELECT id, subject_id FROM outbox_events WHERE type = 'raw.none'")
RETURNING_EVENT = Sql(EVENT.text + " RETURNING id, subject_id", type="raw.test")
RETURNING_EVENT_AGAIN = Sql(EVENT_AGAIN.text + " RETURNING id, subject_id", type="raw.test")


@dataclass(frozen=True, slots=True)
class _Event:
    id: int
    subject_id: str


def events(tx: RawTx, *subjects: str) -> list[dict[str, Any]]:
    at = tx.instant(utc_now())
    return [{"subject_id": s, "payload": "{}", "at": at} for s in subjects]


def first_event(db: Database) -> _Event:
    """An event "first", committed: its id is taken for a later insert to clash with."""
    db.run_raw_sync(lambda tx: tx.send_many(EVENT, events(tx, "first")))
    taken = db.run_raw_sync(lambda tx: tx.one_as(_Event, LAST))
    assert taken is not None
    return taken


def test_rows_sent_without_their_answer_are_read_back_in_the_same_transaction(
    db: Database,
) -> None:
    def write(tx: RawTx) -> list[str]:
        tx.send_many(EVENT, events(tx, "a"))
        tx.send_many(EVENT, events(tx, "b", "c", "d"))
        tx.send_many(EVENT, [])
        return list(tx.column(SUBJECTS))  # what waits goes out before this read

    assert db.run_raw_sync(write) == ["a", "b", "c", "d"]
    # ... and is committed with the transaction, once.
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["a", "b", "c", "d"]


def test_rows_sent_last_are_written_by_the_commit(db: Database) -> None:
    db.run_raw_sync(lambda tx: tx.send_many(EVENT, events(tx, "x", "y")))
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["x", "y"]


def test_a_broken_constraint_in_rows_sent_later_refuses_the_whole_transaction(
    db: Database,
) -> None:
    taken = first_event(db)

    def clash(tx: RawTx, read_after: bool) -> None:
        tx.send_many(EVENT, events(tx, "lost"))
        again = events(tx, "clash")[0]
        tx.send_many(EVENT_AGAIN, [{**again, "id": taken.id}])  # the id is taken
        if read_after:
            tx.column(SUBJECTS)

    # Raised by the next statement that is read, or by the commit, as the driver's error
    # would have been raised by the statement itself.
    for read_after in (True, False):
        with pytest.raises(IntegrityViolation):
            db.run_raw_sync(clash, read_after)
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["first"]


def test_statements_read_together_answer_in_order_and_see_earlier_writes(
    db: Database,
) -> None:
    def write(tx: RawTx) -> tuple[Any, ...]:
        tx.send_many(EVENT, events(tx, "waiting"))
        inserted, last, nothing, subjects = tx.together(
            (Sql(EVENT.text + " RETURNING subject_id", type="raw.test"), events(tx, "new")[0]),
            (LAST, None),
            (NOTHING, None),
            (SUBJECTS, None),
        )
        return (
            inserted.one(),
            last.one_as(_Event),
            nothing.one(),
            nothing.one_as(_Event),
            nothing.all_as(_Event),
            [row[0] for row in subjects.rows],
        )

    inserted, last, none, none_as, none_all, subjects = db.run_raw_sync(write)
    assert tuple(inserted) == ("new",)
    assert isinstance(last, _Event)
    assert last.subject_id == "new"  # the insert before it in the same round trip
    assert (none, none_as, none_all) == (None, None, [])
    assert subjects == ["waiting", "new"]
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["waiting", "new"]


def test_statements_read_together_refuse_as_one_statement_would(db: Database) -> None:
    taken = first_event(db)

    def clash(tx: RawTx) -> None:
        again = {**events(tx, "clash")[0], "id": taken.id}
        tx.together((LAST, None), (EVENT_AGAIN, again))

    with pytest.raises(IntegrityViolation):
        db.run_raw_sync(clash)
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["first"]


def test_a_read_sent_later_answers_once_a_later_statement_went_even_when_that_one_failed(
    db: Database,
) -> None:
    taken = first_event(db)
    seen: list[_Event | None] = []

    def read_then_clash(tx: RawTx) -> None:
        tx.send_many(EVENT, events(tx, "second"))
        last = tx.later(LAST)
        none = tx.later(NOTHING)
        try:
            tx.one(EVENT_AGAIN, {**events(tx, "clash")[0], "id": taken.id})
        finally:
            seen.extend((last.one_as(_Event), none.one_as(_Event)))

    with pytest.raises(IntegrityViolation):
        db.run_raw_sync(read_then_clash)
    # the read saw the row written before it in the same transaction, then all was undone
    assert [e.subject_id if e else None for e in seen] == ["second", None]
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["first"]


def test_a_read_sent_later_with_nothing_after_it_goes_out_when_its_rows_are_asked(
    db: Database,
) -> None:
    db.run_raw_sync(lambda tx: tx.send_many(EVENT, events(tx, "only")))

    def read(tx: RawTx) -> _Event | None:
        return tx.later(LAST).one_as(_Event)

    found = db.run_raw_sync(read)
    assert found is not None
    assert found.subject_id == "only"


def test_a_transaction_started_over_after_a_failed_statement_keeps_only_what_follows(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("only PostgreSQL's deferring transactions start over (SQLite: savepoints)")
    taken = first_event(db)

    def fail_then_start_over(tx: RawTx) -> None:
        tx.send_many(EVENT, events(tx, "undone"))
        with pytest.raises(IntegrityViolation) as refused:
            tx.one(EVENT_AGAIN, {**events(tx, "clash")[0], "id": taken.id})
        assert refused.value.constraint == "pk_outbox_events"
        tx.start_over()
        tx.send_many(EVENT, events(tx, "kept"))

    db.run_raw_sync(fail_then_start_over)
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS)) == ["first", "kept"]


def test_a_read_dropped_by_starting_over_says_so_when_its_rows_are_asked(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("only PostgreSQL's deferring transactions start over (SQLite: savepoints)")

    def drop_a_read(tx: RawTx) -> None:
        tx.send_many(EVENT, events(tx, "undone"))
        dropped = tx.later(LAST)
        tx.start_over()
        with pytest.raises(RuntimeError, match="never went out"):
            dropped.one_as(_Event)

    db.run_raw_sync(drop_a_read)


@pytest.mark.parametrize("sent_before", [False, True], ids=["alone", "after a write"])
def test_a_last_statement_that_ends_the_transaction_commits_it_and_nothing_runs_after(
    db: Database, sent_before: bool
) -> None:
    def insert_last(tx: RawTx) -> _Event | None:
        tx.ends_with_last()
        assert tx.one_as_outside(_Event, NOTHING) is None
        if sent_before:
            tx.send_many(EVENT, events(tx, "before"))
        last = tx.last_one_as(_Event, RETURNING_EVENT, events(tx, "last")[0])
        if not tx.sqlite:  # SQLite's transactions end with their unit (the group's commit)
            with pytest.raises(RuntimeError, match="ended with its last statement"):
                tx.send_many(EVENT, events(tx, "after"))
            with pytest.raises(RuntimeError, match="ended with its last statement"):
                tx.one(SUBJECTS)
        return last

    written = db.run_raw_sync(insert_last)

    assert written is not None
    assert written.subject_id == "last"
    subjects = db.run_raw_sync(lambda tx: tx.column(SUBJECTS), write=False)
    assert subjects == (["before", "last"] if sent_before else ["last"])


def test_a_last_statement_refused_leaves_nothing_of_the_transaction(db: Database) -> None:
    taken = first_event(db)

    def clash(tx: RawTx) -> None:
        tx.ends_with_last()
        tx.send_many(EVENT, events(tx, "kept?"))
        tx.last_one_as(_Event, RETURNING_EVENT_AGAIN, {**events(tx, "clash")[0], "id": taken.id})

    with pytest.raises(IntegrityViolation):
        db.run_raw_sync(clash)
    assert db.run_raw_sync(lambda tx: tx.column(SUBJECTS), write=False) == ["first"]


def test_without_leave_to_end_a_last_statement_is_one_like_any_other(db: Database) -> None:
    def write(tx: RawTx) -> list[str]:
        tx.last_one_as(_Event, RETURNING_EVENT, events(tx, "last")[0])
        tx.send_many(EVENT, events(tx, "after"))
        return list(tx.column(SUBJECTS))

    assert db.run_raw_sync(write) == ["last", "after"]
