"""Values fixed at a statement's definition: a status word or a whole number is written into the
statement's text as a literal (so SQLite does not compile it again at each run, see
``kit/rawsql.py``), anything else stays bound; either way the statement answers the same, on
both databases, and a caller cannot give a written-out value again."""

from __future__ import annotations

import pytest

from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now

FIXED = Sql(
    "SELECT :word AS word, :number AS number, :spaced AS spaced, :quoted AS quoted, "
    ":colon AS colon, :flag AS flag, :given AS given",
    word=SeatStatus.HELD,
    number=-42,
    spaced="two words",
    quoted="it's",
    colon="a :given b",
    flag=True,
)
# A written-out word in an INSERT's row: the row still writes many rows in one statement.
EVENT = Sql(
    "INSERT INTO outbox_events (type, subject_id, payload, created_at)"
    " VALUES (:type, :subject_id, '{}', :at)",
    type=TeamStatus.FORMING,
)
EVENTS = Sql("SELECT subject_id FROM outbox_events WHERE type = :type ORDER BY id", type="forming")


def test_words_and_whole_numbers_are_written_out_and_the_rest_bound() -> None:
    for sqlite in (True, False):
        text = FIXED.for_driver(sqlite)
        assert "'held' AS word" in text
        assert "-42 AS number" in text
    assert FIXED.inlined == {"word", "number"}
    # text that could end its quotes or hide a parameter, and booleans (0/1 on SQLite, true or
    # false on PostgreSQL), are bound at each run
    assert set(FIXED.bound) == {"spaced", "quoted", "colon", "flag"}
    assert ":spaced" in FIXED.for_driver(True)
    assert "%(quoted)s" in FIXED.for_driver(False)


def test_the_statement_answers_what_it_answered_bound(db: Database) -> None:
    row = db.run_raw_sync(lambda tx: tx.one(FIXED, {"given": "x"}), write=False)

    assert tuple(row[:5]) == ("held", -42, "two words", "it's", "a :given b")
    assert bool(row[5]) is True
    assert row[6] == "x"


def test_a_written_out_value_cannot_be_given_again(db: Database) -> None:
    with pytest.raises(ValueError, match="word"):
        db.run_raw_sync(lambda tx: tx.one(FIXED, {"given": "x", "word": "paid"}), write=False)

    def write(tx: RawTx) -> None:
        tx.many(EVENT, [{"subject_id": "a", "at": "2026-01-01", "type": "other"}] * 2)

    with pytest.raises(ValueError, match="type"):
        db.run_raw_sync(write)
    assert db.run_raw_sync(lambda tx: tx.column(EVENTS), write=False) == []


def test_many_rows_with_a_written_out_word_go_in_one_statement(db: Database) -> None:
    # given an INSERT whose row holds a written-out word
    assert EVENT.rows_form(sqlite=True) is not None
    assert EVENT.rows_form(sqlite=False) is not None

    # when many rows are written
    def write(tx: RawTx) -> None:
        at = tx.instant(utc_now())
        tx.many(EVENT, [{"subject_id": f"s{n:03d}", "at": at} for n in range(30)])

    db.run_raw_sync(write)

    # then each is there once, in order, with the word
    assert db.run_raw_sync(lambda tx: tx.column(EVENTS), write=False) == [
        f"s{n:03d}" for n in range(30)
    ]
