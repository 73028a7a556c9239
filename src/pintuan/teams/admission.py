"""Hot-deal admission in Redis: a start or join reserves a unit of the deal's stock (and, for a
join, the team's place) in Redis before its database transaction, so that the buyers of one hot
deal who cannot have it are told so by Redis and never queue on the deal's row.

The database stays the source of truth. Its conditional writes (``teams.service``) still run
for every admitted request, so nothing Redis says can oversell a deal or overfill a team; Redis
only decides who does not get to try. Each reservation is one member of the deal's *pending*
set, with a deadline:

* the database took the seat → :func:`confirm` drops the member (the unit stays counted);
* the database refused, the request failed, or an idempotent repeat replayed an earlier answer
  → :func:`give_back` drops the member and returns the unit and the place;
* the process died in between → the member's deadline (``redis_reservation_seconds``) passes
  and the next admission of that deal, or the reconciler, returns it.

Counters drift from the database when seats end there (holds lapse, shoppers cancel, teams
fail), when a process dies between the two, and when Redis restarts. The reconciler
(:func:`reconcile`, run by the worker every ``redis_reconcile_seconds`` and by
``pintuan reconcile-admission``) sets every counter Redis holds to the database's count plus
the reservations still pending. A restart is detected by Redis's own ``run_id``, new at every
start: the reconciler keeps the one its counters were built under in the *epoch* key. A Redis
that restarted empty has no epoch: admission then stands aside (every request goes to the
database as without Redis) until an epoch is set, and counters are seeded again from the
database as deals are asked for. A Redis that restarted from a snapshot has an epoch with an
older run id: the reconciler wipes what it holds and starts the same way.

Any Redis error makes admission stand aside for that request. The scripts name keys they derive
from the team (its deal's keys), so this runs on one Redis, not on Redis Cluster.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.teams import TeamStatus, sold_out, team_closed, team_full
from pintuan.errors import AppError
from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.redislink import FAILURES, PREFIX, RedisLink, run_script, run_script_blocking
from pintuan.services import Services

log = logging.getLogger(__name__)

KEYS = f"{PREFIX}adm:"
EPOCH = f"{KEYS}epoch"
DEALS = f"{KEYS}deals"  # the deals whose counters Redis holds, for the reconciler
TEAMS = f"{KEYS}teams"
# Counters of a deal or team nobody asks for are forgotten after this long.
IDLE = timedelta(hours=1)

# Returns a pending reservation: the unit to its deal, the place to its team. Defined once and
# put in front of each script that needs it.
_RELEASE = """
local function release(prefix, deal_id, member)
  if redis.call('ZREM', prefix .. 'pending:' .. deal_id, member) == 0 then return 0 end
  local deal_key = prefix .. 'deal:' .. deal_id
  if redis.call('EXISTS', deal_key) == 1 then redis.call('HINCRBY', deal_key, 'taken', -1) end
  local team_id = string.match(member, '|(.*)$')
  if team_id and team_id ~= '' then
    local team_key = prefix .. 'team:' .. team_id
    if redis.call('EXISTS', team_key) == 1 then redis.call('HINCRBY', team_key, 'taken', -1) end
  end
  return 1
end
local function reap(prefix, deal_id, now)
  local due = redis.call('ZRANGEBYSCORE', prefix .. 'pending:' .. deal_id, '-inf', now,
                         'LIMIT', 0, 100)
  for _, member in ipairs(due) do release(prefix, deal_id, member) end
  return #due
end
"""

# ARGV: prefix, token, now, deadline, idle, team id ('' to start a team), deal id ('' to
# join), solo ('1' buying alone). Answers {outcome, deal id}.
_ADMIT = (
    _RELEASE
    + """
local prefix, token, now, deadline, idle = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local team_id, deal_id, solo = ARGV[6], ARGV[7], ARGV[8]
if redis.call('EXISTS', prefix .. 'epoch') == 0 then return {'stale', deal_id} end
local team_key = ''
if team_id ~= '' then
  team_key = prefix .. 'team:' .. team_id
  deal_id = redis.call('HGET', team_key, 'deal')
  if not deal_id then return {'unknown', ''} end
end
local deal_key = prefix .. 'deal:' .. deal_id
if redis.call('EXISTS', deal_key) == 0 then return {'unknown', deal_id} end
reap(prefix, deal_id, now)
local d = redis.call('HMGET', deal_key, 'stock', 'taken', 'open', 'starts', 'ends', 'solo')
-- A deal not open, or not sold alone, is the database's to word.
if d[3] ~= '1' or now < tonumber(d[4]) or now >= tonumber(d[5]) then return {'pass', deal_id} end
if solo == '1' and d[6] ~= '1' then return {'pass', deal_id} end
if tonumber(d[2]) >= tonumber(d[1]) then return {'sold_out', deal_id} end
if team_key ~= '' then
  local t = redis.call('HMGET', team_key, 'size', 'taken', 'open', 'expires')
  if t[3] ~= '1' or now >= tonumber(t[4]) then return {'team_closed', deal_id} end
  if tonumber(t[2]) >= tonumber(t[1]) then return {'team_full', deal_id} end
  redis.call('HINCRBY', team_key, 'taken', 1)
  redis.call('PEXPIRE', team_key, idle)
