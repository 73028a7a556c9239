"""Serving the feed in one process: the candidate snapshot, the operators' rules and the
policies in memory, and a buffer of slates and clicks written in batches off the request path.

A request draws its slate from memory only (the viewer's history is one indexed read, cached a
minute, and none for a viewer without an id). A maintenance loop beside the requests reads new
outbox events into the snapshot every ``PINTUAN_FEED_REFRESH_SECONDS``, rebuilds it whole every
``PINTUAN_FEED_SNAPSHOT_SECONDS``, reloads the rules and what the worker has learnt every
``PINTUAN_FEED_RELOAD_SECONDS``, and writes the buffer every ``PINTUAN_FEED_FLUSH_SECONDS`` and
once more on shutdown. The buffer is bounded: when the database cannot keep up, further slates
are served and counted as dropped (``pintuan_feed_impressions_dropped_total``), never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import anyio.to_thread
from fastapi import Request
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.domain.feed import (
    VERTICALS,
    VIEWER_FEATURES,
    Placement,
    Policy,
    Viewer,
)
from pintuan.domain.feed_draw import SlateStart
from pintuan.domain.feed_policies import new_policy, policy_from_state
from pintuan.feed.models import FeedImpression, FeedModel, FeedReward
from pintuan.feed.pool_log import WRITE_CANDIDATES, WRITE_POOL, LoggedCandidate
from pintuan.feed.rules import Arm, LiveConfig, default_config, read_config, rules_json
from pintuan.feed.slate_log import placements_json, read_placements, slots_flat
from pintuan.feed.snapshot import (
    Item,
    LoggedPool,
    Market,
    Place,
    PoolAsk,
    Snapshot,
    build_snapshot,
    logged_pool,
    pool_for,
    refresh_from_outbox,
)
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import Sql, raw_tx
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import utc_now

log = logging.getLogger("pintuan.feed")

IMPRESSIONS_DROPPED = Counter(
    "pintuan_feed_impressions_dropped",
    "Slates served but not logged because the feed's buffer was full",
)
HISTORY_TTL_SECONDS = 60.0
HISTORY_CACHED = 50_000
CLICK_PATIENCE = timedelta(minutes=2)  # a click may arrive before its slate is written
WRITTEN_KEPT = 200_000  # ids of candidates logged, remembered so as not to write them again
_impressions = table_of(FeedImpression)
_rewards = table_of(FeedReward)


def pseudonym(settings: Settings, *, user_id: str | None = None, visitor: str | None = None) -> str:
    """A viewer's name in the feed's log: a keyed hash of their user id, else of their visitor
    cookie; never the id itself. Without either, a fresh one per slate."""
    if user_id:
        subject = f"user:{user_id}"
    elif visitor:
        subject = f"visitor:{visitor}"
    else:
        return "anon_" + new_id("v")[-20:]
    keyed = _pseudonym_hmac(settings.secret_key).copy()
    keyed.update(subject.encode())
    return "v_" + keyed.hexdigest()[:40]


@lru_cache(maxsize=4)
def _pseudonym_hmac(secret_key: str) -> hmac.HMAC:
    """The pseudonyms' HMAC, keyed once per secret (a copy per viewer costs a third of keying
    it anew)."""
    key = hmac.new(secret_key.encode(), b"feed-pseudonym", hashlib.sha256).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


@dataclass(frozen=True, slots=True)
class FeedAsk:
    """One slate asked for."""

    pseudonym: str
    market: Market
    vertical: str | None
    place: Place | None
    slots: int
    exclude: frozenset[str] = frozenset()  # item ids shown earlier in the same feed
    continues: str | None = None  # the impression this one continues


class Shown(NamedTuple):
    """A served slot and its item (a tuple: twenty are made a slate, and a frozen dataclass
    costs a few times as much to make)."""

    placement: Placement
    item: Item


@dataclass(frozen=True, slots=True)
class Slate:
    impression_id: str
    policy: str
    shown: tuple[Shown, ...]


@dataclass(slots=True)
class _Prepared:
    """What the slates of one ask share within one second of the feed's clock: the pool (its
    random part drawn once), as the policy sees it and as the log writes it, the policy's scores
    and the start every slate is drawn from (``SlateStart``), and the slate's logged filters and
    viewer features as JSON. Kept only while the snapshot, the rules and the policy it was made
    with are the ones in force."""

    snapshot: Snapshot
    config: LiveConfig
    policy: Policy
    items: dict[str, Item]  # by candidate key
    pool: LoggedPool
    start: SlateStart
    filters: str
    viewer_features: str
    pool_id: str  # its row in feed_pools, which every slate drawn from it names
    kept: bool = False  # the pool and its candidates are in the buffer, or written


PREPARED_KEPT = 1_000  # asks prepared within one second, at most


@dataclass(frozen=True, slots=True)
class _Logged:
    """A served slate waiting for the log, as the row the log writes: its impression, a
    dictionary of plain values (the rules already as JSON; the pool is the one its ``pool_id``
    names, in the buffer or written), and its placements, their plain values in one flat tuple
    (``slate_log.slots_flat``), written as JSON in the same row.

    Plain values because a busy process holds thousands of slates between two batches: a
    dictionary of strings and numbers, and a tuple of them once a pass has seen it, are left out
    of the garbage collector's passes, where the slates' placements and candidates as objects
    were walked by every full pass (130,000 placements behind a slow batch: 0.1 s a pass)."""

    impression: dict[str, Any]
    placements: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Click:
    impression_id: str
    position: int
    kind: str
    item_id: str
    at: datetime


class FeedRuntime:
    """The feed of one serving process."""

    def __init__(self, settings: Settings, db: Database, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.db = db
        self.rng = rng or random.Random()  # noqa: S311 - a ranking draw, not a secret
        self.snapshot = Snapshot()
        self.config: LiveConfig = default_config(settings)
        self.policies: dict[str, Policy] = {}
        self._model_versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._slates: list[_Logged] = []
        self._clicks: list[_Click] = []
        # Candidates the buffered slates name that this process has not logged yet, and those it
        # has (a slate names a candidate only once it is written, in the same batch or before).
        self._new_candidates: dict[str, LoggedCandidate] = {}
        self._written_candidates: set[str] = set()
        # The pools the buffered slates name (each buffered with its first slate).
        self._new_pools: list[dict[str, Any]] = []
        self._history: dict[str, tuple[float, tuple[float, ...]]] = {}
        self._logged_rules: tuple[LiveConfig, str] | None = None
        self._prepared: dict[tuple[Any, ...], _Prepared] = {}
        self._prepared_second = 0
        self._built = False
        # Snapshots are read by the maintenance thread and (with the snapshot read anew for
        # every request) by requests, at once: each read takes a ticket when it starts, and a
        # snapshot is put in place only if no read that started later was put there first.
        self._reads = itertools.count(1)
        self._in_place = 0  # the ticket of the read in place
        self._placing = threading.Lock()
        self._last = {"refresh": 0.0, "snapshot": 0.0, "reload": 0.0, "flush": 0.0}
        self.dropped = 0

    # ------------------------------------------------------------------ keeping fresh

    def rebuild(self) -> None:
        """Read every candidate again (the periodic whole rebuild)."""
        ticket, build = self._whole_read()
        self._put_in_place(ticket, self.db.read_stale_sync(build))
        self._built = True

    def _whole_read(self) -> tuple[int, Callable[[Session], Snapshot]]:
        """A whole read's ticket, taken now, and the read to run."""
        version = self.snapshot.version + 1
        return next(self._reads), lambda session: build_snapshot(session, utc_now(), version)

    def refresh(self) -> bool:
        """Apply new outbox events to the snapshot; whether anything changed."""
        if not self._built:
            self.rebuild()
            return True
        ticket, current = next(self._reads), self.snapshot
        fresher = self.db.read_stale_sync(lambda s: refresh_from_outbox(s, current, utc_now()))
        if fresher is None:
            return False
        return self._put_in_place(ticket, fresher)

    def _put_in_place(self, ticket: int, snapshot: Snapshot) -> bool:
        """Serve ``snapshot``, read by the read that took ``ticket``, unless a read that started
        later is served already (a slow read must not bring back what a later one no longer
        saw: the maintenance thread's first rebuild, started before a deal was made, once
        replaced a request's snapshot that had it)."""
        with self._placing:
            if ticket < self._in_place:
                return False
            self._in_place = ticket
            self.snapshot = snapshot
            return True

    def reload(self) -> None:
        """Load the operators' rules and policies, and what the worker learnt for them."""
        config, rows = self.db.run_sync(self._read_config_and_models, write=False)
        policies: dict[str, Policy] = {}
        versions: dict[str, int] = {}
        for arm in config.arms:
            row = rows.get(arm.name)
            old = self.policies.get(arm.name)
            if row is not None:
                state, version = row
                if old is not None and self._model_versions.get(arm.name) == version:
                    policies[arm.name] = old
                else:
                    policies[arm.name] = policy_from_state(arm.name, {**state, **arm.params})
                versions[arm.name] = version
            else:
                policies[arm.name] = self._fresh_policy(arm, old)
        self.config, self.policies, self._model_versions = config, policies, versions

    def use_config(self, config: LiveConfig) -> None:
        """Serve ``config`` at once (the process that saved it does not wait for its reload)."""
        self.policies = {
            arm.name: self._fresh_policy(arm, self.policies.get(arm.name)) for arm in config.arms
        }
        self.config = config

    @staticmethod
    def _fresh_policy(arm: Arm, old: Policy | None) -> Policy:
        if old is not None and getattr(old, "kind", None) == arm.kind:
            return old
        return new_policy(arm.kind, arm.name, **arm.params)

    def _read_config_and_models(
        self, session: Session
    ) -> tuple[LiveConfig, dict[str, tuple[dict[str, Any], int]]]:
        config = read_config(session, self.settings)
        names = [arm.name for arm in config.arms]
        rows = session.execute(
            select(FeedModel.policy, FeedModel.state, FeedModel.version).where(
                FeedModel.policy.in_(names)
            )
        ).all()
        return config, {name: (state, version) for name, state, version in rows}

    def maintain(self) -> None:
        """Whatever is due now: refresh, rebuild, reload, flush (run beside the requests)."""
        clock = time.monotonic()
        s = self.settings
        if not self._built or (
            s.feed_snapshot_seconds and clock - self._last["snapshot"] >= s.feed_snapshot_seconds
        ):
            self._last["snapshot"] = self._last["refresh"] = clock
            self.rebuild()
        elif clock - self._last["refresh"] >= s.feed_refresh_seconds:
            self._last["refresh"] = clock
            self.refresh()
        if clock - self._last["reload"] >= s.feed_reload_seconds:
            self._last["reload"] = clock
            self.reload()
        if clock - self._last["flush"] >= s.feed_flush_seconds:
            self._last["flush"] = clock
            self.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """The maintenance loop, until ``stop``; then the buffer is written once more."""
        tick = min(self.settings.feed_refresh_seconds, self.settings.feed_flush_seconds)
        try:
            while not stop.is_set():
                try:
                    await anyio.to_thread.run_sync(self.maintain)
                except Exception:
                    log.exception("feed maintenance failed; serving the snapshot it has")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=tick)
        finally:
            await anyio.to_thread.run_sync(self.flush)

    async def ensure_ready(self) -> None:
        """Before serving: a snapshot and the live rules at least once; with
        ``PINTUAN_FEED_SNAPSHOT_SECONDS=0`` (tests, demos) the snapshot is read anew each time."""
        if self.settings.feed_snapshot_seconds == 0 or not self._built:
            ticket, build = self._whole_read()
            self._put_in_place(ticket, await self.db.read_stale(build))
            if not self._built:
                self._built = True
                await anyio.to_thread.run_sync(self.reload)
                # What was just read is not read again by the maintenance loop's first turn.
                clock = time.monotonic()
                self._last.update(snapshot=clock, refresh=clock, reload=clock)

    # ------------------------------------------------------------------ serving

    def serve(self, ask: FeedAsk, history: tuple[float, ...], now: datetime) -> Slate:
        """Draw a slate for ``ask`` and put it in the buffer to be logged.

        The slates of one second that ask for the same thing (market, vertical, slots, the
        viewer's history and arm; no location and nothing to leave out) share their pool, drawn
        once, and what the policy made of it (``_Prepared``): each slate is still drawn on its
        own, with the probabilities that pool gives, and logged with it."""
        config = self.config
        arm = config.arm_for(ask.pseudonym)
        policy = self.policies.get(arm.name) or new_policy(arm.kind, arm.name, **arm.params)
        snapshot = self.snapshot  # the maintenance thread may swap it meanwhile
        # What a slate shares with the slates of its second (None: it shares nothing).
        shared = (
            (ask.market, ask.vertical, ask.slots, history, arm.name)
            if not ask.exclude and ask.place is None and ask.continues is None
            else None
        )
        second = int(now.timestamp())
        if second != self._prepared_second:
            self._prepared = {}
            self._prepared_second = second
        prepared = self._prepared.get(shared) if shared is not None else None
        if (
            prepared is None
            or prepared.snapshot is not snapshot
            or prepared.config is not config
            or prepared.policy is not policy
        ):
            prepared = self._prepare(ask, history, now, snapshot, config, policy)
            if shared is not None:
                if len(self._prepared) >= PREPARED_KEPT:
                    self._prepared = {}
                self._prepared[shared] = prepared
        placements = prepared.start.draw(self.rng)
        impression_id = new_id("imp")
        logged = _Logged(
            {
                "id": impression_id,
                "served_at": now,
                "viewer": ask.pseudonym,
                "policy": arm.name,
                "slots": ask.slots,
                "filters": prepared.filters,
                "viewer_features": prepared.viewer_features,
                "pool_id": prepared.pool_id,
                "pool": _NAMED_POOL,
                "rules": self._rules_json(config),
            },
            slots_flat(placements),
        )
        if prepared.kept:
            self._keep(logged)
        else:
            prepared.kept = self._keep(logged, prepared)
        items = prepared.items
        return Slate(
            impression_id,
            arm.name,
            tuple(Shown(p, items[p.candidate.key]) for p in placements),
        )

    def _prepare(
        self,
        ask: FeedAsk,
        history: tuple[float, ...],
        now: datetime,
        snapshot: Snapshot,
        config: LiveConfig,
        policy: Policy,
    ) -> _Prepared:
        """The pool for ``ask``, scored by ``policy``, ready to draw slates from."""
        s = self.settings
        items = pool_for(
            snapshot,
            PoolAsk(
                market=ask.market,
                vertical=ask.vertical,
                place=ask.place,
                exclude=ask.exclude,
                must=tuple(config.rules.pins.values()),
                size=s.feed_pool_size,
                near_km=s.feed_near_km,
                radius_km=s.feed_radius_km,
            ),
            self.rng,
        )
        pool = logged_pool(items, now, ask.place, s.feed_near_km, snapshot)
        # The plain rules' slate (``domain.feed.draw_slate``), drawn with its bookkeeping kept
        # between slots: the same slots, propensities and reasons (tests/unit/test_feed_draw.py).
        viewer = Viewer(ask.pseudonym, history)
        start = SlateStart(
            policy.scores(viewer, pool.candidates), pool.candidates, ask.slots, config.rules
        )
        filters: dict[str, Any] = {
            "vertical": ask.vertical,
            "country": ask.market.country,
            "currency": ask.market.currency,
            "near": ask.place is not None,
        }
        if ask.continues:
            filters["continues"] = ask.continues
            filters["excluded"] = len(ask.exclude)
        return _Prepared(
            snapshot=snapshot,
            config=config,
            policy=policy,
            items={item.key: item for item in items},
            pool=pool,
            start=start,
            filters=json.dumps(filters),
            viewer_features=json.dumps(viewer.history),
            pool_id=new_id("pool"),
        )

    def _rules_json(self, config: LiveConfig) -> str:
        """The rules as logged with every slate, written once per rules in force."""
        kept = self._logged_rules
        if kept is None or kept[0] is not config:
            kept = (config, json.dumps(rules_json(config.rules, config.weights)))
            self._logged_rules = kept
        return kept[1]

    def _keep(self, slate: _Logged, drawn_from: _Prepared | None = None) -> bool:
        """Buffer ``slate``, with the pool it was ``drawn_from`` and the candidates that pool
        names not logged yet when given (its first slate kept); whether it was kept (not when
        the buffer is full)."""
        written = self._written_candidates
        fixed = drawn_from.pool.fixed if drawn_from is not None else ()
        fresh = [f for f in fixed if f.id not in written]
        with self._lock:
            if len(self._slates) >= self.settings.feed_buffer_size:
                self.dropped += 1
                IMPRESSIONS_DROPPED.inc()
                return False
            self._slates.append(slate)
            for f in fresh:
                self._new_candidates[f.id] = f
            if drawn_from is not None:
                self._new_pools.append(
                    {
                        "id": drawn_from.pool_id,
                        "created_at": slate.impression["served_at"],
                        "entries": drawn_from.pool.json,
                    }
                )
        return True

    def record_click(
        self, impression_id: str, position: int, kind: str, item_id: str, at: datetime
    ) -> None:
        """A click on a served slot, written with the next batch (once per slot; a click on a
        slot that did not show that item is not credited)."""
        with self._lock:
            if len(self._clicks) < self.settings.feed_buffer_size:
                self._clicks.append(_Click(impression_id, position, kind, item_id, at))

    # ------------------------------------------------------------------ viewers

    no_history: tuple[float, ...] = (0.0,) * len(VIEWER_FEATURES)

    async def viewer_history(self, viewer: str) -> tuple[float, ...]:
        """The shares of the viewer's clicks and purchases from the feed in each vertical."""
        if viewer.startswith("anon_"):
            return self.no_history
        clock = time.monotonic()
        cached = self._history.get(viewer)
        if cached is not None and cached[0] > clock:
            return cached[1]
        counts = await self.db.read(_history_counts, viewer)
        history = history_vector(counts)
        if len(self._history) >= HISTORY_CACHED:
            self._history.clear()
        self._history[viewer] = (clock + HISTORY_TTL_SECONDS, history)
        return history

    def forget_viewer(self, viewer: str) -> None:
        """Their history changed (a click): read it again next time."""
        self._history.pop(viewer, None)

    # ------------------------------------------------------------------ logging

    def flush(self) -> int:
        """Write the buffered slates and clicks in one transaction; returns the slates written.
        Clicks whose slate is not written yet (served by another process) wait for a later
        batch, up to a couple of minutes."""
        with self._lock:
            slates, self._slates = self._slates, []
            clicks, self._clicks = self._clicks, []
            fresh, self._new_candidates = self._new_candidates, {}
            pools, self._new_pools = self._new_pools, []
        if not slates and not clicks and not fresh and not pools:
            return 0
        try:
            waiting = self.db.run_sync(_write_batch, slates, clicks, list(fresh.values()), pools)
        except Exception:
            with self._lock:  # try again with the next batch; the buffer's bound still holds
                room = self.settings.feed_buffer_size - len(self._slates)
                self._slates[:0] = slates[:room]
                self._clicks[:0] = clicks
                self._new_candidates = {**fresh, **self._new_candidates}
                self._new_pools[:0] = pools
            raise
        written = self._written_candidates
        if len(written) + len(fresh) > WRITTEN_KEPT:
            written.clear()  # written again when next named: the insert skips what is there
        written.update(fresh)
        cutoff = utc_now() - CLICK_PATIENCE
        kept = [click for click in waiting if click.at > cutoff]
        if kept:
            with self._lock:
                self._clicks[:0] = kept
        return len(slates)

    def buffered(self) -> int:
        with self._lock:
            return len(self._slates)


