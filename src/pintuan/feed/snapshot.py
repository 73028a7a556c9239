"""The candidates a serving process can show, kept in memory: live deals (own merchants' and
partner apps' offers) with stock, of merchants not suspended, and the teams one or two seats from
full. A request never scans the database for them.

The snapshot is built whole by one read (``build_snapshot``), then kept fresh by the outbox: a
seat held, paid or released moves its team's seats and its deal's stock, a team ending closes
it, an app's offer changing changes its deal; ``refresh_from_outbox`` re-reads only the deals
those events name. A periodic whole rebuild catches what writes no event (a merchant pausing or
editing a deal, a suspension) and any event the reader passed over. Each change builds new
dictionaries and swaps them in, so a request reading the old ones on another thread is never
disturbed.

A slate's pool is a few dozen candidates of the whole snapshot, per vertical the best by a
simple prior score (discount, fill) and as many more drawn at random, so that every live offer
can be explored; the policy ranks that pool and the log keeps it whole.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from pintuan.domain.feed import CANDIDATE_FEATURES, VERTICALS, Candidate
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.teams import TeamStatus
from pintuan.events.watch import deals_of_teams, events_after, last_event_id
from pintuan.feed.pool_log import LoggedCandidate, logged_candidate
from pintuan.kit.rawsql import RawTx, Sql, raw_tx

ALMOST_FULL = (1, 2)  # seats left for a team to be a candidate of its own
_KEPT_PER_SNAPSHOT = 200_000  # entries of each of a snapshot's caches before it starts anew
EARTH_KM = 6371.0
_VERTICAL_INDEX = {
    vertical: CANDIDATE_FEATURES.index(f"vertical_{vertical}") for vertical in VERTICALS
}
_DISTANCE = CANDIDATE_FEATURES.index("distance")


@dataclass(frozen=True, slots=True)
class Market:
    """Where a viewer is, as far as eligibility goes: a deal is theirs when its merchant is in
    ``country`` or it is priced in ``currency``; no market, every deal."""

    country: str | None
    currency: str | None

    def holds(self, entry: DealEntry) -> bool:
        if self.country is None and self.currency is None:
            return True
        return entry.country == self.country or entry.currency == self.currency


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DealEntry:
    """A live deal with stock, as the feed shows and scores it."""

    id: str
    merchant_id: str
    vertical: str
    country: str
    currency: str
    is_partner: bool
    title: str
    image_urls: tuple[str, ...]
    list_price: int
    group_price: int
    team_size: int
    stock: int
    committed: int
    starts_at: datetime
    ends_at: datetime
    lat: float | None
    lon: float | None
    merchant_name: str = ""
    forming: int = 0  # teams a shopper can join now
    fill: float = 0.0  # the fullest of them: taken / size

    @property
    def discount(self) -> float:
        if self.list_price <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - self.group_price / self.list_price))


@dataclass(frozen=True, slots=True)
class TeamEntry:
    """A team one or two seats from full, window open."""

    id: str
    deal_id: str
    team_size: int
    taken: int
    created_at: datetime
    expires_at: datetime

    @property
    def seats_left(self) -> int:
        return self.team_size - self.taken


@dataclass(frozen=True, slots=True)
class Item:
    """One candidate of the snapshot: a deal, or a team with its deal."""

    kind: str
    deal: DealEntry
    team: TeamEntry | None
    prior: float
    # Derived once here: every slate reads them many times.
    item_id: str = field(init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        item_id = self.team.id if self.team is not None else self.deal.id
        object.__setattr__(self, "item_id", item_id)
        object.__setattr__(self, "key", f"{self.kind}:{item_id}")


@dataclass
class Snapshot:
    """Every candidate at one moment, by vertical, best prior first."""

    deals: dict[str, DealEntry] = field(default_factory=dict)
    teams: dict[str, TeamEntry] = field(default_factory=dict)
    by_vertical: dict[str, list[Item]] = field(default_factory=dict)
    by_key: dict[str, Item] = field(default_factory=dict)
    last_event_id: int = 0
    version: int = 0
    countries: frozenset[str] = frozenset()  # where the live deals' merchants are
    # Pools narrowed to a market, per snapshot version (the catalogue has few markets).
    _markets: dict[Market, dict[str, list[Item]]] = field(default_factory=dict)
    # Each item's features that do not change with time or the viewer, once per snapshot.
    _features: dict[str, FixedFeatures] = field(default_factory=dict)
    # Each item's last candidate (far or near) and its logged entry, with the second it was
    # asked for and its time_left: within a second it is the same, and most windows are long,
    # so the rounded share ahead stays the same for many seconds.
    _candidates: dict[
        tuple[str, bool], tuple[float, float, tuple[Candidate, str, LoggedCandidate]]
    ] = field(default_factory=dict)

    def item(self, key: str) -> Item | None:
        return self.by_key.get(key)

    def for_market(self, market: Market) -> dict[str, list[Item]]:
        found = self._markets.get(market)
        if found is None:
            found = {
                vertical: [item for item in items if market.holds(item.deal)]
                for vertical, items in self.by_vertical.items()
            }
            if len(self._markets) > 500:  # a hand-made market per request must not grow this
                self._markets.clear()
            self._markets[market] = found
        return found

    def fixed_features(self, item: Item) -> FixedFeatures:
        """``fixed_features(item)``, kept for this snapshot's lifetime (a refresh from the
        outbox builds a new snapshot, so a changed deal or team is computed again)."""
        found = self._features.get(item.key)
        if found is None:
            found = fixed_features(item)
            if len(self._features) > _KEPT_PER_SNAPSHOT:
                self._features.clear()
            self._features[item.key] = found
        return found

    def keep_from(self, older: Snapshot) -> None:
        """Take over what ``older`` kept of the items this snapshot holds unchanged (the very
        same item, not one read again)."""

        def unchanged(key: str) -> bool:
            item = self.by_key.get(key)
            return item is not None and item is older.by_key.get(key)

        self._features = {k: v for k, v in older._features.items() if unchanged(k)}
        self._candidates = {k: v for k, v in older._candidates.items() if unchanged(k[0])}

    def candidate(
        self, item: Item, near: bool, clock: float
    ) -> tuple[Candidate, str, LoggedCandidate]:
        """``_candidate_of`` the item at POSIX time ``clock``, the last one kept while its
        ``time_left`` is unchanged (not even computed again within the same ``clock``)."""
        key = (item.key, near)
        last = self._candidates.get(key)
        if last is not None and last[0] == clock:
            return last[2]
        fixed = self.fixed_features(item)
        left = fixed.time_left(clock)
        made = last[2] if last is not None and last[1] == left else None
        if made is None:
            made = _candidate_of(item, fixed, near, left)
            if len(self._candidates) > _KEPT_PER_SNAPSHOT:
                self._candidates.clear()
        self._candidates[key] = (clock, left, made)
        return made


# The candidates are read through the driver, not the ORM: a whole rebuild reads every live
# deal (10,000 and more), and building each row's entry from the ORM's row cost four times the
# query itself, on a thread that shares the interpreter with the requests.
_DEALS = """
    SELECT d.id, d.merchant_id, d.vertical, m.country, d.currency, d.app_id IS NOT NULL,
           d.title, d.image_urls, d.list_price_amount, d.group_price_amount, d.team_size,
           d.stock, d.committed, d.starts_at, d.ends_at, d.location_lat, d.location_lon, m.name
    FROM deals d JOIN merchants m ON m.id = d.merchant_id
    WHERE d.status = :live AND d.merchant_suspended = :no AND d.committed < d.stock
      AND d.starts_at <= :now AND d.ends_at > :now {only}