end
redis.call('HINCRBY', deal_key, 'taken', 1)
local pending_key = prefix .. 'pending:' .. deal_id
redis.call('ZADD', pending_key, deadline, token .. '|' .. team_id)
redis.call('PEXPIRE', deal_key, idle)
redis.call('PEXPIRE', pending_key, idle)
return {'admitted', deal_id}
"""
)

# ARGV: prefix, deal id, member. 1 when it was still pending.
_GIVE_BACK = _RELEASE + "return release(ARGV[1], ARGV[2], ARGV[3])"
# ARGV: prefix, deal id, member.
_CONFIRM = "return redis.call('ZREM', ARGV[1] .. 'pending:' .. ARGV[2], ARGV[3])"

# Sets a deal's counter (and a team's) from the database's counts plus what is still pending.
# ARGV: prefix, now, idle, only_if_absent ('1': seeding), deal id, stock, committed, open,
# starts, ends, solo, then team id ('' for none), size, taken, open, expires.
_SET_COUNTS = (
    _RELEASE
    + """
local prefix, now, idle, seeding = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local deal_id, team_id = ARGV[5], ARGV[12]
if redis.call('EXISTS', prefix .. 'epoch') == 0 then return 0 end
local deal_key = prefix .. 'deal:' .. deal_id
local pending_key = prefix .. 'pending:' .. deal_id
reap(prefix, deal_id, now)
if not (seeding and redis.call('EXISTS', deal_key) == 1) then
  redis.call('HSET', deal_key, 'stock', ARGV[6], 'taken',
             tonumber(ARGV[7]) + redis.call('ZCARD', pending_key), 'open', ARGV[8],
             'starts', ARGV[9], 'ends', ARGV[10], 'solo', ARGV[11])
  redis.call('PEXPIRE', deal_key, idle)
  redis.call('SADD', prefix .. 'deals', deal_id)
end
if team_id ~= '' then
  local team_key = prefix .. 'team:' .. team_id
  if not (seeding and redis.call('EXISTS', team_key) == 1) then
    local held = 0
    for _, member in ipairs(redis.call('ZRANGE', pending_key, 0, -1)) do
      if string.match(member, '|(.*)$') == team_id then held = held + 1 end
    end
    redis.call('HSET', team_key, 'deal', deal_id, 'size', ARGV[13],
               'taken', tonumber(ARGV[14]) + held, 'open', ARGV[15], 'expires', ARGV[16])
    redis.call('PEXPIRE', team_key, idle)
    redis.call('SADD', prefix .. 'teams', team_id)
  end
end
return 1
"""
)

_REFUSALS = {"sold_out": sold_out, "team_full": team_full, "team_closed": team_closed}


@dataclass(frozen=True, slots=True)
class Ticket:
    """What admission made of a request: a reservation to confirm or give back (``member``),
    a refusal to answer without the database, or neither (admission stood aside)."""

    deal_id: str = ""
    member: str | None = None
    refusal: str | None = None

    def refused(self) -> AppError | None:
        """The problem to answer with, when Redis refused the request."""
        return _REFUSALS[self.refusal]() if self.refusal else None


STAND_ASIDE = Ticket()


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


async def admit(
    services: Services,
    now: datetime,
    *,
    team_id: str | None = None,
    deal_id: str | None = None,
    solo: bool = False,
) -> Ticket:
    """Reserve a unit of the deal's stock (and the team's place, joining ``team_id``) in Redis
    for a start or join about to run in the database; or refuse it (sold out, team full or
    closed) from Redis alone. Counters Redis does not hold yet are seeded from the database
    first. Without Redis, or when Redis fails or restarted empty, admission stands aside."""
    link = services.redis
    if link is None:
        return STAND_ASIDE
    token = secrets.token_hex(8)
    deadline = now + timedelta(seconds=services.settings.redis_reservation_seconds)
    args = [KEYS, token, _ms(now), _ms(deadline), _ms_of(IDLE), team_id or "", deal_id or ""]
    args.append("1" if solo else "0")
    try:
        client: Any = link.client()
        outcome, found = await run_script(client, _ADMIT, *args)
        if outcome == "unknown":
            seed = await services.db.run_raw(_seed_of, team_id, deal_id, write=False)
            if seed is None:
                return STAND_ASIDE  # no such deal or team (or a solo one): the database says
            await run_script(client, _SET_COUNTS, *_counts_args(now, seed, seeding=True))
            outcome, found = await run_script(client, _ADMIT, *args)
        if outcome == "stale":
            await _start_epoch(link)
            return STAND_ASIDE
    except FAILURES as exc:
        log.warning("admission stands aside: Redis failed", extra={"error": str(exc)})
        return STAND_ASIDE
    if outcome == "admitted":
        return Ticket(found, f"{token}|{team_id or ''}")
    if outcome in _REFUSALS:
        return Ticket(found, refusal=outcome)
    return STAND_ASIDE


async def confirm(services: Services, ticket: Ticket) -> None:
    """The database took the seat: the reservation's unit stays counted."""
    await _settle(services, ticket, _CONFIRM)


