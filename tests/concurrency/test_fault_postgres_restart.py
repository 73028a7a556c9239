"""Restarting PostgreSQL under a stream of joins: requests in flight while it is down answer 503
with ``Retry-After`` (never a bare 500), the servers reconnect by themselves, the clients'
repeats with the same key go through, and the audit is clean.

The test starts a PostgreSQL cluster of its own (``initdb`` in a temporary directory, as the
``postgres`` user, on a free port) and crashes it with ``pg_ctl restart -m immediate``: the
shared test server is never touched. Without PostgreSQL's binaries, or rights to run them as
``postgres``, it is skipped.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pintuan.audit.service import audit_database
from pintuan.bootstrap import build_services
from pintuan.kit.migrations import upgrade
from pintuan.kit.rawsql import RawTx
from pintuan.kit.serving import free_port
from pintuan.kit.time import utc_now
from pintuan.teams import service as teams
from pintuan.teams.models import Seat
from tests.concurrency.cluster import create_shoppers, running_cluster
from tests.concurrency.test_fault_server_kill import Answer, Request, bad_server_errors, send
from tests.conftest import make_settings
from tests.factories import create_deal, create_merchant

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TEAMS = 20
WAVES = 12  # waves of joins, one every WAVE_GAP; PostgreSQL crashes after the third
WAVE_GAP = 0.15
BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(*command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - PostgreSQL's own tools on our own directory
        ["runuser", "-u", "postgres", "--", *command],  # noqa: S607 - found on PATH, as in a shell
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[tuple[str, list[str]]]:
    """A PostgreSQL cluster of this test's own: its URL and the command that crashes and
    restarts it."""
    if not BINARIES or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's binaries and root to run them as the postgres user")
    bin_dir = BINARIES[-1]
    home = Path(tempfile.mkdtemp(prefix="pintuan-pg-"))
    shutil.chown(home, "postgres")
    data, port = home / "data", free_port()
    made = _as_postgres(f"{bin_dir}/initdb", "-D", str(data), "--auth=trust", "-U", "postgres")
    if made.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"initdb failed: {made.stderr.decode(errors='replace')[-300:]}")
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [f"{bin_dir}/pg_ctl", "-D", str(data), "-l", str(home / "log"), "-w"]
    started = _as_postgres(*pg_ctl, "-o", options, "start")
    assert started.returncode == 0, (home / "log").read_text()
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
            [*pg_ctl, "-m", "immediate", "-o", options, "restart"],
        )
    finally:
        _as_postgres(*pg_ctl, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_a_postgres_restart_under_load_answers_503_and_loses_nothing(
    private_postgres: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, restart = private_postgres
    upgrade(url)
    services = build_services(make_settings(url))
    deal = create_deal(services.db, create_merchant(services.db), team_size=100, stock=10_000)
    leaders = create_shoppers(services, TEAMS)
    joiners = create_shoppers(services, TEAMS * WAVES)

    def start(tx: RawTx) -> list[str]:
        hold = timedelta(minutes=10)
        return [
            teams.start_team(tx, s.user_id, deal.id, utc_now(), hold=hold).team_id for s in leaders
        ]

    team_ids = services.db.run_raw_sync(start)
    waves = [
        [
            Request("POST", f"/v1/teams/{team_ids[n]}/seats", s.token, f"join-{w}-{n}")
            for n, s in enumerate(joiners[w * TEAMS : (w + 1) * TEAMS])
        ]
        for w in range(WAVES)
    ]

    async def stream(ports: list[int]) -> tuple[list[Answer], float]:
        async def wave(w: int) -> list[Answer]:
            await asyncio.sleep(w * WAVE_GAP)
            return list(
                await asyncio.gather(
                    *(send(ports[i % len(ports)], r) for i, r in enumerate(waves[w]))
                )
            )

        async def crash() -> float:
            await asyncio.sleep(3 * WAVE_GAP)
            began = time.monotonic()
            done = await asyncio.to_thread(_as_postgres, *restart)
            assert done.returncode == 0, done.stderr
            return time.monotonic() - began

        *answers, down = await asyncio.gather(*(wave(w) for w in range(WAVES)), crash())
        return [a for batch in answers for a in batch], down

    (tmp_path / "servers").mkdir()
    with running_cluster(url, 2, tmp_path / "servers") as cluster:
        ports = [s.port for s in cluster.servers]
        answers, down = asyncio.run(stream(ports))
        refused = [a.request for a in answers if a.status is None or a.status == 503]
        repeats: list[Answer] = []
        for _ in range(10):  # as clients would: again, after the Retry-After
            if not refused:
                break
            time.sleep(1)
            repeats = [*repeats, *(again := asyncio.run(_all(ports[0], refused)))]
            refused = [a.request for a in again if a.status is None or a.status >= 500]

    statuses = Counter(a.status for a in answers)
    assert bad_server_errors([*answers, *repeats]) == [], statuses
    assert statuses[503] > 0 or statuses[None] > 0, "the restart fell between requests"
    assert refused == []
    joined = {a.request.key for a in [*answers, *repeats] if a.status == 201}
    held = services.db.run_sync(
        lambda s: s.scalar(select(func.count()).where(Seat.status == "held")), write=False
    )
    assert held == TEAMS + len(joined)  # each join answered 201 holds its seat, no other does
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    services.db.dispose()
    print(
        f"\npostgres restart: {sum(map(len, waves))} joins in {WAVES} waves over 2 processes; "
        f"PostgreSQL down and back in {down:.1f} s; answers {dict(statuses)}; "
        f"{len(repeats)} repeats ({dict(Counter(_outcome(a) for a in repeats))}); audit clean"
    )


def _outcome(answer: Answer) -> str:
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    return f"{answer.status} {code}" if code else str(answer.status)


async def _all(port: int, requests: list[Request]) -> list[Answer]:
    return list(await asyncio.gather(*(send(port, r) for r in requests)))
