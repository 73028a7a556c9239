"""The read-your-writes marker: which requests must read the primary, and when a write's answer
marks its caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pintuan.config import Settings
from pintuan.kit.replica import READ_PRIMARY_COOKIE, ReadYourWritesMiddleware, _read_primary

NOW = 1_800_000_000.0


def _through(
    method: str, status: int = 200, cookie: str | None = None
) -> tuple[bool, list[tuple[bytes, bytes]]]:
    """Send one request through the middleware: whether the app read the primary, and the
    answer's headers."""
    seen: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(_read_primary.get())
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    headers = [(b"cookie", cookie.encode())] if cookie else []
    scope = {"type": "http", "method": method, "headers": headers}
    middleware = ReadYourWritesMiddleware(app, window=5.0, clock=lambda: NOW)
    asyncio.run(middleware(scope, receive, send))
    return seen[0], sent[0]["headers"]


def test_a_plain_read_may_use_the_replica_and_is_not_marked() -> None:
    primary, headers = _through("GET")
    assert (primary, headers) == (False, [])


def test_a_successful_write_reads_the_primary_and_marks_its_caller_for_the_window() -> None:
    primary, headers = _through("POST", 201)
    assert primary
    cookie = f"{READ_PRIMARY_COOKIE}={NOW + 5:.3f}; Max-Age=6; Path=/; HttpOnly; SameSite=Lax"
    assert headers == [(b"set-cookie", cookie.encode())]


def test_a_refused_write_reads_the_primary_but_marks_nobody() -> None:
    assert _through("POST", 409) == (True, [])


@pytest.mark.parametrize(
    ("cookie", "primary"),
    [
        (f"{READ_PRIMARY_COOKIE}={NOW + 1}", True),
        (f"other=1; {READ_PRIMARY_COOKIE}={NOW + 0.5}", True),
        (f"{READ_PRIMARY_COOKIE}={NOW - 1}", False),
        (f"{READ_PRIMARY_COOKIE}=soon", False),
        (f'{READ_PRIMARY_COOKIE}="', False),
    ],
)
def test_a_read_marked_until_a_later_instant_reads_the_primary(cookie: str, primary: bool) -> None:
    assert _through("GET", cookie=cookie) == (primary, [])


def test_a_replica_needs_postgresql_on_both_sides() -> None:
    with pytest.raises(ValueError, match="PINTUAN_DATABASE_REPLICA_URL"):
        Settings(database_url="sqlite:///x.db", database_replica_url="postgresql://r/db")
    with pytest.raises(ValueError, match="PINTUAN_DATABASE_REPLICA_URL"):
        Settings(database_url="postgresql://p/db", database_replica_url="sqlite:///r.db")


def test_the_lag_is_sampled_more_often_than_the_threshold_it_is_held_to() -> None:
    with pytest.raises(ValueError, match="PINTUAN_REPLICA_SAMPLE_SECONDS"):
        Settings(
            database_url="postgresql://p/db",
            database_replica_url="postgresql://r/db",
            replica_sample_seconds=5,
            replica_max_lag_seconds=5,
        )
    ok = Settings(database_url="postgresql://p/db", database_replica_url="postgresql://r/db")
    assert (ok.replica_sample_seconds, ok.replica_max_lag_seconds) == (1.0, 5.0)