async def give_back(services: Services, ticket: Ticket) -> None:
    """The database took no seat for this reservation: return its unit and place."""
    await _settle(services, ticket, _GIVE_BACK)


async def _settle(services: Services, ticket: Ticket, script: str) -> None:
    if services.redis is None or ticket.member is None:
        return
    try:
        client: Any = services.redis.client()
        await run_script(client, script, KEYS, ticket.deal_id, ticket.member)
    except FAILURES as exc:
        # The reservation's deadline, then the reconciler, put this right.
        log.warning("admission could not settle a reservation", extra={"error": str(exc)})


def _ms_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


async def _start_epoch(link: RedisLink) -> None:
    """A Redis with no epoch restarted empty (or was never used): it holds no counter, so
    admission may start at once under its run id."""
    client: Any = link.client()
    run_id = (await client.info("server"))["run_id"]
    await client.set(EPOCH, run_id, nx=True)


# ---------------------------------------------------------------------------- the database's counts

_DEAL_COLUMNS = """d.id AS deal_id, d.stock, d.committed, d.status AS deal_status,
    d.merchant_suspended, d.starts_at, d.ends_at, d.allow_solo"""
DEAL_COUNTS = Sql(f"SELECT {_DEAL_COLUMNS} FROM deals d WHERE d.id IN_LIST(:ids)")  # noqa: S608
TEAM_COUNTS = Sql(
    f"""
    SELECT t.id AS team_id, t.team_size, t.taken, t.status AS team_status, t.expires_at, t.solo,
           {_DEAL_COLUMNS}
    FROM teams t JOIN deals d ON d.id = t.deal_id WHERE t.id IN_LIST(:ids)
"""  # noqa: S608 (column names of our own)
)


@dataclass(frozen=True, slots=True)
class DealCounts:
    deal_id: str
    stock: int
    committed: int
    deal_status: str
    merchant_suspended: bool | int
    starts_at: Any
    ends_at: Any
    allow_solo: bool | int


@dataclass(frozen=True, slots=True)
class TeamCounts(DealCounts):
    team_id: str = ""
    team_size: int = 0
    taken: int = 0
    team_status: str = ""
    expires_at: Any = None
    solo: bool | int = False


@dataclass(frozen=True, slots=True)
class _Seed:
    """A deal's counts and its instants in milliseconds, with one team's when joining."""

    deal: list[str]
    team: list[str]


def _deal_fields(tx: RawTx, row: DealCounts) -> list[str]:
    is_open = row.deal_status == DealStatus.LIVE.value and not row.merchant_suspended
    return [
        row.deal_id,
        str(row.stock),
        str(row.committed),
        "1" if is_open else "0",
        str(_ms(tx.read_instant(row.starts_at))),
        str(_ms(tx.read_instant(row.ends_at))),
        "1" if row.allow_solo else "0",
    ]


def _team_fields(tx: RawTx, row: TeamCounts) -> list[str]:
    is_open = row.team_status == TeamStatus.FORMING.value
    expires = _ms(tx.read_instant(row.expires_at))
    return [row.team_id, str(row.team_size), str(row.taken), "1" if is_open else "0", str(expires)]


_NO_TEAM = ["", "0", "0", "0", "0"]


def _seed_of(tx: RawTx, team_id: str | None, deal_id: str | None) -> _Seed | None:
    if team_id:
        team = tx.one_as(TeamCounts, TEAM_COUNTS, {"ids": [team_id]})
        if team is None or team.solo:
            return None  # a solo team takes no one: the database words that refusal
        return _Seed(_deal_fields(tx, team), _team_fields(tx, team))
    deal = tx.one_as(DealCounts, DEAL_COUNTS, {"ids": [deal_id]})
    return None if deal is None else _Seed(_deal_fields(tx, deal), _NO_TEAM)


def _counts_args(now: datetime, seed: _Seed, *, seeding: bool) -> list[Any]:
    return [KEYS, _ms(now), _ms_of(IDLE), "1" if seeding else "0", *seed.deal, *seed.team]


