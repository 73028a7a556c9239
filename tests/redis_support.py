"""Redis for the tests: the suite's own instance (``PINTUAN_TEST_REDIS_URL``, which
``scripts/test-up.sh`` starts), and private redis-server processes for the tests that stop and
start one.

Without ``PINTUAN_TEST_REDIS_URL`` the Redis tests are skipped, saying why; with ``CI=true``
they fail instead, as a missing PostgreSQL would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import make_url

from pintuan.kit.serving import free_port
from tests.conftest import worker_number


def _own_number(url: str | None) -> str | None:
    """In a parallel run each process takes the database number of its own worker's."""
    if url is None or not worker_number():
        return url
    return make_url(url).set(database=str(worker_number())).render_as_string(hide_password=False)


REDIS_URL = _own_number(os.environ.get("PINTUAN_TEST_REDIS_URL"))


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: Redis tests may not be skipped)")
    pytest.skip(what)


@pytest.fixture
def redis_url() -> str:
    """The suite's Redis, emptied before each test."""
    if not REDIS_URL:
        _missing("PINTUAN_TEST_REDIS_URL is not set (see scripts/redis-up.sh)")
    assert REDIS_URL is not None
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


@dataclass
class OwnRedis:
    """A redis-server process of this test's own, on a free port, that it may stop and start."""

    binary: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (redis-server from PATH, fixed arguments)
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=log,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        """Kill the process outright, as a crash would: nothing is saved."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("no redis-server on PATH (apt-get install redis-server)")
    assert binary is not None
    server = OwnRedis(binary, free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
