"""Worker jobs of the feed: crediting what viewers did to the slates that showed it, and
teaching the policies from the log.

Crediting reads the outbox by one cursor, as the shares' attribution does (stopping at a gap in
the ids until it is ``SETTLE`` old, because PostgreSQL draws ids before commit): a seat held is
a ``join``, a seat paid a ``pay`` (and a ``join`` when it was paid as it was taken), a team's
success a ``team_success`` for each of its members. Each goes to the viewer's latest slate that
showed that team or its deal within ``PINTUAN_FEED_ATTRIBUTION_HOURS`` before it, under any of
the viewer's pseudonyms (their account's, and the visitor cookies linked to it), to the team's own
card where that slate had one. A click is logged by the card's own link when it happens
(``feed.serving``).

Learning teaches every policy serving (all arms learn from every logged slate: the features say
what was shown, whichever arm chose it): each reward not yet taught, worth its event's weight,
and each slot shown and not rewarded once the learning window has passed, worth nothing. What
they learnt goes to ``feed_models``, one version more, for every serving process to reload.

Forgetting deletes the slates served more than ``PINTUAN_FEED_LOG_DAYS`` ago, oldest first, a
batch a transaction, with their rewards, and the pools made before then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, and_, cast, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.domain.feed import Candidate, Policy, Viewer
from pintuan.domain.feed_policies import new_policy, policy_from_state
from pintuan.domain.teams import SeatStatus
from pintuan.events.models import OutboxEvent
from pintuan.feed.models import FeedImpression, FeedModel, FeedPool, FeedReward
from pintuan.feed.pool_log import decode_pool, read_candidates, slate_pools
from pintuan.feed.rules import LiveConfig, read_config
from pintuan.feed.serving import pseudonym
from pintuan.feed.slate_log import credited_slot, read_placements
from pintuan.feed.state import FeedCursor
from pintuan.kit.orm import table_of
from pintuan.kit.sql import upsert_insert
from pintuan.shares.models import VisitorLink
from pintuan.teams.models import Seat, Team

CREDIT = "credit"
LEARN = "learn"
SETTLE = timedelta(minutes=2)
LEARN_BATCH = 200  # slates per pass: each carries its whole pool
POOL_SECOND = timedelta(seconds=1)  # how long after its pool's making a slate may be served

outbox = table_of(OutboxEvent)
_impressions = table_of(FeedImpression)
_rewards = table_of(FeedReward)
_pools = table_of(FeedPool)


def _cursor(session: Session, name: str, start: int) -> FeedCursor:
    """The named cursor, under a row lock so that workers take turns."""
    row = session.scalar(select(FeedCursor).where(FeedCursor.name == name).with_for_update())
    if row is not None:
        return row
    session.execute(
        upsert_insert(session, FeedCursor)
        .values(name=name, position=start, at=None, key=None)
        .on_conflict_do_nothing()
    )
    found = session.scalar(select(FeedCursor).where(FeedCursor.name == name).with_for_update())
    assert found is not None
    return found


@dataclass(frozen=True, slots=True)
class FeedDue:
    credit: bool
    learn: bool
    forget: bool = False


def feed_work_due(session: Session, now: datetime, settings: Settings) -> FeedDue:
    """One read: whether crediting, learning and forgetting have anything to do."""
    credit = select(FeedCursor.position).where(FeedCursor.name == CREDIT).scalar_subquery()
    learn_at = select(FeedCursor.at).where(FeedCursor.name == LEARN).scalar_subquery()
    window = now - timedelta(minutes=settings.feed_learn_after_minutes)
    slates_before, pools_before = _forget_before(settings, now)
    found = session.execute(
        select(
            select(outbox.c.id).where(outbox.c.id > func.coalesce(credit, 0)).exists(),
            select(_rewards.c.id).where(_rewards.c.learnt_at.is_(None)).exists(),
            select(_impressions.c.id)
            .where(
                _impressions.c.served_at <= window,
                or_(learn_at.is_(None), _impressions.c.served_at > learn_at),
            )
            .exists(),
            select(_impressions.c.id).where(_impressions.c.served_at < slates_before).exists(),
            select(_pools.c.id).where(_pools.c.created_at < pools_before).exists(),
        )
    ).one()
    return FeedDue(
        credit=bool(found[0]),
        learn=bool(found[1] or found[2]),
        forget=bool(found[3] or found[4]),
    )


# ---------------------------------------------------------------------------- crediting


@dataclass(frozen=True, slots=True)
class _Deed:
    event: str
    user_id: str
    team_id: str
    deal_id: str
    at: datetime


def credit_feed_rewards(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Credit up to ``limit`` new outbox events to the slates that showed their deal or team;
    returns how many events were read."""
    first = session.scalar(select(func.min(outbox.c.id)))
    cursor = _cursor(session, CREDIT, int(first or 1) - 1)
    rows = session.execute(
        select(outbox.c.id, outbox.c.type, outbox.c.subject_id, outbox.c.created_at)
        .where(outbox.c.id > cursor.position)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    events: list[tuple[str, str, datetime]] = []
    done = cursor.position
    for event_id, type_, subject, created_at in rows:
        if event_id != done + 1 and created_at > now - SETTLE:
            break  # an earlier id may still commit; read it first
        events.append((type_, subject, created_at))
        done = event_id
    if not events:
        return 0
    deeds = _deeds(session, events)
    if deeds:
        _credit(session, settings, deeds)
    cursor.position = done
    return len(events)


def _deeds(session: Session, events: list[tuple[str, str, datetime]]) -> list[_Deed]:
    seat_ids = [s for t, s, _ in events if t in ("seat.held", "seat.paid")]
    team_ids = [s for t, s, _ in events if t == "team.succeeded"]
    seats = {
        row.id: row
        for row in session.execute(
            select(Seat.id, Seat.user_id, Seat.team_id, Seat.deal_id).where(Seat.id.in_(seat_ids))
        )
    }
    members: dict[str, list[Any]] = defaultdict(list)
    if team_ids:
        for row in session.execute(
            select(Seat.user_id, Seat.team_id, Seat.deal_id).where(
                Seat.team_id.in_(team_ids),
                Seat.status.in_((SeatStatus.CONFIRMED.value, SeatStatus.PAID.value)),
            )
        ):
            members[row.team_id].append(row)
    solo = set(session.scalars(select(Team.id).where(Team.id.in_(team_ids), Team.solo.is_(True))))
    deeds: list[_Deed] = []
    for type_, subject, at in events:
        if type_ in ("seat.held", "seat.paid"):
            seat = seats.get(subject)
            if seat is None:
                continue
            if type_ == "seat.paid":
                # A seat paid as it was taken (a free leader's) never had a held event.
                deeds.append(_Deed("join", seat.user_id, seat.team_id, seat.deal_id, at))
                deeds.append(_Deed("pay", seat.user_id, seat.team_id, seat.deal_id, at))
            else:
                deeds.append(_Deed("join", seat.user_id, seat.team_id, seat.deal_id, at))
        elif type_ == "team.succeeded" and subject not in solo:
            deeds.extend(
                _Deed("team_success", m.user_id, m.team_id, m.deal_id, at)
                for m in members.get(subject, [])
            )
    return deeds


def _credit(session: Session, settings: Settings, deeds: list[_Deed]) -> None:
    users = sorted({d.user_id for d in deeds})
    names: dict[str, set[str]] = {u: {pseudonym(settings, user_id=u)} for u in users}
    for visitor, user in session.execute(
        select(VisitorLink.visitor_id, VisitorLink.user_id).where(VisitorLink.user_id.in_(users))
    ):
        names[user].add(pseudonym(settings, visitor=visitor))
    window = timedelta(hours=settings.feed_attribution_hours)
    rows: list[dict[str, Any]] = []
    for deed in deeds:
        found = _credited(session, sorted(names[deed.user_id]), deed, window)
        if found is not None:
            rows.append(
                {
                    "impression_id": found[0],
                    "position": found[1],
                    "event": deed.event,
                    "at": deed.at,
                }
            )
    if rows:
        session.execute(
            upsert_insert(session, FeedReward)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["impression_id", "position", "event"])
        )