"""
LIVE_DEALS = Sql(_DEALS.format(only=""), live=DealStatus.LIVE, no=False)
LIVE_DEALS_AMONG = Sql(_DEALS.format(only="AND d.id IN_LIST(:ids)"), live=DealStatus.LIVE, no=False)
_TEAMS = """
    SELECT id, deal_id, team_size, taken, created_at, expires_at FROM teams
    WHERE status = :forming AND expires_at > :now AND taken > 0 AND taken < team_size
      AND solo = :no {only}
"""
JOINABLE_TEAMS = Sql(_TEAMS.format(only=""), forming=TeamStatus.FORMING, no=False)
JOINABLE_TEAMS_AMONG = Sql(
    _TEAMS.format(only="AND deal_id IN_LIST(:ids)"), forming=TeamStatus.FORMING, no=False
)


def _deal_entry(tx: RawTx, row: Sequence[Any]) -> DealEntry:
    (
        deal_id,
        merchant_id,
        vertical,
        country,
        currency,
        is_partner,
        title,
        image_urls,
        list_price,
        group_price,
        team_size,
        stock,
        committed,
        starts_at,
        ends_at,
        lat,
        lon,
        merchant_name,
    ) = row
    if isinstance(image_urls, str):  # SQLite keeps JSON as text; psycopg decodes it
        image_urls = json.loads(image_urls)
    return DealEntry(
        deal_id,
        merchant_id,
        vertical,
        country,
        currency,
        bool(is_partner),
        title,
        tuple(image_urls or ()),
        int(list_price),
        int(group_price),
        int(team_size),
        int(stock),
        int(committed),
        tx.read_instant(starts_at),
        tx.read_instant(ends_at),
        lat,
        lon,
        merchant_name,
    )


def _read_deals(tx: RawTx, now: datetime, ids: Sequence[str] | None) -> list[DealEntry]:
    at = tx.instant(now)
    if ids is None:
        rows = tx.all(LIVE_DEALS, {"now": at})
    else:
        rows = tx.all(LIVE_DEALS_AMONG, {"now": at, "ids": list(ids)})
    return [_deal_entry(tx, row) for row in rows]


def _read_teams(tx: RawTx, now: datetime, deal_ids: Sequence[str] | None) -> list[TeamEntry]:
    at, read = tx.instant(now), tx.read_instant
    if deal_ids is None:
        rows = tx.all(JOINABLE_TEAMS, {"now": at})
    else:
        rows = tx.all(JOINABLE_TEAMS_AMONG, {"now": at, "ids": list(deal_ids)})
    return [
        TeamEntry(team_id, deal_id, int(size), int(taken), read(created), read(expires))
        for team_id, deal_id, size, taken, created, expires in rows
    ]


def _latest_event_id(session: Session) -> int:
    return last_event_id(raw_tx(session))


def _assemble(
    deals: dict[str, DealEntry],
    teams: dict[str, TeamEntry],
    last_event_id: int,
    version: int,
) -> Snapshot:
    joinable: dict[str, list[TeamEntry]] = {}
    for team in teams.values():
        joinable.setdefault(team.deal_id, []).append(team)
    filled: dict[str, DealEntry] = {}
    for deal_id, deal in deals.items():
        own = joinable.get(deal_id)
        if not own:  # most deals: nobody is forming a team (``replace`` is a deal's dearest step)
            filled[deal_id] = (
                deal
                if deal.forming == 0 and deal.fill == 0.0
                else replace(deal, forming=0, fill=0.0)
            )
            continue
        fill = max(t.taken / t.team_size for t in own)
        filled[deal_id] = replace(deal, forming=len(own), fill=fill)
    items: list[Item] = []
    for deal in filled.values():
        items.append(Item("deal", deal, None, deal.discount + deal.fill))
    kept_teams: dict[str, TeamEntry] = {}
    for team in teams.values():
        its_deal = filled.get(team.deal_id)
        if its_deal is None:
            continue  # its deal is not live, or sold out
        kept_teams[team.id] = team
        if team.seats_left in ALMOST_FULL:
            # Almost full teams first: one more person ends the wait for everyone in them.
            prior = 1.0 + its_deal.discount + team.taken / team.team_size
            items.append(Item("team", its_deal, team, prior))
    by_vertical: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: (-i.prior, i.item_id)):
        by_vertical.setdefault(item.deal.vertical, []).append(item)
    return Snapshot(
        deals=filled,
        teams=kept_teams,
        by_vertical=by_vertical,
        by_key={item.key: item for item in items},
        last_event_id=last_event_id,
        version=version,
        countries=frozenset(deal.country for deal in filled.values()),
    )


def build_snapshot(session: Session, now: datetime, version: int = 0) -> Snapshot:
    """Every candidate, read whole (three queries)."""
    last = _latest_event_id(session)
    tx = raw_tx(session)
    deals = {d.id: d for d in _read_deals(tx, now, None)}
    teams = {t.id: t for t in _read_teams(tx, now, None)}
    return _assemble(deals, teams, last, version)


_REFRESH_BATCH = 2000


def refresh_from_outbox(session: Session, snapshot: Snapshot, now: datetime) -> Snapshot | None:
    """The snapshot with the deals and teams that new outbox events name read again, or None
    when no event came since it was built."""
    # Through the driver: the ORM's rendering of a list of hundreds of team ids, one bound
    # value each, cost more than the rest of a refresh under a steady stream of joins.
    tx = raw_tx(session)
    rows = events_after(tx, snapshot.last_event_id, _REFRESH_BATCH)
    if not rows:
        return None
    team_ids: set[str] = set()
    deal_ids: set[str] = set()
    for _, type_, subject, team_id, _deal_id in rows:
        if type_.startswith("seat."):
            if team_id:
                team_ids.add(team_id)
        elif type_.startswith("team."):
            team_ids.add(subject)
        elif type_.startswith("offer."):
            deal_ids.add(subject)
    last = int(rows[-1][0])
    if team_ids:
        deal_ids |= deals_of_teams(tx, team_ids)
    if not deal_ids:
        return replace(snapshot, last_event_id=last)
    wanted = sorted(deal_ids)
    fresh = _assemble(
        {d.id: d for d in _read_deals(tx, now, wanted)},
        {t.id: t for t in _read_teams(tx, now, wanted)},
        last,
        snapshot.version + 1,
    )
    return _patched(snapshot, deal_ids, fresh)


def _by_prior(item: Item) -> tuple[float, str]:
    return -item.prior, item.item_id


def _patched(snapshot: Snapshot, deal_ids: set[str], fresh: Snapshot) -> Snapshot:
    """``snapshot`` with the deals ``deal_ids`` and their teams replaced by what ``fresh`` (the
    same deals read again, assembled alone) holds of them: the same snapshot as assembling
    everything anew, since an item depends on its own deal and that deal's teams only, at the
    cost of the changed deals instead of all of them. The kept features and candidates of the
    items that did not change carry over."""
    deals = {k: v for k, v in snapshot.deals.items() if k not in deal_ids}
    deals.update(fresh.deals)
    teams = {k: v for k, v in snapshot.teams.items() if v.deal_id not in deal_ids}
    teams.update(fresh.teams)
    by_vertical: dict[str, list[Item]] = {}
    for vertical in {*snapshot.by_vertical, *fresh.by_vertical}:
        kept = [i for i in snapshot.by_vertical.get(vertical, ()) if i.deal.id not in deal_ids]
        new = fresh.by_vertical.get(vertical, [])
        merged = sorted(kept + new, key=_by_prior) if new else kept
        if merged:
            by_vertical[vertical] = merged
    by_key = {k: v for k, v in snapshot.by_key.items() if v.deal.id not in deal_ids}
    by_key.update(fresh.by_key)
    patched = Snapshot(
        deals=deals,
        teams=teams,
        by_vertical=by_vertical,
        by_key=by_key,
        last_event_id=fresh.last_event_id,
        version=fresh.version,
        countries=frozenset(deal.country for deal in deals.values()),
    )
    patched.keep_from(snapshot)
    return patched


# ---------------------------------------------------------------------------- features


def distance_km(a: Place, lat: float, lon: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(lat)
    dp, dl = p2 - p1, math.radians(lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class FixedFeatures:
    """What a candidate's features are made of, computed once per item and snapshot: those
    before and after ``time_left`` (far from the viewer and near them), and the window whose
    share still ahead ``time_left`` is (as POSIX seconds). ``logged`` is the candidate's fixed
    part as the log keeps it once, and the ``json_`` parts its entry in a slate's logged pool
    (``logged_pool``): up to ``time_left``, and after it, far and near."""

    before: tuple[float, ...]
    far: tuple[float, ...]
    near: tuple[float, ...]
    ends: float
    span: float
    logged: LoggedCandidate
    json_head: str
    json_far: str
    json_near: str

    def time_left(self, clock: float) -> float:
        """The share of the window still ahead at POSIX time ``clock``, as the features give it
        (rounded to four places)."""
        span = self.span
        return round(max(0.0, min(1.0, (self.ends - clock) / span)) if span > 0 else 0.0, 4)


_TIME_LEFT = CANDIDATE_FEATURES.index("time_left")


def fixed_features(item: Item) -> FixedFeatures:
    """The parts of the item's features that depend neither on the moment nor on the viewer."""
    deal, team = item.deal, item.team
    fill = team.taken / team.team_size if team is not None else deal.fill
    start, end = (team.created_at, team.expires_at) if team else (deal.starts_at, deal.ends_at)
    features = [0.0] * len(CANDIDATE_FEATURES)
    features[0] = 1.0
    features[1] = round(deal.discount, 4)
    features[2] = round(fill, 4)
    features[4] = round(min(1.0, math.log10(deal.group_price + 1) / 7.0), 4)
    features[6] = 1.0 if team is not None else 0.0
    features[7] = 1.0 if deal.is_partner else 0.0
    index = _VERTICAL_INDEX.get(deal.vertical)
    if index is not None:
        features[index] = 1.0
    near = list(features)
    near[_DISTANCE] = 1.0
    logged = logged_candidate(item.kind, item.item_id, deal.vertical, deal.merchant_id, features)
    return FixedFeatures(
        before=tuple(features[:_TIME_LEFT]),
        far=tuple(features[_TIME_LEFT + 1 :]),
        near=tuple(near[_TIME_LEFT + 1 :]),
        ends=end.timestamp(),
        span=(end - start).total_seconds(),
        logged=logged,
        # '["<id>",' + time_left + ',<distance>]'
        json_head=f'["{logged.id}",',
        json_far=",0]",
        json_near=",1]",
    )


