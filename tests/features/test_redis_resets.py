"""A Redis that resets its connections (a restart, a crash, a balancer dropping it) is a Redis
that failed: every use of it falls back to the database and none raises.

Under uvloop (``PINTUAN_EVENT_LOOP=uvloop``; the server's loop until 2026-12-05), a connection
the peer resets between its connect and its first write fails with uvloop's RuntimeError rather
than one of redis-py's errors; a burst of joins met it while a test restarted Redis. The peer
here is a real socket that accepts and resets each connection at once, so both kinds of failure
come, in proportions the timing decides."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvloop

from pintuan.config import Settings
from pintuan.kit import redislink
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import admission
from tests.conftest import make_settings

ATTEMPTS = 300


@pytest.fixture
def resetting_peer() -> Iterator[str]:
    """The URL of a TCP peer that accepts each connection and resets it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener closed: the test is over
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # a linger of zero sends a reset, not a goodbye

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0"
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=5)


@pytest.fixture
def settings(database_url: str, resetting_peer: str) -> Settings:
    return make_settings(database_url, redis_url=resetting_peer)


def on_uvloop(attempt: Callable[[], Awaitable[Any]]) -> list[Any]:
    async def attempts() -> list[Any]:
        return [await attempt() for _ in range(ATTEMPTS)]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(attempts())


def test_admission_stands_aside_every_time_a_reset_redis_fails(services: Services) -> None:
    async def admit() -> admission.Ticket:
        return await admission.admit(services, utc_now(), team_id="team_01ABSENT")

    assert set(on_uvloop(admit)) == {admission.STAND_ASIDE}


def test_the_in_flight_marker_and_the_counter_fall_back_every_time(services: Services) -> None:
    link = services.redis
    assert link is not None

    async def mark() -> bool:
        return await redislink.mark_in_flight(link, "key", "holder", timedelta(seconds=5))

    async def clear() -> None:
        await redislink.clear_in_flight(link, "key", "holder")

    async def count() -> tuple[int, Any] | None:
        return await redislink.count_in_window(link, "bucket", utc_now(), window_seconds=60)

    assert set(on_uvloop(mark)) == {True}  # the database's own claim decides
    assert set(on_uvloop(clear)) == {None}
    assert set(on_uvloop(count)) == {None}  # counted elsewhere
