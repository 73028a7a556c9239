"""Real API server processes sharing one database, and requests fired at all of them at once.

Inside one process requests cannot race on SQLite: every unit of work runs synchronously on the
event loop. So these tests start several server processes on loopback against the test database,
as production runs several API processes behind a load balancer, and fire requests at them
concurrently, spread round-robin over the processes.

Each server process runs ``pintuan serve --no-worker`` (the CLI's own function, with its
settings from ``PINTUAN_*`` variables). The processes are forked from a multiprocessing fork
server that has imported the application once: importing it costs two seconds of CPU per
process, which three processes per backend on a two-core machine would otherwise pay in turn.
Starting, waiting for and stopping them is ``pintuan.kit.serving``'s, shared with the browser
tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pintuan.accounts import service as accounts
from pintuan.domain.roles import Principal, Role
from pintuan.kit.serving import LOOPBACK, Server, ServerDidNotStart, start_forked, stop_all
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.factories import PASSWORD, Account

REQUEST_TIMEOUT = 60.0
WARM_UP = ("/v1/deals", "/v1/deals/deal_none", "/v1/teams/team_none", "/v1/deals/deal_none/teams")
_shoppers = itertools.count(1)

_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(
    [
        "pintuan.app",
        "pintuan.cli",
        "pintuan.kit.logs",
        "pintuan.kit.serving",
        "uvicorn",
        "uvicorn.loops.asyncio",
        "uvicorn.protocols.http.httptools_impl",
        __name__,
    ]
)


@dataclass(frozen=True)
class Call:
    """One request: who sends it (an API token, or nobody) to which path, with what body (JSON,
    or exact bytes with their own headers, as a provider's signed webhook comes)."""

    method: str
    path: str
    token: str | None = None
    json: Any = None
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    call: Call
    server: int
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def outcome(self) -> str:
        """``"201"`` for a success, ``"409 team_full"`` for a refusal: what tests count."""
        return str(self.status) if self.status < 400 else f"{self.status} {self.code}"


class Cluster:
    """Several API processes on one database; requests are spread over them round-robin."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self.servers = list(servers)

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def logs(self) -> str:
        """The tail of every server's log, for failure messages."""
        return "\n".join(
            f"--- {s.url} ---\n{s.log.read_text(errors='replace')[-3000:] if s.log else ''}"
            for s in self.servers
        )

    def fire(self, calls: Sequence[Call]) -> list[Reply]:
        """Send every call at once; the replies come back in the order of the calls."""
        return asyncio.run(self.fire_async(calls))

    async def fire_async(
        self, calls: Sequence[Call], at: Sequence[datetime] | None = None
    ) -> list[Reply]:
        """Send the calls concurrently, spread over the servers in turn: all at once, or each at
        its instant of application time when ``at`` gives one.

        Each call gets its own connection, opened before any call is sent, so the burst is only
        requests. The client is a few lines of HTTP/1.1 on asyncio streams: httpx spends 5 to
        15 ms of CPU per request in a burst this size, which would make these tests measure the
        client rather than race the servers.
        """
        servers = [self.servers[i % len(self.servers)] for i in range(len(calls))]
        connections = await asyncio.gather(
            *(asyncio.open_connection(LOOPBACK, s.port) for s in servers)
        )

        async def send(i: int, call: Call) -> Reply:
            if at is not None:
                await _sleep_until(at[i])
            async with asyncio.timeout(REQUEST_TIMEOUT):  # a hung server fails, not hangs, the test
                status, body = await _exchange(*connections[i], call)
            return Reply(call, i % len(self.servers), status, body)

        try:
            return list(await asyncio.gather(*(send(i, c) for i, c in enumerate(calls))))
        finally:
            for _, writer in connections:
                writer.close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call: Call
) -> tuple[int, Any]:
    """One HTTP/1.1 request and its response (the app always answers with a Content-Length)."""
    body = call.content or b""
    head = [f"{call.method} {call.path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in call.headers]
    if call.token:
        head.append(f"Authorization: Bearer {call.token}")
    if call.json is not None:
        body = json.dumps(call.json).encode()
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    assert "content-length" in headers, f"unexpected response framing: {lines}"
    raw = await reader.readexactly(int(headers["content-length"]))
    try:
        return int(lines[0].split()[1]), json.loads(raw)
    except ValueError:
        return int(lines[0].split()[1]), raw.decode(errors="replace")


async def _sleep_until(instant: datetime) -> None:
    while (left := (instant - utc_now()).total_seconds()) > 0:
        await asyncio.sleep(left)


def outcomes(replies: Sequence[Reply]) -> Counter[str]:
    return Counter(r.outcome for r in replies)


def assert_no_server_errors(cluster: Cluster, replies: Sequence[Reply]) -> None:
    errors = [r for r in replies if r.status >= 500]
    assert not errors, f"{len(errors)} server errors, first: {errors[0]}\n{cluster.logs()}"


@contextmanager
def running_cluster(
    database_url: str, count: int, workdir: Path, **settings: object
) -> Iterator[Cluster]:
    """``count`` API processes on ``database_url``, ready to serve; ``settings`` become
    ``PINTUAN_*`` variables. They are always stopped on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
    env.update(
        PINTUAN_DATABASE_URL=database_url,
        PINTUAN_ENV="test",
        PINTUAN_PASSWORD_TIME_COST="1",
        PINTUAN_PASSWORD_MEMORY_KIB="1024",
        PINTUAN_LOG_LEVEL="WARNING",
        # These servers sweep nothing (the tests run the worker, with the clock moved by hours):
        # ready means their database answers, whatever due work waits for the test's worker.
        PINTUAN_READY_MAX_LAG_SECONDS=str(365 * 24 * 3600),
    )
    env.update({f"PINTUAN_{name.upper()}": str(value) for name, value in settings.items()})
    servers: list[Server] = []
    try:
        for n in range(count):
            servers.append(_start(env, workdir, n))
        for n, server in enumerate(servers):
            try:
                server.wait_ready()
            except ServerDidNotStart:
                # Most likely its port was taken meanwhile: once more, on another port.
                server.stop()
                servers[n] = _start(env, workdir, n)
                servers[n].wait_ready()
        cluster = Cluster(servers)
        # First requests are slow (the ORM configures its mappers, statements are compiled):
        # have them now, not during a race timed to the millisecond.
        asyncio.run(cluster.fire_async([Call("GET", p) for p in WARM_UP for _ in servers]))
        yield cluster
    finally:
        stop_all(servers)


def _start(env: dict[str, str], workdir: Path, n: int) -> Server:
    return start_forked(_FORKS, serve, env=env, cwd=workdir, log=workdir / f"server-{n}.log")


def serve(port: int) -> None:
    """The server process: ``pintuan serve --no-worker --port PORT``, with the settings the
    cluster's ``PINTUAN_*`` variables give."""
    from pintuan.cli import serve as pintuan_serve
    from pintuan.config import get_settings

    get_settings.cache_clear()
    pintuan_serve(host=LOOPBACK, port=port, worker=False)


def create_shoppers(services: Services, count: int) -> list[Account]:
    """``count`` shoppers with API tokens, made in one transaction with one password hash (the
    factory's one-by-one accounts cost a hash and a transaction each: seconds for hundreds)."""
    password_hash = services.passwords.hash(PASSWORD)

    def work(session: Any) -> list[Account]:
        made = []
        for _ in range(count):
            n = next(_shoppers)
            user = accounts.create_user(
                session,
                email=f"racer{n}@example.com",
                password_hash=password_hash,
                display_name=f"Racer {n}",
            )
            issued = accounts.issue_api_token(session, user.id, "concurrency tests")
            principal = Principal(
                user.id, Role.SHOPPER, user.display_name, "en", "UTC", frozenset()
            )
            made.append(Account(user.id, user.email, issued.secret, principal))
        return made

    return services.db.run_sync(work)
