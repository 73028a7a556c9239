"""On SQLite the raw path's writes that reach the event loop in the same turn are committed
together, each in a savepoint of its own: every caller gets its own result or error after the
shared commit, a write that fails leaves no trace while the others stay, a caller gone before
its turn changes nothing, and a write lock held by another process is waited for, then
refused with 503 ``database_busy``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import make_url

from pintuan.errors import DatabaseBusy
from pintuan.kit.db import Database
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql
from tests.features.test_hardening_contention import sqlite_write_lock_held_elsewhere

INSERT = Sql(
    "INSERT INTO feed_candidates (id, kind, item_id, vertical, merchant_id, features)"
    " VALUES (:id, 'deal', :id, 'food', 'mer_1', :features)"
)
IDS = Sql("SELECT id FROM feed_candidates ORDER BY id")
COUNT = Sql("SELECT count(*) FROM feed_candidates")


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("SQLite's event loop commits its writes together")
    return db


def batches() -> tuple[float, float]:
    """Transactions committed so far, and the writes in them."""
    name = "pintuan_sqlite_group_commit_writes"
    count = REGISTRY.get_sample_value(f"{name}_count") or 0.0
    total = REGISTRY.get_sample_value(f"{name}_sum") or 0.0
    return count, total


def insert(tx: RawTx, key: str) -> int:
    tx.execute(INSERT, {"id": key, "features": json.dumps([1.0])})
    return int(tx.scalar(COUNT))


def insert_then_fail(tx: RawTx, key: str) -> None:
    tx.execute(INSERT, {"id": key, "features": "[]"})
    raise ValueError("refused after writing")


async def gather(*calls: Any) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


def test_the_writes_of_one_turn_are_one_transaction_and_each_gets_its_result(
    sqlite_db: Database,
) -> None:
    before = batches()

    results = asyncio.run(gather(*(sqlite_db.run_raw(insert, f"c{n:02d}") for n in range(20))))

    # In the order they came, each seeing the ones before it.
    assert results == list(range(1, 21))
    count, total = batches()
    assert (count - before[0], total - before[1]) == (1, 20)
    assert sqlite_db.run_raw_sync(lambda tx: tx.column(IDS)) == [f"c{n:02d}" for n in range(20)]


def test_a_write_that_fails_is_undone_alone_and_gets_its_own_error(sqlite_db: Database) -> None:
    sqlite_db.run_raw_sync(insert, "taken")
    before = batches()

    first, failed, duplicate, last = asyncio.run(
        gather(
            sqlite_db.run_raw(insert, "a"),
            sqlite_db.run_raw(insert_then_fail, "b"),
            sqlite_db.run_raw(insert, "taken"),
            sqlite_db.run_raw(insert, "c"),
        )
    )

    assert (first, last) == (2, 3)
    assert isinstance(failed, ValueError)
    assert isinstance(duplicate, IntegrityViolation)
    assert sqlite_db.run_raw_sync(lambda tx: tx.column(IDS)) == ["a", "c", "taken"]
    assert batches()[0] - before[0] == 1


def test_a_write_alone_that_fails_changes_nothing(sqlite_db: Database) -> None:
    (failed,) = asyncio.run(gather(sqlite_db.run_raw(insert_then_fail, "b")))
    assert isinstance(failed, ValueError)
    assert sqlite_db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 0
    # The connection is usable again: nothing was left open.
    assert asyncio.run(sqlite_db.run_raw(insert, "after")) == 1


def test_a_caller_gone_before_its_turn_writes_nothing(sqlite_db: Database) -> None:
    async def scenario() -> tuple[Any, Any]:
        gone = asyncio.ensure_future(sqlite_db.run_raw(insert, "gone"))
        stays = asyncio.ensure_future(sqlite_db.run_raw(insert, "stays"))
        await asyncio.sleep(0)  # both are queued for the next turn
        gone.cancel()
        first, second = await gather(gone, stays)
        return first, second

    gone, stays = asyncio.run(scenario())

    assert isinstance(gone, asyncio.CancelledError)
    assert stays == 1
    assert sqlite_db.run_raw_sync(lambda tx: tx.column(IDS)) == ["stays"]


def test_a_lock_held_elsewhere_is_waited_for_then_the_writes_go_through(
    sqlite_db: Database,
) -> None:
    path = make_url(sqlite_db.url).database or ""

    async def scenario() -> list[Any]:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        writes = asyncio.ensure_future(
            gather(*(sqlite_db.run_raw(insert, f"w{n}") for n in range(5)))
        )
        await asyncio.sleep(0.2)  # the batch tried, found the lock taken, and waits
        assert not writes.done()
        other.execute("ROLLBACK")
        other.close()
        return await writes

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]


def test_a_lock_held_past_the_wait_is_refused_as_busy(sqlite_db: Database) -> None:
    db = Database(sqlite_db.url, request_wait_ms=150)
    try:
        with sqlite_write_lock_held_elsewhere(sqlite_db.url):
            results = asyncio.run(gather(*(db.run_raw(insert, f"x{n}") for n in range(3))))
        assert all(isinstance(r, DatabaseBusy) for r in results), results
        assert db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 0
    finally:
        db.dispose()


def test_each_threads_event_loop_commits_its_own_writes(sqlite_db: Database) -> None:
    def writes_from_a_loop_of_its_own(prefix: str) -> list[Any]:
        return asyncio.run(
            gather(*(sqlite_db.run_raw(insert, f"{prefix}{n:02d}") for n in range(30)))
        )

    with ThreadPoolExecutor(max_workers=2) as threads:
        results = [r for batch in threads.map(writes_from_a_loop_of_its_own, "ab") for r in batch]

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sqlite_db.run_raw_sync(lambda tx: tx.scalar(COUNT)) == 60


def test_a_loop_stopped_before_its_turn_leaves_the_next_loop_free(sqlite_db: Database) -> None:
    loop = asyncio.new_event_loop()

    async def queue_then_stop() -> None:
        pending = asyncio.ensure_future(sqlite_db.run_raw(insert, "never"))
        await asyncio.sleep(0)  # queued for a turn this loop will not take
        loop.stop()
        await pending

    task = loop.create_task(queue_then_stop())
    loop.run_forever()
    assert not task.done()
    loop.close()

    # A new loop on the same thread writes at once, not behind the dead loop's queue.
    assert asyncio.run(sqlite_db.run_raw(insert, "next")) == 1


BOOM = Sql(
    "CREATE TRIGGER test_boom BEFORE INSERT ON feed_candidates WHEN NEW.id = 'boom'"
    " BEGIN SELECT RAISE(ROLLBACK, 'the whole transaction rolled back'); END"
)


def test_a_write_that_rolls_the_whole_transaction_back_fails_alone(sqlite_db: Database) -> None:
    # given a write that makes SQLite roll back the whole transaction, not just its own part
    sqlite_db.run_raw_sync(lambda tx: tx.execute(BOOM))
    try:
        first, failed, boom, last = asyncio.run(
            gather(
                sqlite_db.run_raw(insert, "a"),
                sqlite_db.run_raw(insert_then_fail, "b"),
                sqlite_db.run_raw(insert, "boom"),
                sqlite_db.run_raw(insert, "c"),
            )
        )
    finally:
        sqlite_db.run_raw_sync(lambda tx: tx.execute(Sql("DROP TRIGGER test_boom")))

    # then it and the write that failed before it get their errors, and the others, whose
    # work went with the rollback, are written again at the next turn
    assert isinstance(boom, IntegrityViolation)
    assert isinstance(failed, ValueError)
    assert (first, last) == (1, 2)
    assert sqlite_db.run_raw_sync(lambda tx: tx.column(IDS)) == ["a", "c"]