_LOG_SLATE = Sql(
    "INSERT INTO feed_impressions (id, served_at, viewer, policy, slots, filters,"
    " viewer_features, pool_id, pool, rules, placements)"
    " VALUES (:id, :served_at, :viewer, :policy, :slots, :filters, :viewer_features, :pool_id,"
    " :pool, :rules, :placements)"
)
# A slate's own pool, empty: it names its pool in feed_pools (``pool_id``).
_NAMED_POOL = "[]"
# Slates written a statement. Making a slate's row holds the interpreter (its placements' text
# alone took about 20 µs encoded whole, about 10 made of kept pieces), and SQLite's run of the
# statement does not: a batch made whole before its first statement kept the event loop's
# requests waiting behind it for tens of milliseconds (p99 50 → 80 ms), a few dozen slates at a
# time for under a millisecond.
_SLATES_A_STATEMENT = 40


def _write_batch(
    session: Session,
    slates: Sequence[_Logged],
    clicks: Sequence[_Click],
    candidates: Sequence[LoggedCandidate],
    pools: Sequence[dict[str, Any]] = (),
) -> list[_Click]:
    # Plain statements on the session's own transaction: a batch is thousands of rows, and
    # building them through the ORM's JSON types cost more than writing them.
    tx = raw_tx(session)
    if candidates:
        # In the order of their ids, so that two processes logging the same ones never wait
        # for each other crosswise.
        tx.many(WRITE_CANDIDATES, [c.row() for c in sorted(candidates, key=lambda c: c.id)])
    if pools:
        tx.many(WRITE_POOL, [{**p, "created_at": tx.instant(p["created_at"])} for p in pools])
    for start in range(0, len(slates), _SLATES_A_STATEMENT):
        tx.many(
            _LOG_SLATE,
            [
                {
                    **s.impression,
                    "served_at": tx.instant(s.impression["served_at"]),
                    "placements": placements_json(s.placements),
                }
                for s in slates[start : start + _SLATES_A_STATEMENT]
            ],
        )
    if not clicks:
        return []
    ids = sorted({c.impression_id for c in clicks})
    known: set[str] = set()
    shown: dict[tuple[str, int], tuple[str, str]] = {}
    for impression, placements in session.execute(
        select(_impressions.c.id, _impressions.c.placements).where(_impressions.c.id.in_(ids))
    ):
        known.add(impression)
        for entry in read_placements(placements):
            shown[impression, entry.position] = (entry.kind, entry.item_id)
    rows = []
    waiting = []
    for click in clicks:
        found = shown.get((click.impression_id, click.position))
        if found is None:
            if click.impression_id not in known:
                waiting.append(click)
            continue
        if found == (click.kind, click.item_id):
            rows.append(
                {
                    "impression_id": click.impression_id,
                    "position": click.position,
                    "event": "click",
                    "at": click.at,
                }
            )
    if rows:
        session.execute(
            upsert_insert(session, FeedReward)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["impression_id", "position", "event"])
        )
    return waiting


