"""Watching the outbox for the read cache: each server process reads the events written since
its last look, every ``POLL_SECONDS``, and drops the cached answers about the teams and deals
they name (a seat taken or given up changes its team's seats left and its deal's stock).

The cache's own age limit (one second) bounds everything else: a change that writes no event
(a merchant's edit), and an event whose id was drawn before a later one committed on PostgreSQL,
which this reader may pass over. The watcher only makes the common change, a join, show sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from pintuan.kit.db import Database
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.readcache import DEAL_LISTS, ReadCache, deal_tag, team_tag

log = logging.getLogger("pintuan.reads")

POLL_SECONDS = 0.25
BATCH = 1_000

LAST_EVENT = Sql("SELECT MAX(id) FROM outbox_events")


def _named(key: str, sqlite: bool) -> str:
    """An event's payload's ``key`` when it is text (None otherwise), read by the database: the
    payload is not decoded in Python (a few microseconds an event, for every event)."""
    if sqlite:
        path = f"'$.{key}'"
        return f"CASE json_type(payload, {path}) WHEN 'text' THEN json_extract(payload, {path}) END"
    return f"CASE json_typeof(payload -> '{key}') WHEN 'string' THEN payload ->> '{key}' END"


_EVENTS_AFTER = """
    SELECT id, type, subject_id, {team} AS team_id, {deal} AS deal_id FROM outbox_events
    WHERE id > :after ORDER BY id LIMIT :limit
"""
# The events after an id, in order: id, type, subject id, and the team and deal their payload
# names (as text, else None). By driver: SQLite's and PostgreSQL's JSON functions differ.
_EVENTS_AFTER_BY_DRIVER = {
    sqlite: Sql(
        _EVENTS_AFTER.format(team=_named("team_id", sqlite), deal=_named("deal_id", sqlite))
    )
    for sqlite in (True, False)
}
DEALS_OF_TEAMS = Sql("SELECT id, deal_id FROM teams WHERE id IN_LIST(:ids)")
# Each team's deal, as read: a team never changes its deal, so what was read stays true. Kept
# for at most this many teams (all forgotten when full).
TEAM_DEALS_KEPT = 50_000
_team_deals: dict[str, str] = {}


def deals_of_teams(tx: RawTx, team_ids: Iterable[str]) -> set[str]:
    """The deals of ``team_ids`` (a team the database does not know names none), read only for
    the teams not already read in this process. Both outbox readers (the read cache's watcher,
    the feed's refresh) ask it for every team a poll's events name: under a stream of joins that
    was a few hundred ids a poll in each process, and on PostgreSQL the statement's ``= ANY``
    of a bound array, planned once for every size of list, took milliseconds each time."""
    known = _team_deals
    deals: set[str] = set()
    unread: list[str] = []
    for team_id in team_ids:
        deal_id = known.get(team_id)
        if deal_id is None:
            unread.append(team_id)
        else:
            deals.add(deal_id)
    if unread:
        rows = tx.all(DEALS_OF_TEAMS, {"ids": sorted(unread)})
        if len(known) + len(rows) > TEAM_DEALS_KEPT:
            known.clear()
        for team_id, deal_id in rows:
            known[str(team_id)] = str(deal_id)
            deals.add(str(deal_id))
    return deals


def events_after(tx: RawTx, after: int, limit: int) -> list[Any]:
    """Up to ``limit`` events after ``after``: rows of (id, type, subject id, team id, deal id),
    the last two what the payload names, or None."""
    return tx.all(_EVENTS_AFTER_BY_DRIVER[tx.sqlite], {"after": after, "limit": limit})


def last_event_id(tx: RawTx) -> int:
    """Where reading starts: after the newest event."""
    return int(tx.scalar(LAST_EVENT) or 0)


def changed_since(tx: RawTx, after: int) -> tuple[int, set[str]]:
    """The cache tags the events after ``after`` touch, and the id read up to."""
    teams: set[str] = set()
    deals: set[str] = set()
    while True:
        rows = events_after(tx, after, BATCH)
        for event_id, _type, subject_id, team_id, deal_id in rows:
            after = max(after, int(event_id))
            for named in (str(subject_id), team_id, deal_id):
                if named is None:
                    continue
                if named.startswith("team_"):
                    teams.add(named)
                elif named.startswith("deal_"):
                    deals.add(named)
        if len(rows) < BATCH:
            break
    if teams:
        deals |= deals_of_teams(tx, teams)
    tags = {team_tag(t) for t in teams} | {deal_tag(d) for d in deals}
    if deals:
        tags.add(DEAL_LISTS)
    return after, tags


async def watch_outbox(
    db: Database, cache: ReadCache, stop: asyncio.Event, poll: float = POLL_SECONDS
) -> None:
    """Drop cached reads as their teams and deals change, until ``stop`` is set."""
    if not cache.enabled:
        return
    after: int | None = None
    while not stop.is_set():
        try:
            if after is None:
                after = await db.run_raw(last_event_id, write=False)
            else:
                after, tags = await db.run_raw(changed_since, after, write=False)
                if tags:
                    cache.invalidate(tags)
        except Exception:
            # The age limit still holds: a missed look costs freshness, never correctness.
            log.warning("could not read the outbox for the read cache", exc_info=True)
            cache.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll)
