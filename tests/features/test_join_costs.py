"""What keeps the join and every request cheap without changing what they do: SQLite's WAL
checkpoints run beside the event loop, never inside a request; the request log writes one line.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from pintuan.kit import logs
from pintuan.kit.db import Database
from pintuan.kit.logs import JsonFormatter, configure_logging, log_request, request_id_var
from pintuan.kit.rawsql import Sql

CREATE = Sql("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body BLOB)")
WRITE = Sql("INSERT INTO notes (body) VALUES (randomblob(3000))")


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def _commit_many(db: Database, times: int) -> None:
    for _ in range(times):
        await db.run_raw(lambda tx: tx.execute(WRITE))


def test_the_event_loop_never_checkpoints_and_the_wal_is_still_copied_back(
    tmp_path: Path,
) -> None:
    # given a SQLite file served from the event loop
    path = tmp_path / "served.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.run_raw_sync(lambda tx: tx.execute(CREATE))

        async def serve() -> tuple[int, int, int]:
            # the serving connection leaves checkpoints to someone else
            autocheckpoint = await db.run_raw(
                lambda tx: tx.scalar(Sql("PRAGMA wal_autocheckpoint")), write=False
            )
            # when it commits a few hundred pages, twice, with a pause after each round
            await _commit_many(db, 400)
            await asyncio.sleep(1.5)
            first = _wal_bytes(path)
            await _commit_many(db, 400)
            await asyncio.sleep(1.5)
            return int(autocheckpoint), first, _wal_bytes(path)

        autocheckpoint, first, second = asyncio.run(serve())
    finally:
        db.dispose()

    # then SQLite's own checkpoint is off on that connection
    assert autocheckpoint == 0
    # and the WAL was copied back and reused: the second round did not grow it by its size
    assert first > 0
    assert second < first * 1.5, (first, second)
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 800


def test_the_worker_and_the_cli_never_checkpoint_either_and_their_wal_is_copied_back(
    tmp_path: Path,
) -> None:
    # given a SQLite file written by blocking calls only (the worker's sweeps, the CLI)
    path = tmp_path / "swept.db"
    db = Database(f"sqlite:///{path}")
    autocheckpoint = Sql("PRAGMA wal_autocheckpoint")
    try:
        db.run_raw_sync(lambda tx: tx.execute(CREATE))
        blocking = db.run_raw_sync(lambda tx: tx.scalar(autocheckpoint), write=False)
        in_session = db.run_sync(
            lambda session: (
                session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            ),
            write=False,
        )
        # when they commit a few hundred pages, twice, with a pause after each round
        rounds = []
        for _ in range(2):
            for _ in range(400):
                db.run_raw_sync(lambda tx: tx.execute(WRITE))
            time.sleep(1.5)
            rounds.append(_wal_bytes(path))
    finally:
        db.dispose()

    # then SQLite's own checkpoint is off on both kinds of blocking connection
    assert (blocking, in_session) == (0, 0)
    # and the checkpoint thread copied the WAL back: the second round reused it
    first, second = rounds
    assert first > 0
    assert second < first * 1.5, (first, second)
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 800


def test_an_in_memory_database_keeps_sqlite_own_checkpoints() -> None:
    # given a database in memory, which has no WAL and no checkpoint thread
    db = Database("sqlite://")
    try:
        setting = db.run_raw_sync(lambda tx: tx.scalar(Sql("PRAGMA wal_autocheckpoint")))
    finally:
        db.dispose()

    # then its one lane keeps SQLite's default
    assert setting == 1000


def test_only_the_serving_connection_keeps_its_savepoints_journal_in_memory(
    tmp_path: Path,
) -> None:
    # given a SQLite file served from the event loop and used by blocking calls (the CLI)
    db = Database(f"sqlite:///{tmp_path / 'journal.db'}")
    temp_store = Sql("PRAGMA temp_store")
    try:
        blocking = db.run_raw_sync(lambda tx: tx.scalar(temp_store), write=False)
        serving = asyncio.run(db.run_raw(lambda tx: tx.scalar(temp_store), write=False))
    finally:
        db.dispose()

    # then the group commit's savepoints copy pages in memory (2), not to a temporary file
    assert serving == 2
    # and the blocking connections, whose sweeps can be large, keep SQLite's default (0)
    assert blocking == 0


def test_the_checkpoint_thread_stops_with_the_database(tmp_path: Path) -> None:
    # given a database whose event loop has committed (which starts the thread)
    db = Database(f"sqlite:///{tmp_path / 'stopped.db'}")
    db.run_raw_sync(lambda tx: tx.execute(CREATE))
    asyncio.run(_commit_many(db, 3))
    thread = db._checkpointer._thread if db._checkpointer else None
    assert thread is not None
    assert thread.is_alive()

    # when the database is disposed of / then the thread has ended
    db.dispose()
    assert not thread.is_alive()


def test_the_request_log_line_is_the_json_object_the_formatter_writes() -> None:
    # given the log's formatter on a stream, and a request id
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pintuan.test.requests")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    token = request_id_var.set('req_"odd\\id')
    try:
        # when a request is logged the fast way and the general way
        log_request(logger, 'req_"odd\\id', "POST", '/v1/x/"{id}"', 201, 3.25)
        logger.info(
            "request",
            extra={"method": "POST", "path": '/v1/x/"{id}"', "status": 201, "duration_ms": 3.25},
        )
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    fast, general = (json.loads(line) for line in stream.getvalue().splitlines())

    # then both lines say the same, in the same order, the time included
    assert list(fast) == list(general)
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in general.items() if k != "ts"
    }
    assert fast["ts"].endswith("Z")
    assert fast["ts"][:19] == general["ts"][:19]


def test_no_request_line_is_built_when_info_is_off() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pintuan.test.quiet")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        log_request(logger, "req_1", "GET", "/healthz", 200, 0.1)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == ""


def test_the_line_written_straight_to_the_stream_is_the_recorded_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the logging this application configures, its stream captured
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(logs, "_ours", logs._ours)  # put back after the test
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logger = logging.getLogger("pintuan.test.direct")
    try:
        configure_logging("INFO")
        # when a request is logged while the line reaches that handler alone (straight to its
        # stream), and again while a second handler listens (through a record)
        log_request(logger, "req_1", "GET", "/healthz", 200, 0.5)
        other = io.StringIO()
        second = logging.StreamHandler(other)
        second.setFormatter(JsonFormatter())
        root.addHandler(second)
        log_request(logger, "req_2", "GET", "/healthz", 200, 0.5)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    direct, recorded = (json.loads(line) for line in stream.getvalue().splitlines())

    # then both lines say the same but for their id and time, and the second handler got its
    # line too
    assert list(direct) == list(recorded)
    assert {k: v for k, v in direct.items() if k not in ("ts", "request_id")} == {
        k: v for k, v in recorded.items() if k not in ("ts", "request_id")
    }
    assert (direct["request_id"], recorded["request_id"]) == ("req_1", "req_2")
    assert json.loads(other.getvalue())["request_id"] == "req_2"


class _CountingStream(io.StringIO):
    """A stream that counts the writes it is given."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_the_lines_of_one_loop_turn_go_out_in_one_write_in_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the logging this application configures, its stream counting its writes
    stream = _CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(logs, "_ours", logs._ours)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logger = logging.getLogger("pintuan.test.turns")
    seen: dict[str, object] = {}

    async def serve() -> None:
        # when three requests end in one turn of the event loop, then something else is logged
        for n in range(3):
            log_request(logger, f"req_{n}", "GET", "/healthz", 200, 0.5)
        seen["during the turn"] = (stream.getvalue(), stream.writes)
        logger.warning("after the requests")
        seen["after a record"] = len(stream.getvalue().splitlines())
        log_request(logger, "req_3", "GET", "/healthz", 200, 0.5)
        await asyncio.sleep(0)  # the turn ends
        seen["after the turn"] = stream.writes

    try:
        configure_logging("INFO")
        asyncio.run(serve())
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])

    # then nothing was written during the turn; the record sent the waiting lines first, in one
    # write; the line after it went out at the turn's end, so all four are there in order
    assert seen["during the turn"] == ("", 0)
    assert seen["after a record"] == 4
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("request_id", line["msg"]) for line in lines] == [
        "req_0",
        "req_1",
        "req_2",
        "after the requests",
        "req_3",
    ]
    assert seen["after the turn"] == 3  # the three lines, the record, the last line


def test_a_line_outside_an_event_loop_is_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(logs, "_ours", logs._ours)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO")
        log_request(logging.getLogger("pintuan.test.sync"), "req_1", "GET", "/healthz", 200, 0.5)
        assert (json.loads(stream.getvalue())["request_id"], stream.writes) == ("req_1", 1)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