_CREDIT_PAGE = 50  # slates read at a time, newest first, looking for the one credited


def _credited(
    session: Session, viewers: list[str], deed: _Deed, window: timedelta
) -> tuple[str, int] | None:
    """The slot a deed is credited to: in the viewer's latest slate of the window that showed
    its team or deal (``slate_log.credited_slot``); None when none did. A slate's placements
    are read as text, and only one whose text names the team or the deal is parsed: a viewer
    may have thousands of slates in the window, most showing neither."""
    query = (
        select(
            _impressions.c.id,
            _impressions.c.served_at,
            cast(_impressions.c.placements, Text).label("placements"),
        )
        .where(
            _impressions.c.viewer.in_(viewers),
            _impressions.c.served_at >= deed.at - window,
            _impressions.c.served_at <= deed.at,
        )
        .order_by(_impressions.c.served_at.desc(), _impressions.c.id.desc())
        .limit(_CREDIT_PAGE)
    )
    before: tuple[Any, str] | None = None
    while True:
        page = session.execute(
            query
            if before is None
            else query.where(tuple_(_impressions.c.served_at, _impressions.c.id) < tuple_(*before))
        ).all()
        for impression_id, _, placements in page:
            if deed.team_id not in placements and deed.deal_id not in placements:
                continue
            slot = credited_slot(read_placements(placements), deed.team_id, deed.deal_id)
            if slot is not None:
                return impression_id, slot
        if len(page) < _CREDIT_PAGE:
            return None
        before = (page[-1].served_at, page[-1].id)


