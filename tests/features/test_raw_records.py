"""The raw path's rows as records: by position when the columns are the record's fields in
order, by name otherwise, and the same record either way, on both databases."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now

ROWS = Sql(
    """
    SELECT id AS a, name AS b, slug AS c FROM merchants WHERE id IN_LIST(:ids) ORDER BY id
"""
)
REORDERED = Sql("SELECT slug AS c, id AS a, name AS b FROM merchants WHERE id = :id")
INSERT = Sql(
    """
    INSERT INTO merchants (id, name, slug, country, currency, time_zone, status, commission_bps,
                           created_at, updated_at)
    VALUES (:id, :name, :slug, 'DE', 'EUR', 'Europe/Berlin', 'approved', 0, :at, :at)
"""
)


@dataclass(frozen=True, slots=True)
class InOrder:
    a: str
    b: str
    c: str


@dataclass(frozen=True)
class WithDefault:
    a: str
    b: str
    c: str
    extra: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class KeywordsOnly:
    a: str
    b: str
    c: str


def _seed(tx: RawTx) -> None:
    at = tx.instant(utc_now())
    for n in (1, 2):
        tx.execute(INSERT, {"id": f"mch_{n}", "name": f"Name {n}", "slug": f"slug-{n}", "at": at})


@pytest.mark.parametrize("record", [InOrder, KeywordsOnly])
def test_every_row_becomes_the_same_record_by_position_or_by_name(
    db: Database, record: type
) -> None:
    db.run_raw_sync(_seed)
    rows = db.run_raw_sync(lambda tx: tx.all_as(record, ROWS, {"ids": ["mch_2", "mch_1"]}))
    assert rows == [
        record(a="mch_1", b="Name 1", c="slug-1"),
        record(a="mch_2", b="Name 2", c="slug-2"),
    ]
    # Columns in another order than the fields go by name.
    one = db.run_raw_sync(lambda tx: tx.one_as(record, REORDERED, {"id": "mch_1"}))
    assert one == record(a="mch_1", b="Name 1", c="slug-1")
    # And the same statement after it, by position again where the fields allow it.
    again = db.run_raw_sync(lambda tx: tx.one_as(record, ROWS, {"ids": ["mch_2"]}))
    assert again == record(a="mch_2", b="Name 2", c="slug-2")


def test_a_record_with_more_fields_than_columns_is_built_by_name(db: Database) -> None:
    db.run_raw_sync(_seed)
    rows = db.run_raw_sync(lambda tx: tx.all_as(WithDefault, ROWS, {"ids": ["mch_1"]}))
    assert rows == [WithDefault(a="mch_1", b="Name 1", c="slug-1")]


def test_a_column_of_ids(db: Database) -> None:
    db.run_raw_sync(_seed)
    ids = db.run_raw_sync(lambda tx: tx.column(ROWS, {"ids": ["mch_1", "mch_2", "nope"]}))
    assert ids == ["mch_1", "mch_2"]
