"""Killing an API process (SIGKILL) in the middle of a burst of joins and payments, then
starting another: the clients that lost their connection send the same request again with the
same ``Idempotency-Key``, and afterwards the invariants hold and the audit is clean.

No client may get a 5xx other than a 503 with ``Retry-After``; requests to the killed process
fail to connect or lose their answer, which is what a client sees of a crash, and they are
counted apart. A transaction cut by the kill is rolled back by the database, so a retry either
replays the stored answer (it had committed) or does the work for the first time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pintuan.audit.service import audit_database
from pintuan.kit.rawsql import RawTx
from pintuan.kit.serving import LOOPBACK, Server
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.concurrency.cluster import Cluster, create_shoppers, running_cluster
from tests.factories import create_deal, create_merchant

pytestmark = pytest.mark.slow

TEAMS = 30
TEAM_SIZE = 3
KILL_AFTER_ANSWERS = 20  # of the burst's, so that the killed process has requests in flight
TIMEOUT = 30.0
RETRY_IN_PROGRESS = 3.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str
    key: str
    body: Any = None


@dataclass(frozen=True)
class Answer:
    request: Request
    status: int | None  # None: the connection failed or the answer never came
    headers: dict[str, str]
    body: Any


async def send(port: int, request: Request) -> Answer:
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                return await _exchange(reader, writer, request)
            finally:
                writer.close()
    except (OSError, asyncio.IncompleteReadError):
        return Answer(request, None, {}, None)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
) -> Answer:
    body = json.dumps(request.body if request.body is not None else {}).encode()
    head = [
        f"{request.method} {request.path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {request.token}",
        f"Idempotency-Key: {request.key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(request, int(lines[0].split()[1]), headers, json.loads(raw) if raw else None)


async def burst_with_a_kill(cluster: Cluster, requests: list[Request]) -> list[Answer]:
    """Send every request at once, spread over the servers, and SIGKILL the first server once
    ``KILL_AFTER_ANSWERS`` answers have come back."""
    answered = asyncio.Event()
    count = 0

    async def one(i: int, request: Request) -> Answer:
        nonlocal count
        answer = await send(cluster.servers[i % len(cluster.servers)].port, request)
        count += 1
        if count >= KILL_AFTER_ANSWERS:
            answered.set()
        return answer

    async def kill(server: Server) -> None:
        await answered.wait()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)

    killer = asyncio.create_task(kill(cluster.servers[0]))
    answers = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    await killer
    return list(answers)


def bad_server_errors(answers: list[Answer]) -> list[Answer]:
    """5xx answers other than a 503 that says when to come back."""
    return [
        a
        for a in answers
        if a.status is not None
        and a.status >= 500
        and not (a.status == 503 and "retry-after" in a.headers)
    ]


def test_a_server_killed_mid_burst_loses_no_request_its_client_repeats(
    services: Services, tmp_path: Path
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=TEAM_SIZE, stock=1000)
    leaders = create_shoppers(services, TEAMS)
    joiners = create_shoppers(services, TEAMS * (TEAM_SIZE - 1))

    def start(tx: RawTx) -> list[tuple[str, str]]:
        hold = timedelta(minutes=10)
        made = [teams.start_team(tx, s.user_id, deal.id, utc_now(), hold=hold) for s in leaders]
        return [(m.team_id, m.seat.id) for m in made]

    started = services.db.run_raw_sync(start)
    burst = [
        Request("POST", f"/v1/teams/{started[n % TEAMS][0]}/seats", s.token, f"join-{n}")
        for n, s in enumerate(joiners)
    ] + [
        Request("POST", f"/v1/seats/{seat}/payments", s.token, f"pay-{n}")
        for n, (s, (_, seat)) in enumerate(zip(leaders, started, strict=True))
    ]

    for folder in ("first", "again"):
        (tmp_path / folder).mkdir()
    began = time.monotonic()
    with running_cluster(services.settings.database_url, 2, tmp_path / "first") as cluster:
        first = asyncio.run(burst_with_a_kill(cluster, burst))
    lost = [a.request for a in first if a.status is None]
    with running_cluster(services.settings.database_url, 1, tmp_path / "again") as restarted:
        port = restarted.servers[0].port
        retried = asyncio.run(_repeat(port, lost))
        # A key whose claim committed before the kill cut its work off stays "in progress":
        # the client was told to retry shortly, and did, for RETRY_IN_PROGRESS.
        stuck = [a for a in retried if _code(a) == "idempotency_in_progress"]
        # Everyone now pays for the seat they hold, and the sandbox says the money came.
        held = services.db.run_sync(
            lambda s: list(s.execute(select(Seat.id, Seat.user_id).where(Seat.status == "held"))),
            write=False,
        )
        tokens = {s.user_id: s.token for s in [*leaders, *joiners]}
        pay = [
            Request("POST", f"/v1/seats/{seat}/payments", tokens[user], f"pay-{seat}")
            for seat, user in held
        ]
        payments = asyncio.run(_gather(port, pay))
        succeed = [
            Request(
                "POST",
                f"/v1/test_helpers/payments/{a.body['id']}/succeed",
                a.request.token,
                f"ok-{a.body['id']}",
            )
            for a in payments
            if a.status == 201
        ]
        paid = asyncio.run(_gather(port, succeed))
    Worker(services).run_until_idle()
    converged = time.monotonic() - began

    answers = [*first, *retried, *payments, *paid]
    assert lost, "the kill came after every answer: nothing was in flight"
    assert all(a.status is not None for a in [*retried, *payments, *paid])
    assert bad_server_errors(answers) == []
    assert {a.status for a in retried} <= {200, 201, 409}, Counter(a.status for a in retried)
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    team_statuses = services.db.run_sync(
        lambda s: Counter(s.scalars(select(Team.status))), write=False
    )
    # Every team fills and succeeds but those a stuck key kept a joiner out of.
    # (A stuck payment keeps no one out: the shopper pays again with a new key, and the open
    # checkout of the first one is reused.)
    short = {a.request.path.split("/")[3] for a in stuck if a.request.path.startswith("/v1/teams/")}
    assert team_statuses == +Counter(succeeded=TEAMS - len(short), forming=len(short))
    print(
        f"\nserver kill: {len(burst)} requests in the burst over 2 processes, 1 killed after "
        f"{KILL_AFTER_ANSWERS} answers; {len(lost)} lost their connection and were repeated "
        f"with their key ({dict(Counter(a.status for a in retried))}); then {len(pay)} payments "
        f"and {len(succeed)} confirmations; statuses {dict(Counter(a.status for a in answers))};"
        f" {len(stuck)} repeats still refused as in progress after {RETRY_IN_PROGRESS} s; "
        f"teams {dict(team_statuses)}, audit clean, {converged:.1f} s in all"
    )


async def _gather(port: int, requests: list[Request]) -> list[Answer]:
    return list(await asyncio.gather(*(send(port, r) for r in requests)))


def _code(answer: Answer) -> str | None:
    return answer.body.get("code") if isinstance(answer.body, dict) else None


async def _repeat(port: int, requests: list[Request]) -> list[Answer]:
    """Send each request again, as its client would after losing the connection, and again
    while the answer is "still in progress, retry shortly", for up to RETRY_IN_PROGRESS s."""

    async def until_done(request: Request) -> Answer:
        deadline = time.monotonic() + RETRY_IN_PROGRESS
        while True:
            answer = await send(port, request)
            if _code(answer) != "idempotency_in_progress" or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.5)

    return list(await asyncio.gather(*(until_done(r) for r in requests)))