# ---------------------------------------------------------------------------- the reconciler


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one pass of the reconciler did."""

    restarted: bool  # Redis had restarted (or was new): its counters were wiped
    deals: int  # deal counters set from the database
    teams: int
    forgotten: int  # counters of deals and teams the database no longer has, or nobody asked for


BATCH = 500


def reconcile(link: RedisLink, db: Database, now: datetime) -> Reconciled:
    """Set every admission counter Redis holds to the database's count plus the reservations
    still pending, returning those past their deadline; after a Redis restart, wipe them all
    and start a new epoch (counters are then seeded again as deals are asked for)."""
    client: Any = link.blocking()
    run_id = client.info("server")["run_id"]
    if client.get(EPOCH) != run_id:
        # Stand admission aside first, so nothing is admitted on counters being wiped.
        client.delete(EPOCH)
        for batch in _batches(client.scan_iter(match=f"{KEYS}*", count=BATCH)):
            client.delete(*batch)
        client.set(EPOCH, run_id)
        log.info("admission counters wiped after a Redis restart", extra={"run_id": run_id})
        return Reconciled(True, 0, 0, 0)
    deals = teams = forgotten = 0
    for batch in _batches(client.sscan_iter(DEALS, count=BATCH)):
        rows = db.run_raw_sync(_deal_rows, batch, write=False)
        for seed in rows:
            run_script_blocking(client, _SET_COUNTS, *_counts_args(now, seed, seeding=False))
        deals += len(rows)
        forgotten += _forget(client, DEALS, "deal:", batch, {seed.deal[0] for seed in rows})
    for batch in _batches(client.sscan_iter(TEAMS, count=BATCH)):
        rows = db.run_raw_sync(_team_rows, batch, write=False)
        for seed in rows:
            run_script_blocking(client, _SET_COUNTS, *_counts_args(now, seed, seeding=False))
        teams += len(rows)
        forgotten += _forget(client, TEAMS, "team:", batch, {seed.team[0] for seed in rows})
    return Reconciled(False, deals, teams, forgotten)


def _deal_rows(tx: RawTx, ids: list[str]) -> list[_Seed]:
    rows = tx.all_as(DealCounts, DEAL_COUNTS, {"ids": ids})
    return [_Seed(_deal_fields(tx, row), _NO_TEAM) for row in rows]


def _team_rows(tx: RawTx, ids: list[str]) -> list[_Seed]:
    rows = tx.all_as(TeamCounts, TEAM_COUNTS, {"ids": ids})
    return [_Seed(_deal_fields(tx, row), _team_fields(tx, row)) for row in rows]


def _forget(client: Any, members: str, kind: str, asked: Sequence[str], found: set[str]) -> int:
    """Drop from ``members`` the ids the database no longer has (and their counters), and the
    ids whose counters expired unasked."""
    gone = [i for i in asked if i not in found or not client.exists(f"{KEYS}{kind}{i}")]
    if gone:
        client.srem(members, *gone)
        client.delete(*(f"{KEYS}{kind}{i}" for i in gone))
    return len(gone)


def _batches(ids: Any) -> Any:
    batch: list[str] = []
    for one in ids:
        batch.append(one)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class Balance:
    """Redis's counters against the database's, for the tests and the command line."""

    pending: int  # reservations neither confirmed nor given back
    deals_off: dict[str, tuple[int, int]]  # deal id: (Redis's count, the database's)
    teams_off: dict[str, tuple[int, int]]


def balance(link: RedisLink, db: Database) -> Balance:
    """How far Redis's counters are from the database's (nothing pending and no difference
    once every request has ended and the reconciler has run)."""
    client: Any = link.blocking()
    deal_ids = sorted(client.smembers(DEALS))
    team_ids = sorted(client.smembers(TEAMS))
    pending = sum(client.zcard(f"{KEYS}pending:{i}") for i in deal_ids)
    deal_rows = db.run_raw_sync(_deal_rows, deal_ids, write=False) if deal_ids else []
    team_rows = db.run_raw_sync(_team_rows, team_ids, write=False) if team_ids else []
    deals_off: dict[str, tuple[int, int]] = {}
    for seed in deal_rows:
        held = int(client.hget(f"{KEYS}deal:{seed.deal[0]}", "taken") or 0)
        if held != int(seed.deal[2]):
            deals_off[seed.deal[0]] = (held, int(seed.deal[2]))
    teams_off: dict[str, tuple[int, int]] = {}
    for seed in team_rows:
        if seed.team[3] != "1":
            continue  # a closed team admits nobody, whatever its count
        held = int(client.hget(f"{KEYS}team:{seed.team[0]}", "taken") or 0)
        if held != int(seed.team[2]):
            teams_off[seed.team[0]] = (held, int(seed.team[2]))
    return Balance(pending, deals_off, teams_off)
