"""Password hashing with argon2id. Slow on purpose: callers run it off the event loop.

Each hash takes ``memory_kib`` of memory (64 MiB by default), so a flood of log-ins could take
all of it. The request paths therefore hash through :meth:`Passwords.hash_in_turn` and
:meth:`Passwords.verify_in_turn`: at most ``concurrency`` hashes at once in this process (memory
is a per-process resource, so a per-process limit is the honest one); a caller that finds no
free slot within ``wait_seconds`` is answered 503 ``busy`` with ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from pintuan.errors import AppError

MIN_PASSWORD_LENGTH = 10
# How often a waiting caller looks for a free slot; hashes take tens of milliseconds.
_POLL_SECONDS = 0.01

T = TypeVar("T")


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)


class PasswordsBusy(AppError):
    status = 503
    code = "busy"
    title = "Busy"

    def __init__(self) -> None:
        super().__init__(
            "The server is checking many passwords at the moment; try again in a second.",
            headers={"Retry-After": "1"},
            extra={"retry_after_seconds": 1},
        )


class Passwords:
    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        concurrency: int = 2,
        wait_seconds: float = 2.0,
    ) -> None:
        self._hasher = _hasher(time_cost, memory_kib)
        # A thread semaphore rather than an asyncio one: it belongs to the process, not to
        # one event loop, and the slot is given back on the worker thread's side of the call.
        self._slots = threading.BoundedSemaphore(concurrency)
        self.wait_seconds = wait_seconds
        # Verified when the account does not exist, so both paths take the same time.
        self._decoy = self._hasher.hash("decoy password for unknown accounts")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    async def hash_in_turn(self, password: str) -> str:
        """:meth:`hash` off the event loop, within this process's hashing limit."""
        return await self._in_turn(self.hash, password)

    async def verify_in_turn(self, password_hash: str | None, password: str) -> bool:
        """:meth:`verify` off the event loop, within this process's hashing limit."""
        return await self._in_turn(lambda: self.verify(password_hash, password))

    async def _in_turn(self, work: Callable[..., T], *args: object) -> T:
        deadline = time.monotonic() + self.wait_seconds
        while not self._slots.acquire(blocking=False):
            if time.monotonic() >= deadline:
                raise PasswordsBusy
            await anyio.sleep(_POLL_SECONDS)
        try:
            return await anyio.to_thread.run_sync(lambda: work(*args))
        finally:
            self._slots.release()