def _history_counts(session: Session, viewer: str) -> dict[tuple[str, str], int]:
    """The viewer's clicks and purchases by the vertical of the slot they came from."""
    counts: dict[tuple[str, str], int] = {}
    verticals: dict[str, dict[int, str]] = {}
    for impression, placements, position, event in session.execute(
        select(_impressions.c.id, _impressions.c.placements, _rewards.c.position, _rewards.c.event)
        .join(_rewards, _rewards.c.impression_id == _impressions.c.id)
        .where(_impressions.c.viewer == viewer, _rewards.c.event.in_(("click", "pay")))
    ):
        slots = verticals.get(impression)
        if slots is None:
            slots = verticals[impression] = {
                entry.position: entry.vertical for entry in read_placements(placements)
            }
        vertical = slots.get(position)
        if vertical is not None:
            counts[vertical, event] = counts.get((vertical, event), 0) + 1
    return counts


def history_vector(counts: dict[tuple[str, str], int]) -> tuple[float, ...]:
    """Per vertical, the share of the viewer's clicks, then of their purchases, in it."""
    out: list[float] = []
    for event in ("click", "pay"):
        total = sum(n for (_, e), n in counts.items() if e == event)
        out.extend(counts.get((v, event), 0) / total if total else 0.0 for v in VERTICALS)
    return tuple(round(x, 4) for x in out)


def feed_runtime(request: Request) -> FeedRuntime:
    """The serving process's feed."""
    runtime: FeedRuntime = request.app.state.feed
    return runtime


async def runtime_of(request: Request) -> FeedRuntime:
    """``feed_runtime`` as a dependency: async, or FastAPI would run it on a worker thread (a
    thread hop per request)."""
    return feed_runtime(request)
