"""Benchmark harness: throughput and latency of reads, joins and payment confirmations, set
against ``/healthz``, a bare reference implementation of the join and duplicate deliveries of
the same notifications.

Run it with ``make bench`` (options: ``.venv/bin/python bench/run.py --help``). Each scenario is
driven with 64 keep-alive connections for 10 s, after a 2 s warm-up whose numbers are thrown away.
The load comes from ``wrk`` (2 threads) when it is on PATH, otherwise from a small asyncio + httpx
generator in this file; the output says which. The table goes to stdout, the same figures as JSON
to ``var/bench-results.json``. ``--suite reads``, ``--suite joins`` or ``--suite payments`` runs
one part (default ``all``: about five and a half minutes without PostgreSQL on a busy 2-core
machine, more with it).

What runs, all on loopback, each server a process of its own started here
--------------------------------------------------------------------------
* **Pintuan on SQLite** (``pintuan serve --no-worker``, one process), three times: one on a
  fresh database holding the demo catalogue for ``/healthz`` and the reads, one on a database
  seeded for the joins and one seeded for the payments, so that no suite changes what another
  measures.
* **The bare reference** (``bench/reference_app.py``, suite ``joins``): a minimal FastAPI app on
  the stdlib ``sqlite3`` driver doing only the four statements of DESIGN.md's join; no
  idempotency, outbox, token lookup or logging. Served like Pintuan (uvicorn, uvloop, httptools).
* **Pintuan on PostgreSQL** (suites ``joins`` and ``payments``, only when
  ``PINTUAN_BENCH_POSTGRES_URL`` is set, e.g.
  ``postgresql+psycopg://pintuan:pintuan@127.0.0.1:5432/pintuan_bench``; that database is
  emptied and migrated first, then seeded for both): ``--postgres-servers`` processes
  (default 2), since each process runs its event loop on one core, each with Pintuan's default
  pool of database connections (``--postgres-pool-size`` sets ``PINTUAN_DB_POOL_SIZE``). wrk
  gives each server its own thread and an equal share of the connections, as a balancer would
  share them out.

The servers run without the in-process worker (``--worker`` runs it), so the outbox the joins
fill is not dispatched during the run: the figures are the request path alone. (With it, the
worker's polling may also confirm seeded payments whose checkout is older than its first poll.)

The joins
---------
Seeding (``bench/seed_joins.py``, through Pintuan's services) gives each Pintuan database 20,000
shoppers with API tokens, 1,000 team leaders, 100 live "spread" deals and one live "hot" deal,
all with stock and per-user limits that never refuse a join. Before any clock, every join
scenario has the leaders start 1,000 fresh teams of size 100 through ``POST /v1/deals/{id}/teams``
(so no scenario runs into another's seats). Request n is then ``POST /v1/teams/{team}/seats`` by
shopper ``s = n mod 20,000`` to team ``(s + n div 20,000) mod 1,000``: every request is a
different (team, shopper) pair, consecutive requests go to different teams, and a team fills
(99 places) only after about 99,000 requests, far beyond a run.

* **(a) spread**: the 1,000 teams belong to 100 deals round-robin, so the joins in flight touch
  different team rows and (mostly) different deal rows.
* **(b) one hot deal**: the 1,000 teams all belong to one deal, so every join updates the same
  deal row (stock). On SQLite, which has one writer anyway, (a) and (b) should cost the same; on
  PostgreSQL (b) shows what waiting for that one row lock costs.

Each join carries an ``Idempotency-Key`` (unique per request), as the API asks clients to send
with every POST; ``join (a), no Idempotency-Key`` measures the same join without it. The
reference is sent byte for byte the same requests (it ignores the key) against its own tables of
the same shape, and ``vs ref`` / ``p99 vs ref`` divide Pintuan's figures by the reference's in
the same run.

The payments
------------
What a payment provider's confirmation costs, through the path every provider's notification
takes: ``POST /v1/webhooks/sandbox`` verifies the sandbox's signature, stores the event once in
the inbox, marks the payment authorised, writes its ledger journal and marks the seat paid, the
last seat of a team also succeeding the team and scheduling its captures.

Seeding (``bench/seed_payments.py``: seats through the engine's join, one payment through the
payment services and the sandbox, the others copied from it in bulk) gives the database held
seats in teams of ``PAYMENT_TEAM_SIZE`` (3) over ``PAYMENT_DEALS`` (100) live deals, each seat
with an open sandbox payment whose checkout the shopper has completed at the sandbox, and lists
each payment's ``payment.authorized`` notification, team by team. There are as many as wrk's
pools can take (``PAYMENT_RATE_CEILING`` per second of warm-up and of run, 3,000, above what a
server can reach here) plus ``PREDELIVERED`` (900): 36,900 with the default durations. Seats
are held for hours, not the product's ten minutes, so that none has expired by the time its
notification comes.

The notifications are signed right before the run that sends them (wrk's pool is rendered just
before each of its runs; the httpx generator signs each request as it sends it), so the sandbox's
5-minute tolerance of the signature's timestamp is never at stake: ``--duration`` and
``--warmup`` are refused above ``LONGEST_SIGNED_RUN_SECONDS`` (240) with this suite. The body
of each notification is fixed at seeding; only the signature header is made anew, as a provider
does when it retries.

* **duplicate delivery**: before the clocks, the first 900 notifications are delivered once
  through the API (each must be taken as new); the scenario then sends them again, round-robin.
  A duplicate is refused by the inbox's unique key after the same signature check and parsing,
  so it is the webhook path with nothing applied: the confirmations' baseline on the same
  server, measured right before them. ``/healthz`` says what the framework alone allows; the
  duplicate says what taking a notification in costs, and so what applying it adds.
* **payment authorized**: every request is the first delivery of a different payment's
  notification, in seeding order (the threads take alternate entries, so teams fill and succeed
  as the run goes).

After the last run the payments servers are stopped (finishing the requests in flight) and
``bench/seed_payments.py verify`` checks the database: every notification in the inbox was
seeded and is there once; every delivered payment is authorised with exactly one authorisation
journal and one ``payment.authorized`` event, its seat paid; every other payment is untouched
with its seat still held; a team succeeded exactly when all its seats' notifications came, with
all its seats confirmed and its captures scheduled; ``pintuan.audit.ledger.check_ledger`` finds
no breach. The harness also checks that the notifications taken as new during the runs are at
least the confirmations wrk counted (none repeated) and at most that plus what can have been in
flight when wrk stopped (64 per run). The output prints the confirmations/s, p50/p99, the ratios
to ``/healthz`` and to the duplicate delivery, and the check; any problem makes the exit status 1.

How to read the numbers
-----------------------
* ``req/s`` counts completed responses per second. ``p50``/``p99`` are per-request latencies in
  milliseconds as the load generator saw them, queueing included. The load is a closed loop (each
  connection sends its next request once the previous one is answered), so latency is roughly
  connections / throughput: the columns tell one story, not two.
* Absolute figures are not comparable between runs or machines. On a shared 2-core machine they
  swing by ±40 % from one run to the next, and the load generator competes with the server for
  the same cores.
* ``vs healthz`` is the scenario's throughput divided by that of Pintuan's ``GET /healthz`` in
  the same run, i.e. the share of the framework-only ceiling the endpoint keeps once its own work
  is added. ``/healthz`` is measured first and again last, and the ratios divide by the mean of
  the two. If the two differ by more than 15 % the machine's load changed during the run, the
  output says so, and the ratios deserve a second run. ``vs ref`` is the same idea for the joins,
  against the reference measured right after Pintuan.
* ``non-2xx`` (responses with any other status, broken down by status) and ``errors`` (failed
  connects, reads or writes and timeouts, i.e. no response at all) must both be 0: a benchmark of
  failing requests measures the failure path. Any of them makes the exit status 1. A 409 in a
  join means a repeated (team, shopper) pair or a full team; the output says whether wrk ran
  through its pool of pre-generated requests, the one way the harness can repeat a request.
* ``cpu us/req`` is the CPU time (user + system) the server processes used during the run per
  completed request, read from ``/proc``; ``cpu vs ref`` divides it by the reference's. Unlike
  req/s it hardly changes when other work competes for the cores, so it is the steadier measure
  of what a join costs on a busy machine. ``pg cpu us/req`` is the same for the local PostgreSQL
  server's backends connected to the benchmark's database (not its shared background processes
  such as the WAL writer, nor other databases' backends).
* The output ends with the machine's load average before the measured runs: anything else
  running on the machine takes cores from the servers and from wrk alike, and shows there.
* With the httpx fallback the client, not the server, is usually the bottleneck: every ratio is
  pulled toward 1 and the absolute figures say more about httpx than about the API. Install
  ``wrk`` (Debian package ``wrk``) for numbers worth comparing.

Adding a scenario: append a :class:`Scenario` to ``SCENARIOS``. Its ``prepare`` function runs
once the servers are up and before any clock starts; it gets a :class:`Fixture` (an HTTP client,
``pintuan`` subcommands such as ``tokens create EMAIL``, the join seed) and returns a
:class:`Load`: one fixed :class:`Request`, or a factory ``n -> Request`` for per-request bodies
and bearer tokens, and optionally a hand-written wrk Lua script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx

from pintuan.payments.providers.sandbox import SIGNATURE_HEADER, TOLERANCE, sign

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_RESULTS = REPO / "var" / "bench-results.json"
HOST = "127.0.0.1"

CONNECTIONS = 64
WRK_THREADS = 2
DEFAULT_SECONDS = 10
DEFAULT_WARMUP_SECONDS = 2
# A request slower than this counts as an error rather than as a very large latency.
REQUEST_TIMEOUT_SECONDS = 5
# Bounds the fallback generator's memory (one latency kept per request) and run time should the
# server be far faster than httpx can drive it.
HTTPX_MAX_REQUESTS = 200_000
# Above this relative change between the first and last /healthz, the machine's load changed
# during the run by more than the ratios can absorb.
DRIFT_TOLERANCE = 0.15
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
SEED_TIMEOUT_SECONDS = 300.0

POSTGRES_URL_VARIABLE = "PINTUAN_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_SERVERS = 2

# The shape of the join scenarios (see the module's docstring).
SHOPPERS = 20_000
TEAMS = 1_000
SPREAD_DEALS = 100
TEAM_SIZE = 100
# A join rate no server reaches on this kind of machine (the bare /healthz does about 11k/s):
# wrk's pool of distinct join requests holds this many per second of a run.
JOIN_RATE_CEILING = 10_000
# Concurrent POSTs that start the teams before the clocks.
TEAM_STARTERS = 8

# The shape of the payment scenarios (see the module's docstring).
WEBHOOK_PATH = "/v1/webhooks/sandbox"
PAYMENT_TEAM_SIZE = 3
PAYMENT_DEALS = 100
# A confirmation rate no server reaches on this kind of machine: a confirmation costs five to six
# times the server CPU of /healthz (measured), which reaches about 11,000/s on a quiet machine,
# so about 2,000/s at most. The seed holds this many payments per second of warm-up and of
# measured run (seeding takes about 1 ms a payment on SQLite, 3 ms on PostgreSQL): should a
# server outrun it, the check after the runs says so and the run fails.
PAYMENT_RATE_CEILING = 3_000
# Notifications delivered through the API before any clock, which the duplicate-delivery
# scenario then sends again (a whole number of teams).
PREDELIVERED = 300 * PAYMENT_TEAM_SIZE
# The sandbox's signing secret for this run, given to every Pintuan server and seeder.
SANDBOX_SECRET = secrets.token_hex(32)
# Signatures are made right before the run that sends them; a run must end well within the
# sandbox's tolerance of the signature's timestamp.
LONGEST_SIGNED_RUN_SECONDS = int(TOLERANCE.total_seconds()) - 60

# The targets: servers under test.
SQLITE = "sqlite"
SQLITE_JOINS = "sqlite-joins"
SQLITE_PAYMENTS = "sqlite-payments"
REFERENCE = "reference"
POSTGRES = "postgres"

# Issue targets, checked and printed at the end.
SQLITE_MIN_VS_REFERENCE = 0.8
SQLITE_AIM_VS_REFERENCE = 1.0
SQLITE_MAX_P99_VS_REFERENCE = 2.0
POSTGRES_MIN_SPREAD_RPS = 3_000


class HarnessError(Exception):
    """The benchmark could not be run (as opposed to: it ran and found errors)."""


# --- What a scenario is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request. ``path`` includes the query string."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


RequestFactory = Callable[[int], Request]


@dataclass(frozen=True)
class Load:
    """What a scenario sends.

    ``request`` is one fixed request or a factory called with n = 0, 1, 2, ... over the
    scenario's warm-up and measured run together, so no index is handed out twice. The httpx
    generator calls the factory for each request. wrk cannot call into Python, so for each of its
    runs the harness renders the next ``max(wrk_pool, wrk_pool_per_second * seconds)`` requests
    into a file up front and wrk cycles over them, the threads taking alternate entries: size the
    pool above the number of requests a run will send when each request must be unique (a join
    by a different shopper, say). A run that sends more is reported as having wrapped its pool.

    ``wrk_script`` replaces that rendering with Lua of your own. It may set ``wrk.method``,
    ``wrk.headers`` and ``wrk.body`` and define ``init``, ``request``, ``delay``, ``setup`` and
    ``response``; the harness appends its own ``setup`` and ``response``, which call yours, and
    ``done``, which replaces any of yours. Each thread's global ``bench_id`` (1, 2, ...) is set
    before ``init`` runs. ``request`` must still be given: the httpx fallback uses it.
    """

    request: Request | RequestFactory
    wrk_script: str | None = None
    wrk_pool: int = 1_000
    wrk_pool_per_second: int = 0

    def pool_size(self, seconds: int) -> int:
        return max(self.wrk_pool, self.wrk_pool_per_second * seconds)


@dataclass(frozen=True)
class JoinSeed:
    """What the join scenarios of one target work with.

    ``deals`` and ``leaders`` (bearer tokens) let a scenario start fresh teams through the API;
    ``teams``, when given, are ready-made teams per kind instead (the reference's).
    """

    kind_deals: Mapping[str, Sequence[str]]
    leaders: Sequence[str]
    shoppers: Sequence[str]
    teams: Mapping[str, Sequence[str]] | None = None


@dataclass(frozen=True)
class PaymentSeed:
    """What the payment scenarios of one target work with: each payment's ``payment.authorized``
    notification (unsigned; signed right before the run that sends it), team by team, and the
    seed's file, which ``bench/seed_payments.py verify`` reads after the runs."""

    bodies: Sequence[bytes]
    path: Path


@dataclass(frozen=True)
class Seeded:
    joins: JoinSeed | None = None
    payments: PaymentSeed | None = None


@dataclass
class Fixture:
    """One target's running server(s), for scenarios to look up or create what they need
    before any clock."""

    target: str
    base_urls: Sequence[str]
    client: httpx.Client
    pintuan: Path
    env: Mapping[str, str]
    workdir: Path
    joins: JoinSeed | None = None
    # The server processes, for their CPU time.
    pids: Sequence[int] = ()
    payments: PaymentSeed | None = None
    _live_deal_id: str | None = None
    _predelivered: Sequence[bytes] | None = None

    def cli(self, *args: str) -> str:
        """Run a ``pintuan`` subcommand against this target's database; return its stdout."""
        return run_command([str(self.pintuan), *args], self.env, self.workdir)

    def live_deal_id(self) -> str:
        """The id of the newest live deal of the demo catalogue."""
        if self._live_deal_id is None:
            response = self.client.get("/v1/deals", params={"limit": 1})
            response.raise_for_status()
            deals = response.json()["data"]
            if not deals:
                raise HarnessError("the demo catalogue has no live deal to read")
            self._live_deal_id = str(deals[0]["id"])
        return self._live_deal_id

    def join_seed(self) -> JoinSeed:
        if self.joins is None:
            raise HarnessError(f"the {self.target} target was not seeded for joins")
        return self.joins

    def payment_seed(self) -> PaymentSeed:
        if self.payments is None:
            raise HarnessError(f"the {self.target} target was not seeded for payments")
        return self.payments

    def predelivered(self) -> Sequence[bytes]:
        """The first ``PREDELIVERED`` notifications, delivered once through the API (on the
        first call)."""
        if self._predelivered is None:
            bodies = self.payment_seed().bodies[:PREDELIVERED]
            deliver_webhooks(self.client, bodies)
            self._predelivered = bodies
        return self._predelivered

    @property
    def delivered_before_clocks(self) -> int:
        return len(self._predelivered or ())

    def teams(self, kind: str) -> Sequence[str]:
        """``TEAMS`` forming teams of the ``kind`` ("spread" or "hot") nobody has joined yet."""
        seed = self.join_seed()
        if seed.teams is not None:
            return seed.teams[kind]
        return start_teams(self.client, seed.leaders, seed.kind_deals[kind])


@dataclass(frozen=True)
class Scenario:
    """``target`` names the server it runs against; ``compare_with`` the scenario of the
    reference it is divided by; ``goal`` which of the issue's targets it is checked against."""

    name: str
    prepare: Callable[[Fixture], Load]
    target: str = SQLITE
    suite: str = "reads"
    compare_with: str | None = None
    goal: str | None = None


def _get(path: str) -> Callable[[Fixture], Load]:
    return lambda _fixture: Load(Request("GET", path))


def _join(kind: str, *, idempotency_key: bool = True) -> Callable[[Fixture], Load]:
    """Joins by a different shopper each, to the ``kind`` teams (see the module's docstring)."""

    def prepare(fixture: Fixture) -> Load:
        teams = fixture.teams(kind)
        shoppers = fixture.join_seed().shoppers
        run = secrets.token_hex(4)

        def request(n: int) -> Request:
            shopper = n % len(shoppers)
            team = teams[(shopper + n // len(shoppers)) % len(teams)]
            headers = {"Authorization": f"Bearer {shoppers[shopper]}"}
            if idempotency_key:
                headers["Idempotency-Key"] = f"bench-{run}-{n:08d}"
            return Request("POST", f"/v1/teams/{team}/seats", headers)

        return Load(request, wrk_pool_per_second=JOIN_RATE_CEILING)

    return prepare


def signed_webhook(body: bytes) -> Request:
    """The sandbox's notification ``body`` as the sandbox sends it, signed now."""
    headers = {
        SIGNATURE_HEADER: sign(SANDBOX_SECRET, body, int(time.time())),
        "Content-Type": "application/json",
    }
    return Request("POST", WEBHOOK_PATH, headers, body)


def _confirm(fixture: Fixture) -> Load:
    """Each payment's notification once, past the pre-delivered ones (see the docstring)."""
    bodies = fixture.payment_seed().bodies[PREDELIVERED:]
    if not bodies:
        raise HarnessError("the payment seed holds no notification beyond the pre-delivered")
    # Past the seed the requests would repeat: the check after the runs reports that.
    return _confirmations(lambda n: signed_webhook(bodies[n % len(bodies)]))


def _confirmations(request: RequestFactory) -> Load:
    return Load(request, wrk_pool=PAYMENT_RATE_CEILING, wrk_pool_per_second=PAYMENT_RATE_CEILING)


def _redeliver(fixture: Fixture) -> Load:
    """The pre-delivered notifications again, round-robin: duplicates only."""
    bodies = fixture.predelivered()
    # Repeats are the point here; the pool is only sized so that wrk does not report them.
    return Load(
        lambda n: signed_webhook(bodies[n % len(bodies)]), wrk_pool_per_second=JOIN_RATE_CEILING
    )


JOIN_SPREAD = f"POST join (a) {TEAMS:,} teams of {SPREAD_DEALS} deals"
JOIN_HOT = f"POST join (b) {TEAMS:,} teams of 1 hot deal"
JOIN_SPREAD_NO_KEY = "POST join (a), no Idempotency-Key"

WEBHOOK_FIRST = "POST webhook: payment authorized"
WEBHOOK_DUPLICATE = "POST webhook: duplicate delivery"

BASELINE = Scenario("GET /healthz", _get("/healthz"))

SCENARIOS: list[Scenario] = [
    Scenario("GET /v1/deals?limit=20", _get("/v1/deals?limit=20")),
    Scenario(
        "GET /v1/deals/{id}",
        lambda fixture: Load(Request("GET", f"/v1/deals/{fixture.live_deal_id()}")),
    ),
    # Pintuan and the reference alternate, so that each ratio divides neighbouring runs.
    Scenario("GET /healthz", _get("/healthz"), REFERENCE, "joins"),
    Scenario(JOIN_SPREAD, _join("spread"), SQLITE_JOINS, "joins", JOIN_SPREAD, "vs-reference"),
    Scenario(JOIN_SPREAD, _join("spread"), REFERENCE, "joins"),
    Scenario(JOIN_HOT, _join("hot"), SQLITE_JOINS, "joins", JOIN_HOT, "vs-reference"),
    Scenario(JOIN_HOT, _join("hot"), REFERENCE, "joins"),
    Scenario(
        JOIN_SPREAD_NO_KEY,
        _join("spread", idempotency_key=False),
        SQLITE_JOINS,
        "joins",
        JOIN_SPREAD,
    ),
    Scenario(JOIN_SPREAD, _join("spread"), POSTGRES, "joins", JOIN_SPREAD, "postgres-rps"),
    Scenario(JOIN_HOT, _join("hot"), POSTGRES, "joins", JOIN_HOT),
    # The duplicates first: they are the confirmations' baseline, measured on the same server.
    Scenario(WEBHOOK_DUPLICATE, _redeliver, SQLITE_PAYMENTS, "payments"),
    Scenario(WEBHOOK_FIRST, _confirm, SQLITE_PAYMENTS, "payments"),
    Scenario(WEBHOOK_DUPLICATE, _redeliver, POSTGRES, "payments"),
    Scenario(WEBHOOK_FIRST, _confirm, POSTGRES, "payments"),
]

TARGET_WORDS = {
    SQLITE: "sqlite",
    SQLITE_JOINS: "sqlite",
    SQLITE_PAYMENTS: "sqlite",
    REFERENCE: "reference",
    POSTGRES: "postgres",
}


def _describe(scenario: Scenario) -> str:
    return f"{TARGET_WORDS[scenario.target]} {scenario.name}"


SUITES = {
    "all": ("reads", "joins", "payments"),
    "reads": ("reads",),
    "joins": ("joins",),
    "payments": ("payments",),
}


# --- Measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    # Responses by status, for the non-2xx ones.
    statuses: Mapping[int, int] = field(default_factory=dict)
    # wrk sent more requests than its pool held, so some were sent twice.
    wrapped: bool = False
    # More of the latency distribution (wrk only): p90, p99.9 and max, in milliseconds.
    tail_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return self.non_2xx > 0 or self.errors > 0


class Generator(Protocol):
    label: str

    def measure(
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        """Drive ``load`` for ``seconds``, spreading the connections evenly over the servers at
        ``base_urls``; return the figures and how many indices were used."""
        ...


def _factory(load: Load) -> RequestFactory:
    request = load.request
    if isinstance(request, Request):
        return lambda _n: request
    return request


def _lua_string(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    # Decimal escapes for everything but plain printable ASCII keep any byte safe in Lua 5.1.
    return (
        '"'
        + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in raw)
        + '"'
    )


def _raw_http(request: Request, host: str) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if request.body is not None or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(request.body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (request.body or b"")


# Reads the pre-rendered requests ("<length>\n<bytes>" each) in every thread; thread k starts at
# entry k and steps by the thread count so that the threads do not send the same requests. (wrk
# calls request() once in the first thread to check it, so entry 1 is never actually sent.)
_WRK_POOL_LUA = """\
local bench_pool = {}
local bench_next, bench_step = 1, %(threads)d
bench_wrapped = 0
function init(args)
  local file = assert(io.open(%(path)s, "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    bench_pool[#bench_pool + 1] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
  bench_next = bench_id
end
function request()
  if bench_next > #bench_pool then bench_wrapped = 1 end
  local raw = bench_pool[(bench_next - 1) %% #bench_pool + 1]
  bench_next = bench_next + bench_step
  return raw
end
"""

# Appended to every wrk script. Counting non-2xx needs a response() hook, since wrk's own
# "status errors" only count 4xx and 5xx; it costs wrk some parsing, which measured within the
# run-to-run noise on this machine. With several servers, thread k is sent to server
# k mod (number of servers), as the threads are a multiple of the servers.
_WRK_REPORT_LUA = """\
bench_non_2xx = 0
bench_statuses = {}
local bench_threads = {}
local bench_ports = {%(ports)s}
local bench_addrs = nil
local scenario_setup, scenario_response = setup, response
function setup(thread)
  bench_threads[#bench_threads + 1] = thread
  thread:set("bench_id", #bench_threads)
  if #bench_ports > 1 then
    if bench_addrs == nil then
      bench_addrs = {}
      for i, port in ipairs(bench_ports) do
        bench_addrs[i] = wrk.lookup(%(host)s, tostring(port))[1]
      end
    end
    thread.addr = bench_addrs[(#bench_threads - 1) %% #bench_addrs + 1]
  end
  if scenario_setup then scenario_setup(thread) end
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    bench_non_2xx = bench_non_2xx + 1
    bench_statuses[status] = (bench_statuses[status] or 0) + 1
  end
  if scenario_response then scenario_response(status, headers, body) end
end
function done(summary, latency, requests)
  local non_2xx, wrapped, statuses, parts = 0, 0, {}, {}
  for _, thread in ipairs(bench_threads) do
    non_2xx = non_2xx + thread:get("bench_non_2xx")
    wrapped = wrapped + (thread:get("bench_wrapped") or 0)
    for status, count in pairs(thread:get("bench_statuses")) do
      statuses[status] = (statuses[status] or 0) + count
    end
  end
  for status, count in pairs(statuses) do
    parts[#parts + 1] = string.format('"%%d": %%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    '@@bench {"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p90_us": %%.1f, '
    .. '"p99_us": %%.1f, "p999_us": %%.1f, "max_us": %%.1f, '
    .. '"non_2xx": %%d, "errors": %%d, "wrapped": %%d, "statuses": {%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    non_2xx, e.connect + e.read + e.write + e.timeout, wrapped, table.concat(parts, ", ")))
end
"""


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


class Wrk:
    def __init__(self, executable: str, scratch: Path) -> None:
        self.executable = executable
        self.scratch = scratch
        version = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        self.label = " ".join(version[:2]) if version else "wrk"
        self._scripts = itertools.count()

    def measure(
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        # A whole number of threads per server, so that each gets the same share.
        threads = len(base_urls) * math.ceil(WRK_THREADS / len(base_urls))
        script, pool = self._script(load, base_urls[0], seconds, first, threads)
        path = self.scratch / f"wrk-{next(self._scripts)}.lua"
        ports = ", ".join(str(_port(url)) for url in base_urls)
        report = _WRK_REPORT_LUA % {"ports": ports, "host": _lua_string(HOST)}
        path.write_text(script + "\n" + report)
        url = base_urls[0] + (load.request.path if isinstance(load.request, Request) else "/")
        command = [
            self.executable,
            f"--threads={threads}",
            f"--connections={CONNECTIONS}",
            f"--duration={seconds}s",
            f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
            f"--script={path}",
            url,
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=seconds + 60
            )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(
                f"wrk did not finish a {seconds} s run within a minute more"
            ) from exc
        for line in done.stdout.splitlines():
            if line.startswith("@@bench "):
                report = json.loads(line.removeprefix("@@bench "))
                requests = int(report["requests"])
                return Measurement(
                    requests=requests,
                    seconds=int(report["duration_us"]) / 1e6,
                    p50_ms=float(report["p50_us"]) / 1e3,
                    p99_ms=float(report["p99_us"]) / 1e3,
                    tail_ms={
                        "p90": float(report["p90_us"]) / 1e3,
                        "p99.9": float(report["p999_us"]) / 1e3,
                        "max": float(report["max_us"]) / 1e3,
                    },
                    non_2xx=int(report["non_2xx"]),
                    errors=int(report["errors"]),
                    statuses={int(k): int(v) for k, v in report["statuses"].items()},
                    wrapped=int(report["wrapped"]) > 0,
                ), pool
        raise HarnessError(
            f"wrk exited with {done.returncode} without a report:\n{done.stdout}{done.stderr}"
        )

    def _script(
        self, load: Load, base_url: str, seconds: int, first: int, threads: int
    ) -> tuple[str, int]:
        """The scenario's Lua and how many indices its pool used (0: no pool)."""
        if load.wrk_script is not None:
            return load.wrk_script, 0
        request = load.request
        if isinstance(request, Request):
            # No request() function: wrk then builds the request once and resends those bytes,
            # its fastest path, so the baseline is not held back by the generator.
            lines = [f"wrk.method = {_lua_string(request.method)}"]
            lines += [
                f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
                for k, v in request.headers.items()
            ]
            if request.body is not None:
                lines.append(f"wrk.body = {_lua_string(request.body)}")
            return "\n".join(lines), 0
        host = base_url.removeprefix("http://")
        size = load.pool_size(seconds)
        pool = self.scratch / f"pool-{next(self._scripts)}.bin"
        with pool.open("wb") as out:
            for n in range(first, first + size):
                raw = _raw_http(request(n), host)
                out.write(b"%d\n" % len(raw) + raw)
        script = _WRK_POOL_LUA % {"threads": threads, "path": _lua_string(str(pool))}
        return script, size


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


class Httpx:
    def __init__(self, why: str) -> None:
        self.label = f"httpx {httpx.__version__} ({why})"
        # Never used for plain http, but each client would otherwise load the CA bundle itself:
        # 64 of them cost seconds per run.
        self._tls = ssl.create_default_context()

    def measure(
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        try:
            return asyncio.run(self._measure(_factory(load), base_urls, seconds, first))
        except TimeoutError as exc:
            raise HarnessError(f"requests still hung well after the {seconds} s run") from exc

    async def _measure(
        self, factory: RequestFactory, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        latencies: list[float] = []
        failures = {"non_2xx": 0, "errors": 0}
        statuses: dict[int, int] = {}
        indices = itertools.count(first)
        limit = first + HTTPX_MAX_REQUESTS

        async def connection(client: httpx.AsyncClient, deadline: float) -> None:
            while time.perf_counter() < deadline:
                n = next(indices)
                if n >= limit:
                    return
                request = factory(n)
                started = time.perf_counter()
                try:
                    response = await client.request(
                        request.method,
                        request.path,
                        headers=dict(request.headers),
                        content=request.body,
                    )
                except httpx.HTTPError:
                    failures["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if not 200 <= response.status_code < 300:
                    failures["non_2xx"] += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        # One client per connection: 64 tasks sharing one client with a pool of 64 managed about
        # a seventh of the throughput here (75 against 540 req/s on /healthz), lost to contention
        # on the pool. The clients are built before the clock starts.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=base_urls[i % len(base_urls)],
                        limits=limits,
                        timeout=REQUEST_TIMEOUT_SECONDS,
                        trust_env=False,
                        verify=self._tls,
                    )
                )
                for i in range(CONNECTIONS)
            ]
            started = time.perf_counter()
            deadline = started + seconds
            async with (
                asyncio.timeout(seconds + REQUEST_TIMEOUT_SECONDS + 5),
                asyncio.TaskGroup() as tasks,
            ):
                for client in clients:
                    tasks.create_task(connection(client, deadline))
            elapsed = time.perf_counter() - started
        latencies.sort()
        measurement = Measurement(
            requests=len(latencies),
            seconds=elapsed,
            p50_ms=_percentile(latencies, 50) * 1e3,
            p99_ms=_percentile(latencies, 99) * 1e3,
            non_2xx=failures["non_2xx"],
            errors=failures["errors"],
            statuses=statuses,
        )
        return measurement, min(next(indices), limit) - first


# --- CPU time -------------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    """User + system CPU time each process has used so far, in clock ticks (Linux; processes
    that cannot be read, e.g. gone already, are left out)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            # After "pid (comm)": state is field 0, utime field 11, stime field 12.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def _postgres_pids(database: str) -> list[int]:
    """The local PostgreSQL server's backends connected to ``database`` (their command line
    names it: "postgres: 15/main: user database host(port) state"). Shared background processes
    (WAL writer, checkpointer, ...) are left out."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() != "postgres":
                        continue
                    words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
                    if database.encode() in words:
                        pids.append(int(entry.name))
    return pids


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def _per_request(
    before: Mapping[int, int], after: Mapping[int, int], m: Measurement
) -> float | None:
    """Microseconds of CPU per completed request between two readings (None: nothing read)."""
    if not after or not m.requests:
        return None
    ticks = sum(used - before.get(pid, 0) for pid, used in after.items())
    return ticks / _CLOCK_TICKS / m.requests * 1e6


# --- Databases and servers ----------------------------------------------------------------------


def run_command(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float | None = None
) -> str:
    """Run a command to completion; its stdout, or a HarnessError with the end of its output."""
    try:
        done = subprocess.run(
            list(command),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(command[:3])} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).splitlines()
        raise HarnessError(f"{' '.join(command)} failed:\n" + "\n".join(output[-20:]))
    return done.stdout


def _find_pintuan() -> Path:
    beside = Path(sys.executable).with_name("pintuan")
    if beside.exists():
        return beside
    found = shutil.which("pintuan")
    if found is None:
        raise HarnessError("no `pintuan` command; run `make install` first")
    return Path(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _pintuan_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PINTUAN_DATABASE_URL"] = database_url
    # The demo catalogue is refused in prod, and the benchmark needs it.
    env["PINTUAN_ENV"] = "dev"
    # A log line per request would measure the logger.
    env["PINTUAN_LOG_LEVEL"] = "WARNING"
    # Known to the harness, which signs the sandbox's notifications with it.
    env["PINTUAN_SANDBOX_WEBHOOK_SECRET"] = SANDBOX_SECRET
    return env


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    ready_url: str
    log_path: Path


def start_server(
    stack: contextlib.ExitStack,
    command: Callable[[int], Sequence[str]],
    env: Mapping[str, str],
    workdir: Path,
    log_path: Path,
    ready_path: str,
) -> Server:
    """Start ``command(port)`` on a free loopback port; ``stack`` stops it when it unwinds,
    however it unwinds. The server may not be ready yet: see :func:`wait_ready`."""
    port = _free_port()
    log = stack.enter_context(log_path.open("wb"))
    # A session of its own keeps a Ctrl-C from reaching the server directly, so that it is
    # always stopped here, after the load generator, and waited for.
    process = subprocess.Popen(
        list(command(port)),
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(_stop, process)
    base_url = f"http://{HOST}:{port}"
    return Server(process, base_url, base_url + ready_path, log_path)


def wait_ready(server: Server) -> str:
    _wait_ready(server.process, server.ready_url, server.log_path)
    return server.base_url


def _wait_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise HarnessError(
                    f"the server exited with {server.returncode}:\n{_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.1)
    raise HarnessError(
        f"the server was not ready within {READY_TIMEOUT_SECONDS:.0f} s:\n{_tail(log_path)}"
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    # SIGTERM, as a process manager would send: uvicorn finishes the requests in flight.
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    except KeyboardInterrupt:
        # A second Ctrl-C while waiting: stop at once rather than leave the server behind.
        server.kill()
        server.wait()
        raise


@dataclass
class Target:
    """A server under test: how to build its database and start it."""

    key: str
    label: str
    env: dict[str, str]
    build: Callable[[], Seeded]
    command: Callable[[int], Sequence[str]]
    ready_path: str
    processes: int = 1
    seed: Seeded = field(default_factory=Seeded)


def _join_sizes() -> list[str]:
    return [
        f"--shoppers={SHOPPERS}",
        f"--teams={TEAMS}",
        f"--spread-deals={SPREAD_DEALS}",
        f"--team-size={TEAM_SIZE}",
    ]


def _build_pintuan(
    pintuan: Path,
    env: Mapping[str, str],
    workdir: Path,
    *,
    reset: bool = False,
    demo: bool = False,
    joins: bool = False,
    payments: int = 0,
) -> Seeded:
    """Migrate (after emptying, for PostgreSQL) and load the demo, the join seed and/or
    ``payments`` open payments."""
    seeder = [sys.executable, str(BENCH / "seed_joins.py")]
    if reset:
        run_command([*seeder, "reset"], env, workdir)
    # The working directory is the scratch one so that a developer's .env is not read.
    run_command([str(pintuan), "migrate"], env, workdir)
    if demo:
        run_command([str(pintuan), "demo"], env, workdir)
    join_seed = None
    if joins:
        out = workdir / f"seed-{secrets.token_hex(4)}.json"
        run_command(
            [*seeder, "seed", *_join_sizes(), f"--out={out}"], env, workdir, SEED_TIMEOUT_SECONDS
        )
        seeded: dict[str, Any] = json.loads(out.read_text())
        join_seed = JoinSeed(
            kind_deals={"spread": seeded["spread_deals"], "hot": [seeded["hot_deal"]]},
            leaders=seeded["leaders"],
            shoppers=seeded["shoppers"],
        )
    payment_seed = None
    if payments:
        out = workdir / f"payments-{secrets.token_hex(4)}.json"
        command = [
            sys.executable,
            str(BENCH / "seed_payments.py"),
            "seed",
            f"--payments={payments}",
            f"--team-size={PAYMENT_TEAM_SIZE}",
            f"--deals={PAYMENT_DEALS}",
            f"--out={out}",
        ]
        run_command(command, env, workdir, SEED_TIMEOUT_SECONDS)
        listed = json.loads(out.read_text())["payments"]
        payment_seed = PaymentSeed([row["body"].encode() for row in listed], out)
    return Seeded(join_seed, payment_seed)


def payments_to_seed(duration: int, warmup: int) -> int:
    """Enough payments for every index the confirmation scenario can use: the pre-delivered
    ones, then wrk's pool for the warm-up and the one for the measured run, in whole teams."""
    shape = _confirmations(lambda _n: Request("POST", WEBHOOK_PATH))
    needed = PREDELIVERED + shape.pool_size(duration) + (shape.pool_size(warmup) if warmup else 0)
    return -(-needed // PAYMENT_TEAM_SIZE) * PAYMENT_TEAM_SIZE


def deliver_webhooks(client: httpx.Client, bodies: Sequence[bytes]) -> None:
    """Deliver each notification once through the API; each must be taken as new."""

    def deliver(body: bytes) -> None:
        request = signed_webhook(body)
        response = client.post(request.path, headers=dict(request.headers), content=body)
        if response.status_code != 200 or response.json().get("duplicate") is not False:
            raise HarnessError(
                f"delivering a notification answered {response.status_code}: {response.text[:500]}"
            )

    with ThreadPoolExecutor(TEAM_STARTERS) as deliverers:
        list(deliverers.map(deliver, bodies))


def verify_payments(fixture: Fixture) -> dict[str, Any]:
    """What ``bench/seed_payments.py verify`` finds in the target's database (its servers
    stopped): the deliveries' effects and the ledger check."""
    out = fixture.workdir / f"verified-{fixture.target}.json"
    command = [
        sys.executable,
        str(BENCH / "seed_payments.py"),
        "verify",
        f"--seed={fixture.payment_seed().path}",
        f"--out={out}",
    ]
    run_command(command, fixture.env, fixture.workdir, SEED_TIMEOUT_SECONDS)
    found: dict[str, Any] = json.loads(out.read_text())
    found["predelivered"] = fixture.delivered_before_clocks
    return found


def _build_reference(workdir: Path) -> Seeded:
    out = workdir / "reference-seed.json"
    command = [
        sys.executable,
        str(BENCH / "reference_app.py"),
        "seed",
        f"--db={workdir / 'reference.db'}",
        f"--out={out}",
        *_join_sizes(),
    ]
    run_command(command, dict(os.environ), workdir, SEED_TIMEOUT_SECONDS)
    seeded: dict[str, Any] = json.loads(out.read_text())
    teams = {"spread": seeded["spread_teams"], "hot": seeded["hot_teams"]}
    return Seeded(JoinSeed(kind_deals={}, leaders=[], shoppers=seeded["shoppers"], teams=teams))


def start_teams(client: httpx.Client, leaders: Sequence[str], deals: Sequence[str]) -> list[str]:
    """Leader i starts a team on deal i mod len(deals), through the API; the new team ids."""

    def start(n: int) -> str:
        response = client.post(
            f"/v1/deals/{deals[n % len(deals)]}/teams",
            headers={"Authorization": f"Bearer {leaders[n]}"},
        )
        if response.status_code != 201:
            raise HarnessError(
                f"starting a team answered {response.status_code}: {response.text[:500]}"
            )
        return str(response.json()["team"]["id"])

    with ThreadPoolExecutor(TEAM_STARTERS) as starters:
        return list(starters.map(start, range(len(leaders))))


# --- Running and reporting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    target_label: str
    measurement: Measurement
    ratio: float
    vs_reference: float | None = None
    p99_vs_reference: float | None = None
    cpu_us: float | None = None
    database_cpu_us: float | None = None
    cpu_vs_reference: float | None = None


def _pick_generator(choice: str, scratch: Path) -> Generator:
    executable = shutil.which("wrk")
    if choice == "httpx":
        return Httpx("chosen with --generator httpx")
    if choice == "auto" and executable is None:
        return Httpx("fallback: wrk is not on PATH")
    if executable is None:
        raise HarnessError("--generator wrk, but wrk is not on PATH (apt-get install wrk)")
    return Wrk(executable, scratch)


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--short"))}


def _failures(m: Measurement) -> str:
    if not m.non_2xx:
        return "0"
    detail = ", ".join(f"{status}x{count}" for status, count in sorted(m.statuses.items()))
    return f"{m.non_2xx} ({detail})" if detail else str(m.non_2xx)


def _ratio(value: float | None, digits: int = 2) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _render(rows: Sequence[Row]) -> str:
    header = (
        "target",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "errors",
        "vs healthz",
        "vs ref",
        "p99 vs ref",
        "cpu us/req",
        "cpu vs ref",
        "pg cpu us/req",
    )
    cells = [header] + [
        (
            row.target_label,
            row.scenario.name,
            f"{row.measurement.rps:,.0f}",
            f"{row.measurement.p50_ms:.1f}",
            f"{row.measurement.p99_ms:.1f}",
            _failures(row.measurement),
            str(row.measurement.errors),
            f"{row.ratio:.2f}",
            _ratio(row.vs_reference),
            _ratio(row.p99_vs_reference),
            _ratio(row.cpu_us, 0),
            _ratio(row.cpu_vs_reference),
            _ratio(row.database_cpu_us, 0),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    )


@dataclass(frozen=True)
class GoalCheck:
    what: str
    value: str
    goal: str
    met: bool


def _check_goals(rows: Sequence[Row]) -> list[GoalCheck]:
    checks = []
    for row in rows:
        m = row.measurement
        if row.scenario.goal == "vs-reference" and row.vs_reference is not None:
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s vs reference",
                    f"{row.vs_reference:.2f}x",
                    f"≥ {SQLITE_MIN_VS_REFERENCE:.1f}x (aim {SQLITE_AIM_VS_REFERENCE:.1f}x)",
                    row.vs_reference >= SQLITE_MIN_VS_REFERENCE,
                )
            )
            if row.p99_vs_reference is not None:
                checks.append(
                    GoalCheck(
                        f"{row.target_label} {row.scenario.name}: p99 vs reference",
                        f"{row.p99_vs_reference:.2f}x",
                        f"< {SQLITE_MAX_P99_VS_REFERENCE:.1f}x",
                        row.p99_vs_reference < SQLITE_MAX_P99_VS_REFERENCE,
                    )
                )
        if row.scenario.goal == "postgres-rps":
            checks.append(
                GoalCheck(
                    f"{row.target_label} {row.scenario.name}: req/s",
                    f"{m.rps:,.0f}",
                    f"≥ {POSTGRES_MIN_SPREAD_RPS:,}",
                    m.rps >= POSTGRES_MIN_SPREAD_RPS,
                )
            )
    return checks


@dataclass(frozen=True)
class PaymentReport:
    """One payments target: its two scenarios and what the check after them found."""

    key: str
    label: str
    confirm: Row | None
    duplicate: Row | None
    found: Mapping[str, Any]
    # 2xx answers the load generator counted in the confirmation runs (warm-up included), and
    # how many more notifications can have been sent without their answer being counted.
    counted: int
    in_flight: int
    problems: list[str]

    @property
    def new(self) -> int:
        """Notifications taken as new during the confirmation runs."""
        return int(self.found["delivered"]) - int(self.found["predelivered"])


def _payment_report(
    key: str,
    label: str,
    rows: Sequence[Row],
    warmups: Mapping[int, Measurement],
    found: Mapping[str, Any],
) -> PaymentReport:
    confirm = duplicate = None
    counted = in_flight = 0
    problems: list[str] = []
    for i, row in enumerate(rows):
        if row.scenario.target != key:
            continue
        if row.scenario.name == WEBHOOK_DUPLICATE:
            duplicate = row
        elif row.scenario.name == WEBHOOK_FIRST:
            confirm = row
            for run in (warmups.get(i), row.measurement):
                if run is None:
                    continue
                counted += run.requests - run.non_2xx
                in_flight += CONNECTIONS + run.errors
                if run.wrapped and not any("its pool" in p for p in problems):
                    problems.append("wrk ran through its pool: some notifications were sent twice")
    new = int(found["delivered"]) - int(found["predelivered"])
    if new < counted:
        problems.append(
            f"{counted:,} confirmations were counted but only {new:,} notifications were new: "
            "requests repeated (raise PAYMENT_RATE_CEILING)"
        )
    elif new > counted + in_flight:
        problems.append(
            f"{new:,} notifications were taken as new, more than the {counted:,} counted plus "
            f"{in_flight:,} that can have been in flight"
        )
    problems += found["problems_shown"]
    hidden = int(found["problems"]) - len(found["problems_shown"])
    if hidden > 0:
        problems.append(f"... and {hidden:,} more")
    return PaymentReport(key, label, confirm, duplicate, found, counted, in_flight, problems)


def _render_payments(report: PaymentReport) -> str:
    found = report.found
    lines = [
        f"payment confirmations through POST {WEBHOOK_PATH} on {report.label}: "
        f"{found['seeded_payments']:,} held seats (teams of {found['team_size']} over "
        f"{PAYMENT_DEALS} deals), each with an open sandbox payment; every request is a "
        "different payment's notification, signed right before its run"
    ]
    confirm, duplicate = report.confirm, report.duplicate
    if confirm is not None:
        m = confirm.measurement
        line = (
            f"  {m.rps:,.0f} confirmations/s, p50 {m.p50_ms:,.1f} ms, p99 {m.p99_ms:,.1f} ms; "
            f"{confirm.ratio:.2f}x /healthz"
        )
        if duplicate is not None and duplicate.measurement.rps:
            d = duplicate.measurement
            line += (
                f"; {m.rps / d.rps:.2f}x the duplicate delivery ({d.rps:,.0f}/s, "
                f"p99 {d.p99_ms:,.1f} ms)"
            )
            if confirm.cpu_us and duplicate.cpu_us:
                line += (
                    f"; server CPU {confirm.cpu_us:,.0f} us a confirmation, "
                    f"{duplicate.cpu_us:,.0f} us a duplicate"
                )
        lines.append(line)
    lines.append(
        f"  check: {found['delivered']:,} notifications taken as new ({found['predelivered']:,} "
        f"before the clocks; the load generator counted {report.counted:,} confirmations and "
        f"{max(report.new - report.counted, 0):,} more were in flight when it stopped); "
        f"{found['authorized_once']:,} payments authorized with exactly one journal and one "
        f"event; {found['seats_paid'] + found['seats_confirmed']:,} seats paid "
        f"({found['seats_confirmed']:,} confirmed: {found['teams_succeeded']:,} of "
        f"{found['teams_full']:,} full teams succeeded); {found['not_delivered']:,} payments "
        f"still open with their seats held; ledger check: {found['ledger_breaches']} breaches "
        f"in {found['journals']:,} journals"
    )
    if report.problems:
        lines.append("  PROBLEMS:")
        lines += [f"    {problem}" for problem in report.problems]
    else:
        lines.append("  sound: every delivered payment authorized once, nothing else changed")
    return "\n".join(lines)


def _payment_json(report: PaymentReport) -> dict[str, Any]:
    confirm, duplicate = report.confirm, report.duplicate
    m = confirm.measurement if confirm else None
    d = duplicate.measurement if duplicate else None
    return {
        "target": report.key,
        "confirmations_per_s": round(m.rps, 1) if m else None,
        "p50_ms": round(m.p50_ms, 2) if m else None,
        "p99_ms": round(m.p99_ms, 2) if m else None,
        "vs_healthz": round(confirm.ratio, 3) if confirm else None,
        "duplicates_per_s": round(d.rps, 1) if d else None,
        "vs_duplicate": round(m.rps / d.rps, 3) if m and d and d.rps else None,
        "counted": report.counted,
        "check": dict(report.found),
        "problems": report.problems,
        "sound": not report.problems,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


_STARTED = time.monotonic()


def _note(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--suite",
        choices=tuple(SUITES),
        default="all",
        help="reads (GET endpoints), joins (Pintuan's join against the reference), payments "
        "(payment confirmations through the webhook path against duplicate deliveries) or all; "
        f"joins and payments also on PostgreSQL when {POSTGRES_URL_VARIABLE} is set; /healthz "
        "always runs",
    )
    parser.add_argument(
        "--duration", type=int, default=DEFAULT_SECONDS, help="seconds measured per scenario"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_SECONDS,
        help="seconds of unmeasured load before each scenario (0: none)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only scenarios whose target and name (e.g. 'postgres POST join (a) ...') "
        "contain TEXT, in any case (repeatable; /healthz always runs)",
    )
    parser.add_argument(
        "--postgres-servers",
        type=int,
        default=DEFAULT_POSTGRES_SERVERS,
        help="Pintuan processes serving the PostgreSQL joins (wrk spreads its threads over them)",
    )
    parser.add_argument(
        "--postgres-pool-size",
        type=int,
        default=None,
        help="PINTUAN_DB_POOL_SIZE of each PostgreSQL server (default: Pintuan's own default)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="run Pintuan's background worker in each server process (default: --no-worker)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the databases, seeds, wrk scripts and server logs in DIR (default: a "
        "temporary directory, removed at the end)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_RESULTS, help="where to write results")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0")
    if "payments" in SUITES[args.suite] and max(args.duration, args.warmup) > (
        LONGEST_SIGNED_RUN_SECONDS
    ):
        parser.error(
            f"the payments suite signs its requests before each run and the sandbox accepts a "
            f"signature for {TOLERANCE.total_seconds():.0f} s: keep --duration and --warmup "
            f"at most {LONGEST_SIGNED_RUN_SECONDS}"
        )
    if not 1 <= args.postgres_servers <= CONNECTIONS // 2:
        parser.error(f"--postgres-servers must be between 1 and {CONNECTIONS // 2}")
    return args


def _prepare(plan: Sequence[Scenario], fixtures: Mapping[str, Fixture]) -> list[Load]:
    """Every scenario's load, the targets side by side (each target's scenarios in order)."""

    def prepare_target(target: str) -> dict[int, Load]:
        return {i: s.prepare(fixtures[target]) for i, s in enumerate(plan) if s.target == target}

    targets = sorted({s.target for s in plan})
    with ThreadPoolExecutor(len(targets)) as preparers:
        prepared: dict[int, Load] = {}
        for loads in preparers.map(prepare_target, targets):
            prepared.update(loads)
    return [prepared[i] for i in range(len(plan))]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGINT)


def _targets(
    needed: set[str],
    pintuan: Path,
    workdir: Path,
    *,
    reads: bool,
    postgres_suites: set[str],
    payments: int,
    postgres_url: str | None,
    postgres_servers: int,
    postgres_pool_size: int | None,
    worker: bool,
) -> list[Target]:
    """The servers ``needed``; ``postgres_suites`` says which seeds PostgreSQL's database needs,
    ``payments`` how many payments a payments target is seeded with."""
    flag = "--worker" if worker else "--no-worker"

    def serve(port: int) -> list[str]:
        return [str(pintuan), "serve", "--host", HOST, "--port", str(port), flag]

    demo_env = _pintuan_env(f"sqlite:///{workdir / 'demo.db'}")
    targets = [
        Target(
            SQLITE,
            "Pintuan/SQLite",
            demo_env,
            lambda: _build_pintuan(pintuan, demo_env, workdir, demo=reads),
            serve,
            "/readyz",
        )
    ]
    if SQLITE_JOINS in needed:
        joins_env = _pintuan_env(f"sqlite:///{workdir / 'joins.db'}")
        targets.append(
            Target(
                SQLITE_JOINS,
                "Pintuan/SQLite",
                joins_env,
                lambda: _build_pintuan(pintuan, joins_env, workdir, joins=True),
                serve,
                "/readyz",
            )
        )
    if SQLITE_PAYMENTS in needed:
        payments_env = _pintuan_env(f"sqlite:///{workdir / 'payments.db'}")
        targets.append(
            Target(
                SQLITE_PAYMENTS,
                "Pintuan/SQLite",
                payments_env,
                lambda: _build_pintuan(pintuan, payments_env, workdir, payments=payments),
                serve,
                "/readyz",
            )
        )
    if REFERENCE in needed:
        reference_db = workdir / "reference.db"
        targets.append(
            Target(
                REFERENCE,
                "reference",
                dict(os.environ),
                lambda: _build_reference(workdir),
                lambda port: [
                    sys.executable,
                    str(BENCH / "reference_app.py"),
                    "serve",
                    f"--db={reference_db}",
                    f"--host={HOST}",
                    f"--port={port}",
                ],
                "/healthz",
            )
        )
    if POSTGRES in needed and postgres_url:
        pg_env = _pintuan_env(postgres_url)
        if postgres_pool_size is not None:
            pg_env["PINTUAN_DB_POOL_SIZE"] = str(postgres_pool_size)
        targets.append(
            Target(
                POSTGRES,
                f"Pintuan/PostgreSQL x{postgres_servers}",
                pg_env,
                lambda: _build_pintuan(
                    pintuan,
                    pg_env,
                    workdir,
                    reset=True,
                    joins="joins" in postgres_suites,
                    payments=payments if "payments" in postgres_suites else 0,
                ),
                serve,
                "/readyz",
                processes=postgres_servers,
            )
        )
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # A plain SIGTERM (a CI timeout, `kill`) would end Python without running `finally`, and so
    # leave the servers running. Passed on as SIGINT it unwinds like a Ctrl-C, also inside
    # asyncio.run, which cancels its task cleanly only for SIGINT. SIGINT itself is ignored when
    # started in the background of a non-interactive shell, hence restored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    wall_start = time.monotonic()
    suites = SUITES[args.suite]
    postgres_url = os.environ.get(POSTGRES_URL_VARIABLE) or None
    chosen = [
        s
        for s in SCENARIOS
        if s.suite in suites
        and (not args.only or any(t.lower() in _describe(s).lower() for t in args.only))
        and (s.target != POSTGRES or postgres_url)
    ]
    plan = [BASELINE, *chosen, Scenario(f"{BASELINE.name} (again)", BASELINE.prepare)]
    measured: list[tuple[Scenario, str, Measurement]] = []
    # The machine's 1-minute load average before each measured run: other work on the machine
    # shows here (the benchmark's own servers are idle between runs).
    loads_before: list[float] = []
    # CPU time of the server processes (and of PostgreSQL) per request, in microseconds: what
    # a request costs whatever else runs on the machine.
    cpu: dict[int, float | None] = {}
    database_cpu: dict[int, float | None] = {}
    labels: dict[str, str] = {}
    # The warm-up runs' figures, by the index of their measured run (the payment check counts
    # the notifications they delivered).
    warmups: dict[int, Measurement] = {}
    # What ``bench/seed_payments.py verify`` found on each payments target.
    verified: dict[str, dict[str, Any]] = {}
    fixtures: dict[str, Fixture] = {}
    try:
        with contextlib.ExitStack() as stack:
            if args.keep is None:
                workdir = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="pintuan-bench-"))
                )
            else:
                workdir = args.keep.resolve()
                workdir.mkdir(parents=True, exist_ok=True)
            generator = _pick_generator(args.generator, workdir)
            _note(
                f"load generator: {generator.label}; {CONNECTIONS} connections, "
                f"{args.duration} s per scenario after {args.warmup} s of warm-up"
            )
            if ("joins" in suites or "payments" in suites) and not postgres_url:
                _note(f"PostgreSQL joins and payments skipped: {POSTGRES_URL_VARIABLE} is not set")
            pintuan = _find_pintuan()
            targets = _targets(
                {s.target for s in plan},
                pintuan,
                workdir,
                reads=any(s.suite == "reads" for s in chosen),
                postgres_suites={s.suite for s in chosen if s.target == POSTGRES},
                payments=payments_to_seed(args.duration, args.warmup),
                postgres_url=postgres_url,
                postgres_servers=args.postgres_servers,
                postgres_pool_size=args.postgres_pool_size,
                worker=args.worker,
            )
            labels = {t.key: t.label for t in targets}
            _note("preparing databases: " + ", ".join(t.key for t in targets))
            started = time.monotonic()
            # The databases are independent: build them side by side.
            with ThreadPoolExecutor(len(targets)) as builders:
                builds: list[Future[Seeded]] = [builders.submit(t.build) for t in targets]
                for target, build in zip(targets, builds, strict=True):
                    target.seed = build.result()
            _note(f"  databases ready in {time.monotonic() - started:.0f} s; starting servers")
            # All servers start side by side; each is stopped when the stack unwinds.
            launched = {
                target.key: [
                    start_server(
                        stack,
                        target.command,
                        target.env,
                        workdir,
                        workdir / f"server-{target.key}-{i}.log",
                        target.ready_path,
                    )
                    for i in range(target.processes)
                ]
                for target in targets
            }
            for target in targets:
                urls = [wait_ready(server) for server in launched[target.key]]
                client = stack.enter_context(
                    httpx.Client(base_url=urls[0], timeout=30.0, trust_env=False)
                )
                fixtures[target.key] = Fixture(
                    target.key,
                    urls,
                    client,
                    pintuan,
                    target.env,
                    workdir,
                    target.seed.joins,
                    [server.process.pid for server in launched[target.key]],
                    target.seed.payments,
                )
            # Everything is prepared before the first clock starts, so a broken scenario
            # fails in seconds rather than after the others have run.
            _note(
                "preparing scenarios (joins: starting their teams; payments: delivering the "
                "notifications that are then sent again)"
            )
            started = time.monotonic()
            loads = _prepare(plan, fixtures)
            _note(f"  prepared in {time.monotonic() - started:.0f} s")
            for scenario, load in zip(plan, loads, strict=True):
                fixture = fixtures[scenario.target]
                title = f"{labels[scenario.target]} {scenario.name}"
                next_index = 0
                if args.warmup:
                    _note(f"  {title}: warming up")
                    warmups[len(measured)], used = generator.measure(
                        load, fixture.base_urls, args.warmup, next_index
                    )
                    next_index += used
                _note(f"  {title}: measuring")
                loads_before.append(os.getloadavg()[0])
                database = (
                    _database_name(postgres_url)
                    if postgres_url and scenario.target == POSTGRES
                    else None
                )
                cpu_before = _cpu_ticks(fixture.pids)
                database_before = _cpu_ticks(_postgres_pids(database)) if database else {}
                measurement, _ = generator.measure(
                    load, fixture.base_urls, args.duration, next_index
                )
                cpu_after = _cpu_ticks(fixture.pids)
                database_after = _cpu_ticks(_postgres_pids(database)) if database else {}
                cpu[len(measured)] = _per_request(cpu_before, cpu_after, measurement)
                database_cpu[len(measured)] = _per_request(
                    database_before, database_after, measurement
                )
                measured.append((scenario, scenario.target, measurement))
            for key in sorted({s.target for s in chosen if s.suite == "payments"}):
                # Stopped first, so that the requests in flight when wrk stopped are finished.
                for server in launched[key]:
                    _stop(server.process)
                _note(f"  {labels[key]}: checking what the notifications did")
                verified[key] = verify_payments(fixtures[key])
    except HarnessError as exc:
        _note(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        _note("bench: interrupted; the servers, if started, have been stopped")
        return 130

    first, last = measured[0][2].rps, measured[-1][2].rps
    baseline = (first + last) / 2
    drift = (last - first) / first if first else math.nan
    references = {s.name: i for i, (s, key, _) in enumerate(measured) if key == REFERENCE}
    rows = []
    for i, (scenario, key, m) in enumerate(measured):
        r = references.get(scenario.compare_with or "")
        reference = measured[r][2] if r is not None else None
        reference_cpu = cpu[r] if r is not None else None
        own_cpu = cpu[i]
        rows.append(
            Row(
                scenario,
                labels[key],
                m,
                m.rps / baseline if baseline else math.nan,
                m.rps / reference.rps if reference and reference.rps else None,
                m.p99_ms / reference.p99_ms if reference and reference.p99_ms else None,
                own_cpu,
                database_cpu[i],
                own_cpu / reference_cpu if own_cpu and reference_cpu else None,
            )
        )
    checks = _check_goals(rows)
    payment_reports = [
        _payment_report(key, labels[key], rows, warmups, found) for key, found in verified.items()
    ]
    wall = time.monotonic() - wall_start

    print(f"\nload generator: {generator.label}")
    if isinstance(generator, Httpx):
        print(
            "note: httpx is usually the bottleneck, not the server: the ratios are pulled toward 1."
            " Install wrk for numbers worth comparing."
        )
    servers = ", ".join(
        f"{t.label} ({t.processes} process{'es' if t.processes > 1 else ''})"
        for t in targets
        if t.key != SQLITE_JOINS
    )
    print(
        f"{CONNECTIONS} connections, {args.duration} s per scenario after {args.warmup} s "
        f"warm-up; servers: {servers}; Pintuan {'with' if args.worker else 'without'} its "
        "in-process worker\n'vs healthz' divides by the mean of the two Pintuan /healthz runs, "
        "'vs ref' by the same scenario on the bare reference\n"
    )
    print(_render(rows))
    print(f"\n/healthz drift from first to last run: {drift:+.1%}", end="")
    steady = abs(drift) <= DRIFT_TOLERANCE
    print("" if steady else f" (over {DRIFT_TOLERANCE:.0%}: the ratios are unreliable, run again)")
    wrapped = [f"{row.target_label} {row.scenario.name}" for row in rows if row.measurement.wrapped]
    if wrapped:
        print(f"wrk ran through its request pool (requests were repeated) in: {', '.join(wrapped)}")
    if checks:
        print("\nissue targets:")
        for check in checks:
            verdict = "met" if check.met else "MISSED"
            print(f"  {check.what}: {check.value} (target {check.goal}): {verdict}")
    for report in payment_reports:
        print("\n" + _render_payments(report))
    failed = [f"{row.target_label} {row.scenario.name}" for row in rows if row.measurement.failed]
    if failed:
        print(f"FAILED: non-2xx responses or errors in {', '.join(failed)}")
    unsound = [r.label for r in payment_reports if r.problems]
    if unsound:
        print(f"FAILED: the payment check found problems on {', '.join(unsound)}")
    print(
        f"load average (1 min) before the measured runs: {min(loads_before):.1f} to "
        f"{max(loads_before):.1f} on {os.cpu_count()} CPUs (the load generator's own runs "
        "raise it; well above the CPU count means other work competed with the benchmark)"
    )
    print(f"full run: {wall:.0f} s; results in {args.json}")

    _write_json(
        args.json,
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": _git_state(),
            "generator": generator.label,
            "connections": CONNECTIONS,
            "wrk_threads": WRK_THREADS if isinstance(generator, Wrk) else None,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "suite": args.suite,
            "cpus": os.cpu_count(),
            "servers": {t.key: {"label": t.label, "processes": t.processes} for t in targets},
            "worker": args.worker,
            "postgres_pool_size": args.postgres_pool_size,
            "joins": {
                "shoppers": SHOPPERS,
                "teams": TEAMS,
                "spread_deals": SPREAD_DEALS,
                "team_size": TEAM_SIZE,
            },
            "baseline": {
                "first_rps": round(first, 1),
                "last_rps": round(last, 1),
                "drift": round(drift, 4),
                "steady": steady,
            },
            "scenarios": [
                {
                    "name": row.scenario.name,
                    "target": row.scenario.target,
                    "suite": row.scenario.suite,
                    "requests": row.measurement.requests,
                    "seconds": round(row.measurement.seconds, 3),
                    "rps": round(row.measurement.rps, 1),
                    "p50_ms": round(row.measurement.p50_ms, 2),
                    "p99_ms": round(row.measurement.p99_ms, 2),
                    "tail_ms": {k: round(v, 2) for k, v in row.measurement.tail_ms.items()},
                    "non_2xx": row.measurement.non_2xx,
                    "statuses": {str(k): v for k, v in sorted(row.measurement.statuses.items())},
                    "errors": row.measurement.errors,
                    "pool_wrapped": row.measurement.wrapped,
                    "vs_healthz": round(row.ratio, 3),
                    "load_average_before": round(load, 2),
                    "server_cpu_us_per_request": _rounded(row.cpu_us, 1),
                    "server_cpu_vs_reference": _rounded(row.cpu_vs_reference, 3),
                    "postgres_cpu_us_per_request": _rounded(row.database_cpu_us, 1),
                    "vs_reference": None
                    if row.vs_reference is None
                    else round(row.vs_reference, 3),
                    "p99_vs_reference": None
                    if row.p99_vs_reference is None
                    else round(row.p99_vs_reference, 3),
                }
                for row, load in zip(rows, loads_before, strict=True)
            ],
            "targets": [
                {"what": c.what, "value": c.value, "target": c.goal, "met": c.met} for c in checks
            ],
            "payments": {
                "team_size": PAYMENT_TEAM_SIZE,
                "deals": PAYMENT_DEALS,
                "rate_ceiling": PAYMENT_RATE_CEILING,
                "results": [_payment_json(report) for report in payment_reports],
            },
            "ok": not failed and not unsound,
            "wall_s": round(wall, 1),
        },
    )
    return 1 if failed or unsound else 0


if __name__ == "__main__":
    sys.exit(main())
