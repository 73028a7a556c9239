"""The soak's shoppers: what they find in the database (seeded through the services, as the
benchmarks' seeds are), and the mixed flows they send through nginx.

Each shopper loop sends one action after another on its own kept-alive connection, choosing
browse (80%), start or join (15%) or pay (5%):

* browse: anonymous reads as a shared link or the homepage brings them: the deal list, a deal,
  a team, a deal's joinable teams, the aggregated feed, a deal's page;
* start or join: a random shopper with a real API token joins a forming team the driver has
  seen (nearest to full first) or starts one, with an ``Idempotency-Key``;
* pay: the owner of a held seat opens a sandbox payment (with an ``Idempotency-Key``) and has
  the sandbox succeed it (the test helper standing in for the shopper's approval). Seats of teams
  that filled are paid first, so teams succeed; the rest stay unpaid until their one-minute
  hold runs out or their team's window closes, so the worker releases seats, fails teams and
  voids or refunds what was paid, all through the run.

One keyed write in twenty is sent again with the same key; a different answer is a breach of
invariant 7. Every feed item's propensity must lie in (0, 1] (invariant 12).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

import pintuan.models  # noqa: F401  (every table mapped, as in every pintuan command)
from bench.seed_joins import add_users, create_merchant
from bench.soak.client import Answer, Connection, TransportError
from pintuan.accounts import service as accounts
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.deals import service as deals
from pintuan.domain.deals import Vertical
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now

MIX = (("browse", 0.80), ("join", 0.15), ("pay", 0.05))
BROWSE = (
    ("GET /v1/deals", 0.25),
    ("GET /v1/deals/{id}", 0.20),
    ("GET /v1/teams/{id}", 0.20),
    ("GET /v1/deals/{id}/teams", 0.15),
    ("GET /v1/feed", 0.10),
    ("GET /deals/{id}", 0.10),
)
REPEAT_SHARE = 0.05
# Answers a shopper may get that are the product working, not failing.
EXPECTED_REFUSALS = frozenset(
    {
        "team_full",
        "team_closed",
        "already_member",
        "limit_reached",
        "sold_out",
        "seat_not_payable",
        "payment_not_pending",
        "idempotency_in_progress",
    }
)


@dataclass(frozen=True)
class Seeded:
    deal_ids: list[str]
    team_sizes: dict[str, int]
    tokens: list[str]


def seed(database_url: str, *, shoppers: int, deal_count: int, window_minutes: int) -> Seeded:
    """One approved merchant with ``deal_count`` live deals (teams of 2 and 3, windows of
    ``window_minutes``, 5 at least as for any deal: a half-hour run sees windows close six
    times) and ``shoppers`` shoppers with an API token each."""
    services = build_services(Settings(database_url=database_url))
    db = services.db
    slug = f"soak-{secrets.token_hex(4)}"
    staff = create_merchant(db, slug)
    (merchant_id,) = staff.merchant_ids
    sizes = [2 + n % 2 for n in range(deal_count)]

    def make_deals(session: Session) -> list[str]:
        now = utc_now()
        ids = []
        for n, size in enumerate(sizes):
            draft = deals.DealDraft(
                merchant_id=merchant_id,
                title=f"Soak deal {n}",
                description="Seeded for the soak.",
                vertical=list(Vertical)[n % len(Vertical)],
                list_price=Money(2_000, "USD"),
                group_price=Money(1_500, "USD"),
                stock=10_000_000,
                per_user_limit=1_000,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(days=2),
                team_size=size,
                team_window_minutes=window_minutes,
            )
            deal = deals.create_deal(session, staff, draft)
            ids.append(deals.change_deal_status(session, staff, deal.id, "publish").id)
        return ids

    deal_ids = db.run_sync(make_deals)
    password_hash = services.passwords.hash(secrets.token_urlsafe(24))

    def make_shoppers(session: Session) -> list[str]:
        users = add_users(session, password_hash, f"{slug}.soak.invalid", "shopper", shoppers)
        return [accounts.issue_api_token(session, user.id, "soak").secret for user in users]

    tokens = db.run_sync(make_shoppers)
    db.dispose()
    return Seeded(deal_ids, dict(zip(deal_ids, sizes, strict=True)), tokens)


@dataclass
class Stats:
    """What one phase of traffic did: latencies per route, answers, breaches seen by the
    driver itself."""

    started: float = field(default_factory=time.monotonic)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    actions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)
    joins: int = 0
    payments: int = 0
    repeats: int = 0
    timeline: list[dict[str, float]] = field(default_factory=list)

    def record(self, route: str, seconds: float, answer: Answer) -> None:
        self.latencies[route].append(seconds)
        code = answer.code
        self.answers[f"{answer.status} {code}" if code else str(answer.status)] += 1
        if answer.status >= 500 or (answer.status >= 400 and code not in EXPECTED_REFUSALS):
            self.errors.append(f"{route}: {answer.status} {answer.body[:200]!r}")

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


@dataclass
class Held:
    seat_id: str
    team_id: str
    token: str


class Shoppers:
    """The driver's picture of the run: forming teams it has seen and seats awaiting payment."""

    def __init__(self, seeded: Seeded, host: str, port: int, rng: random.Random) -> None:
        self.seeded, self.host, self.port, self.rng = seeded, host, port, rng
        self.teams: dict[str, int] = {}  # forming team → seats the driver saw taken
        self.team_deal: dict[str, str] = {}
        self.unpaid: deque[Held] = deque(maxlen=20_000)
        self.ready: deque[Held] = deque(maxlen=20_000)
        self.team_seats: dict[str, list[Held]] = defaultdict(list)
        # A seat waits in ``unpaid`` and, once its team fills, in ``ready`` too: paid once.
        self.paying: set[str] = set()

    async def run(self, stats: Stats, until: float, users: int) -> None:
        """``users`` loops until the monotonic instant ``until``."""
        await asyncio.gather(*(self._loop(stats, until) for _ in range(users)))

    async def _loop(self, stats: Stats, until: float) -> None:
        conn = Connection(self.host, self.port)
        try:
            while time.monotonic() < until:
                action = _pick(self.rng, MIX)
                stats.actions[action] += 1
                try:
                    if action == "browse":
                        await self._browse(conn, stats)
                    elif action == "join":
                        await self._join(conn, stats)
                    elif not await self._pay(conn, stats):
                        await self._browse(conn, stats)  # nothing held to pay for yet
                except TransportError as exc:
                    stats.errors.append(str(exc))
        finally:
            conn.close()

    async def _timed(
        self, conn: Connection, stats: Stats, route: str, method: str, path: str, **kw: Any
    ) -> Answer:
        began = time.perf_counter()
        answer = await conn.request(method, path, **kw)
        stats.record(route, time.perf_counter() - began, answer)
        return answer

    async def _browse(self, conn: Connection, stats: Stats) -> None:
        route = _pick(self.rng, BROWSE)
        deal = self.rng.choice(self.seeded.deal_ids)
        team = self.rng.choice(list(self.teams)) if self.teams else None
        if route == "GET /v1/teams/{id}" and team is None:
            route = "GET /v1/deals/{id}"
        path = {
            "GET /v1/deals": "/v1/deals?limit=20",
            "GET /v1/deals/{id}": f"/v1/deals/{deal}",
            "GET /v1/teams/{id}": f"/v1/teams/{team}",
            "GET /v1/deals/{id}/teams": f"/v1/deals/{deal}/teams?joinable=true",
            "GET /v1/feed": "/v1/feed?slots=10",
            "GET /deals/{id}": f"/deals/{deal}",
        }[route]
        answer = await self._timed(conn, stats, route, "GET", path)
        if answer.status != 200:
            return
        if route == "GET /v1/deals/{id}/teams":
            for found in answer.json()["data"]:
                self._saw_team(found)
        elif route == "GET /v1/teams/{id}":
            self._saw_team(answer.json())
        elif route == "GET /v1/feed":
            for item in answer.json().get("items", []):
                if not 0 < item["propensity"] <= 1:
                    stats.breaches.append(f"invariant 12: feed item propensity {item}")

    def _saw_team(self, team: dict[str, Any]) -> None:
        if team["status"] == "forming" and team["seats_left"] > 0 and not team["solo"]:
            self.teams[team["id"]] = team["seats_taken"]
            self.team_deal[team["id"]] = team["deal_id"]
        else:
            self.teams.pop(team["id"], None)

    def _next_to_pay(self) -> Held | None:
        """A seat of a full team first, else (half the time) the oldest unpaid seat."""
        while self.ready or (self.unpaid and self.rng.random() < 0.5):
            held = self.ready.popleft() if self.ready else self.unpaid.popleft()
            if held.seat_id not in self.paying:
                self.paying.add(held.seat_id)
                return held
        return None

    async def _keyed(
        self, conn: Connection, stats: Stats, route: str, path: str, token: str, payload: Any
    ) -> Answer:
        """A POST with an Idempotency-Key; sometimes sent twice, and the two answers must match."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        answer = await self._timed(
            conn, stats, route, "POST", path, token=token, payload=payload, headers=headers
        )
        if self.rng.random() < REPEAT_SHARE and answer.status < 500:
            again = await self._timed(
                conn, stats, route, "POST", path, token=token, payload=payload, headers=headers
            )
            stats.repeats += 1
            if (again.status, again.json()) != (answer.status, answer.json()):
                stats.breaches.append(
                    f"invariant 7: {route} answered {answer.status} then {again.status} "
                    f"to the same Idempotency-Key"
                )
        return answer

    async def _join(self, conn: Connection, stats: Stats) -> None:
        token = self.rng.choice(self.seeded.tokens)
        forming = sorted(self.teams.items(), key=lambda t: -t[1])[:20]
        if forming and self.rng.random() < 0.6:
            team_id, _ = self.rng.choice(forming)
            answer = await self._keyed(
                conn, stats, "POST /v1/teams/{id}/seats", f"/v1/teams/{team_id}/seats", token, None
            )
            if answer.status == 201:
                seat = answer.json()["seat"]
                self._took(team_id, seat["id"], token)
            elif answer.code in ("team_full", "team_closed"):
                self.teams.pop(team_id, None)
        else:
            deal = self.rng.choice(self.seeded.deal_ids)
            answer = await self._keyed(
                conn, stats, "POST /v1/deals/{id}/teams", f"/v1/deals/{deal}/teams", token, None
            )
            if answer.status == 201:
                body = answer.json()
                self.team_deal[body["team"]["id"]] = deal
                self.teams[body["team"]["id"]] = 0
                self._took(body["team"]["id"], body["seat"]["id"], token)
        if answer.status == 201:
            stats.joins += 1

    def _took(self, team_id: str, seat_id: str, token: str) -> None:
        held = Held(seat_id, team_id, token)
        self.team_seats[team_id].append(held)
        size = self.seeded.team_sizes[self.team_deal[team_id]]
        self.teams[team_id] = self.teams.get(team_id, 0) + 1
        if len(self.team_seats[team_id]) >= size:
            # Full as far as the driver knows: pay its seats first so that it can succeed.
            self.teams.pop(team_id, None)
            self.ready.extend(self.team_seats.pop(team_id))
        else:
            self.unpaid.append(held)

    async def _pay(self, conn: Connection, stats: Stats) -> bool:
        held = self._next_to_pay()
        if held is None:
            return False
        opened = await self._keyed(
            conn,
            stats,
            "POST /v1/seats/{id}/payments",
            f"/v1/seats/{held.seat_id}/payments",
            held.token,
            {"provider": "sandbox"},
        )
        if opened.status != 201:
            return True
        payment = opened.json()["id"]
        # The sandbox's stand-in for the shopper approving the checkout at the provider: the
        # provider's signed webhook follows, so it takes no Idempotency-Key (a second call is
        # 409 checkout_completed, as a second approval would be at a real provider).
        settled = await self._timed(
            conn,
            stats,
            "POST /v1/test_helpers/payments/{id}/succeed",
            "POST",
            f"/v1/test_helpers/payments/{payment}/succeed",
            token=held.token,
        )
        if settled.status == 200:
            stats.payments += 1
        return True


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll, total = rng.random(), 0.0
    for name, weight in weighted:
        total += weight
        if roll < total:
            return name
    return weighted[-1][0]