# ---------------------------------------------------------------------------- learning


def _policies(session: Session, config: LiveConfig) -> tuple[dict[str, Policy], dict[str, int]]:
    names = [arm.name for arm in config.arms]
    rows = {
        row.policy: row
        for row in session.scalars(
            select(FeedModel).where(FeedModel.policy.in_(names)).with_for_update()
        )
    }
    policies: dict[str, Policy] = {}
    versions: dict[str, int] = {}
    for arm in config.arms:
        row = rows.get(arm.name)
        if row is not None and row.state.get("kind") == arm.kind:
            policies[arm.name] = policy_from_state(arm.name, {**row.state, **arm.params})
            versions[arm.name] = row.version
        else:
            policies[arm.name] = new_policy(arm.kind, arm.name, **arm.params)
            versions[arm.name] = row.version if row is not None else 0
    return policies, versions


def _candidate(pool: list[Candidate], kind: str, item_id: str) -> Candidate | None:
    for candidate in pool:
        if candidate.kind == kind and candidate.item_id == item_id:
            return candidate
    return None


def learn_from_feed(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Teach the serving policies the rewards not yet taught, and the slots past the learning
    window that earned nothing; returns how many lessons were taught."""
    cursor = _cursor(session, LEARN, 0)
    config = read_config(session, settings)
    policies, versions = _policies(session, config)
    weights = config.weights
    lessons = 0

    def teach(viewer: Viewer, candidate: Candidate, reward: float) -> None:
        for policy in policies.values():
            policy.learn(viewer, candidate, reward)

    rewards = session.execute(
        select(_rewards.c.id, _rewards.c.impression_id, _rewards.c.position, _rewards.c.event)
        .where(_rewards.c.learnt_at.is_(None))
        .order_by(_rewards.c.id)
        .limit(min(limit, LEARN_BATCH))
    ).all()
    if rewards:
        slates = _slates(session, sorted({r.impression_id for r in rewards}))
        for reward in rewards:
            slate = slates.get(reward.impression_id)
            if slate is None:
                continue
            viewer, pool, placed = slate
            shown = placed.get(reward.position)
            candidate = _candidate(pool, *shown) if shown else None
            if candidate is not None:
                teach(viewer, candidate, float(weights.get(reward.event, 0.0)))
                lessons += 1
        session.execute(
            update(_rewards).where(_rewards.c.id.in_([r.id for r in rewards])).values(learnt_at=now)
        )
    window = now - timedelta(minutes=settings.feed_learn_after_minutes)
    query = select(_impressions.c.id, _impressions.c.served_at).where(
        _impressions.c.served_at <= window
    )
    if cursor.at is not None and cursor.key is not None:
        query = query.where(
            or_(
                _impressions.c.served_at > cursor.at,
                and_(_impressions.c.served_at == cursor.at, _impressions.c.id > cursor.key),
            )
        )
    past = session.execute(
        query.order_by(_impressions.c.served_at, _impressions.c.id).limit(min(limit, LEARN_BATCH))
    ).all()
    if past:
        ids = [row.id for row in past]
        slates = _slates(session, ids)
        rewarded = {
            (impression, position)
            for impression, position in session.execute(
                select(_rewards.c.impression_id, _rewards.c.position).where(
                    _rewards.c.impression_id.in_(ids)
                )
            )
        }
        for impression_id in ids:
            slate = slates.get(impression_id)
            if slate is None:
                continue
            viewer, pool, placed = slate
            for position, (kind, item_id) in sorted(placed.items()):
                if (impression_id, position) in rewarded:
                    continue
                candidate = _candidate(pool, kind, item_id)
                if candidate is not None:
                    teach(viewer, candidate, 0.0)
                    lessons += 1
        cursor.at, cursor.key = past[-1].served_at, past[-1].id
    if lessons:
        _save(session, policies, versions, now)
    return len(rewards) + len(past)


def _slates(
    session: Session, ids: list[str]
) -> dict[str, tuple[Viewer, list[Candidate], dict[int, tuple[str, str]]]]:
    """The slates ``ids`` as learning reads them: the viewer, the pool, and what each position
    showed; a slate whose pool cannot be read (a log of another version) is left out."""
    rows = session.execute(
        select(
            _impressions.c.id,
            _impressions.c.viewer,
            _impressions.c.viewer_features,
            _impressions.c.pool_id,
            _impressions.c.pool,
            _impressions.c.placements,
        ).where(_impressions.c.id.in_(ids))
    ).all()
    logged = slate_pools(session, [(row.pool_id, row.pool) for row in rows])
    known = read_candidates(session, logged)
    out = {}
    for (impression_id, viewer, features, _, _, placements), drawn_from in zip(
        rows, logged, strict=True
    ):
        pool = decode_pool(drawn_from, known)
        if pool is not None:
            out[impression_id] = (
                Viewer(viewer, tuple(float(x) for x in features)),
                pool,
                {e.position: (e.kind, e.item_id) for e in read_placements(placements)},
            )
    return out


def _save(
    session: Session, policies: dict[str, Policy], versions: dict[str, int], now: datetime
) -> None:
    for name, policy in policies.items():
        state = policy.state()
        row = session.get(FeedModel, name)
        if row is None:
            session.add(FeedModel(policy=name, state=state, version=1, updated_at=now))
        else:
            row.state, row.version, row.updated_at = state, versions[name] + 1, now
    session.flush()


# ---------------------------------------------------------------------------- forgetting


def forget_old_slates(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest slates served more than ``PINTUAN_FEED_LOG_DAYS``
    ago, with their rewards, and up to ``limit`` pools made before then; returns the larger of
    the two counts (the worker goes on while either filled its batch). Every page view logs a
    slate of a few kilobytes, so the log is kept for a window (longer than
    crediting and learning need, which the settings check), not for ever. A pool's slates are
    all served in the second it was made (``feed.serving``), so a pool made a second before the
    window names only slates past it."""
    slates_before, pools_before = _forget_before(settings, now)
    ids = list(
        session.scalars(
            select(_impressions.c.id)
            .where(_impressions.c.served_at < slates_before)
            .order_by(_impressions.c.served_at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(_rewards).where(_rewards.c.impression_id.in_(ids)))
        session.execute(delete(_impressions).where(_impressions.c.id.in_(ids)))
    pools = list(
        session.scalars(
            select(_pools.c.id)
            .where(_pools.c.created_at < pools_before)
            .order_by(_pools.c.created_at)
            .limit(limit)
        )
    )
    if pools:
        session.execute(delete(_pools).where(_pools.c.id.in_(pools)))
    return max(len(ids), len(pools))


def _forget_before(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The slates served before the first instant, and the pools made before the second,
    are past ``PINTUAN_FEED_LOG_DAYS``."""
    start = now - timedelta(days=settings.feed_log_days)
    return start, start - POOL_SECOND
