"""Structured logs: one JSON object a line, with the request id where there is one."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"color_message"}


# The whole second of the last stamp written, and its text: a busy server writes many lines a
# second, and formatting the date is most of a stamp's cost.
_second: tuple[int, str] = (-1, "")


def utc_stamp(created: float) -> str:
    """``created`` (seconds since the epoch) as ``2026-12-03T21:11:09.123456Z``."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1_000_000):06d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = getattr(record, "preformatted", None)
        if isinstance(line, str) and not record.exc_info:
            return line
        entry: dict[str, Any] = {
            "ts": utc_stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "preformatted"}
        )
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _LineHandler(logging.StreamHandler[Any]):
    """The stream handler ``configure_logging`` installs: request lines waiting to be written
    (see :func:`log_request`) go out before any record it writes, so the stream keeps the order
    in which things were logged."""

    def emit(self, record: logging.LogRecord) -> None:
        if _waiting:
            write_waiting_lines()
        super().emit(record)

    def flush(self) -> None:
        if _waiting:
            write_waiting_lines()
        super().flush()


# The handler ``configure_logging`` installs on the root logger. While it is the only one a
# request's line reaches, ``log_request`` writes the line to its stream itself.
_ours: logging.StreamHandler[Any] | None = None
# Request lines made in this turn of the event loop, written together at its end (or before
# anything else the handler writes): one write for all the requests a turn finished.
_waiting: list[str] = []


def write_waiting_lines() -> None:
    """Write the request lines waiting for the end of the loop's turn (none: nothing)."""
    handler = _ours
    if handler is None:
        _waiting.clear()
        return
    with handler.lock or contextlib.nullcontext():
        # Only the lines there now: the loop's thread may add more meanwhile, and they wait
        # for the write its turn has scheduled.
        count = len(_waiting)
        if not count:
            return
        text = "".join(_waiting[:count])
        del _waiting[:count]
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:  # as the handler itself would: reported, never raised
            handler.handleError(logging.makeLogRecord({"msg": "request lines", "args": None}))


def configure_logging(level: str = "INFO") -> None:
    global _ours
    if _ours is None:
        atexit.register(write_waiting_lines)  # what the last turn left, at the latest
    write_waiting_lines()
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _ours = handler
    root.setLevel(level.upper())
    # No line names a thread or a process, and looking them up is a third of what making a
    # record costs (the request log makes one per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's own access log would duplicate ours; without a handler of its own, and not
    # passing its records on, uvicorn does not even build them.
    access = logging.getLogger("uvicorn.access")
    access.disabled = True
    access.propagate = False


class _RequestRecord(logging.LogRecord):
    method: str
    path: str
    status: int
    duration_ms: float
    preformatted: str


def log_request(
    logger: logging.Logger,
    request_id: str,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
) -> None:
    """The one line a request leaves (at INFO): built as text once, the same JSON object
    :class:`JsonFormatter` writes, without the general path's stack walk for the caller and its
    dictionary of extra fields. While the line would reach only the handler
    ``configure_logging`` installed, it is written to that handler's stream directly, without a
    record (a third of what a request to ``/healthz`` cost); otherwise it goes through a record
    that also keeps the fields, for other handlers.

    On an event loop, a line written directly waits for the end of the loop's turn, to go out
    in one write with the other lines of that turn: a busy server finishes dozens of requests
    a turn, and makes one write for them instead of one each. A turn lasts milliseconds at
    most, and anything else the handler writes sends the waiting lines first."""
    if not logger.isEnabledFor(logging.INFO):
        return
    created = time.time()
    line = (
        f'{{"ts": "{utc_stamp(created)}", "level": "info", '
        f'"logger": {_json_string(logger.name)}, "msg": "request", '
        f'"request_id": {_json_string(request_id)}, "method": {_json_string(method)}, '
        f'"path": {_json_string(path)}, "status": {status}, "duration_ms": {duration_ms}}}'
    )
    handler = _ours
    if handler is not None and _only_ours(logger, handler):
        if _wait_for_turn_end(line + handler.terminator):
            return
        try:
            with handler.lock or contextlib.nullcontext():
                if _waiting:
                    write_waiting_lines()
                handler.stream.write(line + handler.terminator)
                handler.stream.flush()
        except Exception:  # as the handler itself would: reported, never raised
            handler.handleError(
                _request_record(logger, created, method, path, status, duration_ms, line)
            )
        return
    logger.handle(_request_record(logger, created, method, path, status, duration_ms, line))


def _wait_for_turn_end(line: str) -> bool:
    """Keep ``line`` for the end of the running loop's turn; False outside a running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    if not _waiting:
        loop.call_soon(write_waiting_lines)
    _waiting.append(line)
    return True


def _request_record(
    logger: logging.Logger,
    created: float,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    line: str,
) -> _RequestRecord:
    record = _RequestRecord(logger.name, logging.INFO, "", 0, "request", None, None)
    record.created = created
    record.method = method
    record.path = path
    record.status = status
    record.duration_ms = duration_ms
    record.preformatted = line
    return record


def _only_ours(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether an INFO record of ``logger`` reaches ``handler`` alone, with no filter on the
    way: no logger up to the root has a handler or filter, and the root has ``handler`` only."""
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return False
        if current.handlers:
            return (
                current.parent is None
                and len(current.handlers) == 1
                and current.handlers[0] is handler
                and not handler.filters
                and handler.level <= logging.INFO
            )
        if not current.propagate:
            return False
        current = current.parent
    return False


def logged_path(scope: Mapping[str, Any]) -> str:
    """The path to write in a log: the matched route's template (``/pay/{token}``), so that
    capability tokens and other secrets in paths never reach the logs; the bare path when no
    route matched (nothing there grants anything)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else str(scope.get("path", ""))
