"""The scenarios: what each sends to which server, and the seeds and fixtures they draw on.

Adding a scenario: see the package's docstring.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.load.harness import HarnessError, run_command
from pintuan.payments.providers.sandbox import SIGNATURE_HEADER, TOLERANCE, sign

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

# A shopper of the demo catalogue, who starts the team whose page the reads load.
DEMO_SHOPPER = "amy@example.com"

# The targets: servers under test.
SQLITE = "sqlite"
SQLITE_JOINS = "sqlite-joins"
SQLITE_PAYMENTS = "sqlite-payments"
REFERENCE = "reference"
POSTGRES = "postgres"
REFERENCE_POSTGRES = "reference-postgres"
# The joins on PostgreSQL run on this many server processes of Pintuan and of its reference;
# both start the most of them, and each scenario loads the first ``servers``.
POSTGRES_JOIN_SERVERS = (2, 4)
SQLITE_FEED = "sqlite-feed"
# The feed's server holds this many live offers (``bench/seed_feed.py``).
FEED_OFFERS = 10_000


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
    _forming_team_id: str | None = None
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

    def forming_team_id(self) -> str:
        """A team a demo shopper starts on the newest live deal, through the API (its page is
        the link shoppers share)."""
        if self._forming_team_id is None:
            token = self.cli("tokens", "create", DEMO_SHOPPER).strip()
            started = self.client.post(
                f"/v1/deals/{self.live_deal_id()}/teams",
                headers={"Authorization": f"Bearer {token}"},
            )
            if started.status_code != 201:
                raise HarnessError(
                    f"starting a team answered {started.status_code}: {started.text[:500]}"
                )
            self._forming_team_id = str(started.json()["team"]["id"])
        return self._forming_team_id

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

    def teams(self, kind: str, round_: int = 0) -> Sequence[str]:
        """``TEAMS`` forming teams of the ``kind`` ("spread" or "hot") nobody has joined yet;
        a ready-made seed holds one set per ``round_`` of scenarios on the same kind."""
        seed = self.join_seed()
        if seed.teams is not None:
            return seed.teams[kind if round_ == 0 else f"{kind}-{round_}"]
        return start_teams(self.client, seed.leaders, seed.kind_deals[kind])


@dataclass(frozen=True)
class Scenario:
    """``target`` names the server it runs against; ``compare_with`` the scenario of the
    ``reference`` target (or ``compare_target``) it is divided by; ``goal`` which of the issue's
    targets it is checked against (``report.GOALS``); ``servers`` how many of the target's
    processes it loads (None: its default)."""

    name: str
    prepare: Callable[[Fixture], Load]
    target: str = SQLITE
    suite: str = "reads"
    compare_with: str | None = None
    goal: str | None = None
    compare_target: str = REFERENCE
    servers: int | None = None
    reference: str = REFERENCE


def _get(path: str) -> Callable[[Fixture], Load]:
    return lambda _fixture: Load(Request("GET", path))


def _join(kind: str, *, idempotency_key: bool = True, round_: int = 0) -> Callable[[Fixture], Load]:
    """Joins by a different shopper each, to the ``kind`` teams (see the module's docstring)."""

    def prepare(fixture: Fixture) -> Load:
        teams = fixture.teams(kind, round_)
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


def _postgres_joins() -> list[Scenario]:
    """The joins on PostgreSQL beside the bare psycopg reference (``bench/reference_pg.py``),
    on each number of server processes, alternating so that each ratio divides neighbours."""
    scenarios = []
    for round_, servers in enumerate(POSTGRES_JOIN_SERVERS):
        for kind, name in (("spread", JOIN_SPREAD), ("hot", JOIN_HOT)):
            named = f"{name}, {servers} processes"
            join = _join(kind, round_=round_)
            goal = "postgres-vs-reference"
            scenarios += [
                Scenario(
                    named,
                    join,
                    POSTGRES,
                    "joins",
                    compare_with=named,
                    goal=goal,
                    servers=servers,
                    reference=REFERENCE_POSTGRES,
                ),
                Scenario(named, join, REFERENCE_POSTGRES, "joins", servers=servers),
            ]
            if kind == "spread" and round_ == 0:
                # The same join without a key, as the reference joins: beside its run.
                scenarios.append(
                    Scenario(
                        f"{JOIN_SPREAD_NO_KEY}, {servers} processes",
                        _join(kind, idempotency_key=False, round_=round_),
                        POSTGRES,
                        "joins",
                        compare_with=named,
                        servers=servers,
                        reference=REFERENCE_POSTGRES,
                    )
                )
    return scenarios


WEBHOOK_FIRST = "POST webhook: payment authorized"
WEBHOOK_DUPLICATE = "POST webhook: duplicate delivery"

BASELINE = Scenario("GET /healthz", _get("/healthz"))

# Reads by a visitor (no cookie, no token), each held to half of /healthz with no timeout.
READS_GOAL = "vs-healthz"

SCENARIOS: list[Scenario] = [
    Scenario("GET /v1/deals?limit=20", _get("/v1/deals?limit=20"), goal=READS_GOAL),
    Scenario(
        "GET /v1/deals/{id}",
        lambda fixture: Load(Request("GET", f"/v1/deals/{fixture.live_deal_id()}")),
        goal=READS_GOAL,
    ),
    Scenario(
        "GET /deals/{id} (page)",
        lambda fixture: Load(Request("GET", f"/deals/{fixture.live_deal_id()}")),
        goal=READS_GOAL,
    ),
    Scenario(
        "GET /teams/{id} (page)",
        lambda fixture: Load(Request("GET", f"/teams/{fixture.forming_team_id()}")),
        goal=READS_GOAL,
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
    *_postgres_joins(),
    # The duplicates first: they are the confirmations' baseline, measured on the same server.
    Scenario(WEBHOOK_DUPLICATE, _redeliver, SQLITE_PAYMENTS, "payments"),
    Scenario(WEBHOOK_FIRST, _confirm, SQLITE_PAYMENTS, "payments"),
    Scenario(WEBHOOK_DUPLICATE, _redeliver, POSTGRES, "payments"),
    Scenario(WEBHOOK_FIRST, _confirm, POSTGRES, "payments"),
    # The aggregated feed over 10,000 live offers, next to the same server's own /healthz.
    Scenario("GET /healthz", _get("/healthz"), SQLITE_FEED, "feed"),
    Scenario("GET /v1/feed?slots=20", _get("/v1/feed?slots=20"), SQLITE_FEED, "feed", goal="feed"),
    Scenario("GET / (the feed)", _get("/"), SQLITE_FEED, "feed", goal="feed"),
    Scenario("GET /healthz (again)", _get("/healthz"), SQLITE_FEED, "feed"),
]

TARGET_WORDS = {
    SQLITE: "sqlite",
    SQLITE_JOINS: "sqlite",
    SQLITE_PAYMENTS: "sqlite",
    REFERENCE: "reference",
    POSTGRES: "postgres",
    REFERENCE_POSTGRES: "postgres reference",
    SQLITE_FEED: f"sqlite, {FEED_OFFERS:,} offers",
}


def describe(scenario: Scenario) -> str:
    return f"{TARGET_WORDS[scenario.target]} {scenario.name}"


SUITES = {
    "all": ("reads", "joins", "payments", "feed"),
    "reads": ("reads",),
    "feed": ("feed",),
    "joins": ("joins",),
    "payments": ("payments",),
}


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