def _candidate_of(
    item: Item, fixed: FixedFeatures, near: bool, left: float
) -> tuple[Candidate, str, LoggedCandidate]:
    """The item as a policy sees it with ``time_left`` ``left``, its entry in a slate's logged
    pool, and its fixed part as the log keeps it."""
    after, json_after = (fixed.near, fixed.json_near) if near else (fixed.far, fixed.json_far)
    deal = item.deal
    candidate = Candidate(
        item.kind, item.item_id, deal.vertical, deal.merchant_id, (*fixed.before, left, *after)
    )
    return candidate, f"{fixed.json_head}{left!r}{json_after}", fixed.logged


@dataclass(frozen=True, slots=True)
class PoolAsk:
    """What narrows a viewer's pool."""

    market: Market
    vertical: str | None
    place: Place | None
    exclude: frozenset[str]  # item ids already shown (a continued slate)
    must: tuple[str, ...]  # candidate keys operators pinned
    size: int
    near_km: float
    radius_km: float


def pool_for(snapshot: Snapshot, ask: PoolAsk, rng: random.Random) -> list[Item]:
    """Up to ``ask.size`` candidates: pinned ones, then per vertical the best half of its
    quota by prior and the other half drawn at random from the rest."""
    lists = snapshot.for_market(ask.market)
    verticals = [ask.vertical] if ask.vertical else [v for v in VERTICALS if lists.get(v)]

    def fits(item: Item) -> bool:
        if item.item_id in ask.exclude:
            return False
        if ask.place is not None and item.deal.lat is not None and item.deal.lon is not None:
            return distance_km(ask.place, item.deal.lat, item.deal.lon) <= ask.radius_km
        return True

    chosen: dict[str, Item] = {}
    for key in ask.must:
        item = snapshot.item(key)
        if (
            item is not None
            and fits(item)
            and ask.market.holds(item.deal)
            and (ask.vertical is None or item.deal.vertical == ask.vertical)
        ):
            chosen[key] = item
    if not verticals:
        return list(chosen.values())
    quota = max(1, (ask.size - len(chosen)) // len(verticals))
    for vertical in verticals:
        items = lists.get(vertical, [])
        best = quota - quota // 2
        taken = 0
        rest_from = len(items)
        for index, item in enumerate(items):
            if taken >= best:
                rest_from = index
                break
            if item.key not in chosen and fits(item):
                chosen[item.key] = item
                taken += 1
        rest = len(items) - rest_from
        if rest <= 0:
            continue
        wanted = quota - taken
        # Draw a few more than wanted: some drawn may be excluded or too far.
        for index in rng.sample(range(rest_from, len(items)), min(rest, wanted * 2)):
            if wanted <= 0:
                break
            item = items[index]
            if item.key not in chosen and fits(item):
                chosen[item.key] = item
                wanted -= 1
    return list(chosen.values())


@dataclass(frozen=True, slots=True)
class LoggedPool:
    """A slate's pool as the policy sees it and as the log writes it."""

    candidates: list[Candidate]
    json: str  # the slate's pool: [[feed_candidates.id, time_left, distance], ...]
    fixed: list[LoggedCandidate]  # the fixed parts it names, each to be logged once


def logged_pool(
    items: Iterable[Item],
    now: datetime,
    place: Place | None,
    near_km: float,
    snapshot: Snapshot | None = None,
) -> LoggedPool:
    """The pool's candidates as the policy sees them, their features in ``CANDIDATE_FEATURES``
    order (``time_left``: the share of the team's window, or of the deal's life, still ahead;
    ``distance``: 1 within ``near_km`` of ``place``), and the same pool as the log writes it
    (``feed.pool_log``), put together from parts kept per item and snapshot (with ``snapshot``),
    so that no slate turns fifty candidates into JSON anew. The feed's clock counts whole
    seconds: ``time_left`` is the share ahead at the start of ``now``'s second, so the slates
    of one second share their candidates."""
    out: list[Candidate] = []
    parts: list[str] = []
    fixed: list[LoggedCandidate] = []
    clock = float(int(now.timestamp()))
    for item in items:
        deal = item.deal
        near = (
            place is not None
            and deal.lat is not None
            and deal.lon is not None
            and distance_km(place, deal.lat, deal.lon) <= near_km
        )
        if snapshot is not None:
            candidate, part, logged = snapshot.candidate(item, near, clock)
        else:
            features = fixed_features(item)
            candidate, part, logged = _candidate_of(item, features, near, features.time_left(clock))
        out.append(candidate)
        parts.append(part)
        fixed.append(logged)
    return LoggedPool(out, "[" + ",".join(parts) + "]", fixed)
