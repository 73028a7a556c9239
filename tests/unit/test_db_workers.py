"""The threads PostgreSQL's work hops to: the caller's context goes with each call, no more
calls run at once than the pool has connections, and a call queued behind them is left out
when its caller is cancelled before it starts."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

from pintuan.kit.db import _Workers

REQUEST = contextvars.ContextVar("request", default="none")


def test_the_callers_context_goes_with_the_call() -> None:
    async def main() -> list[str]:
        workers = _Workers(2)

        async def one(name: str) -> str:
            REQUEST.set(name)
            return await workers.run(
                lambda: f"{REQUEST.get()} in {threading.current_thread().name}"
            )

        return await asyncio.gather(*(one(f"r{n}") for n in range(4)))

    answers = asyncio.run(main())
    assert [a.split(" in ")[0] for a in answers] == ["r0", "r1", "r2", "r3"]
    assert all(" in pintuan-db" in a for a in answers)


def test_no_more_calls_run_at_once_than_the_pool_holds() -> None:
    running, most, lock = 0, 0, threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async def main() -> None:
        workers = _Workers(3)
        await asyncio.gather(*(workers.run(call) for _ in range(12)))

    asyncio.run(main())
    assert most == 3


def test_a_call_still_queued_is_left_out_when_its_caller_is_cancelled() -> None:
    started: list[str] = []
    release = threading.Event()

    def call(name: str) -> None:
        started.append(name)
        release.wait(5)

    async def main() -> None:
        workers = _Workers(1)
        first = asyncio.ensure_future(workers.run(lambda: call("first")))
        queued = asyncio.ensure_future(workers.run(lambda: call("queued")))
        await asyncio.sleep(0.05)
        queued.cancel()
        await asyncio.sleep(0.01)
        release.set()
        await first
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert started == ["first"]
