"""Growth analytics: the daily roll-up and the questions asked of it.

The roll-up of a UTC day turns that day's shares, visits, credited orders, payments and team
outcomes into counts per (deal, channel, country, cohort week), plus the samples behind two
medians (viral cycle time, time to fill). Reports read only roll-ups, so they cost the same
however busy the deals were; the day in progress is not in them until the worker rolls it up
after midnight UTC.

Definitions:

* **funnel**: shares made → qualifying visits → orders (teams started + teams joined) → paid
  orders → orders of teams that succeeded, all credited to the shares of the cohort weeks;
* **cohort week**: the ISO week (UTC) a share was made; a share's visits and orders belong to
  its cohort whenever they happen;
* **K-factor**: see :class:`pintuan.domain.traffic.KFactor`;
* **viral cycle time**: for each paid order a share brought, the time from the sharer's own
  latest payment before it (on any deal) to that paid order; its median. Orders whose sharer
  had not paid before, or has deleted the share, have no cycle;
* **team success rate**: teams that succeeded / teams that ended, by the week teams started;
  **time to fill**: median time from a team's start to its success;
* **channel decay**: per channel and calendar week, qualifying visits and paid orders, each as
  a ratio of the week before.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import (
    KFactor,
    day_start,
    median_seconds,
    ratio,
    week_label,
    week_of,
    week_over_week,
    weeks_between,
)
from pintuan.errors import Forbidden, NotFound
from pintuan.growth.models import GrowthDaily, GrowthRollup, GrowthSample
from pintuan.kit.sql import upsert_insert
from pintuan.shares.models import Share, ShareConversion, ShareVisit
from pintuan.teams.models import Seat, Team

_SHARE_METRICS = ("shares", "visits", "starts", "joins", "paid", "successes")
_BASE_METRICS = ("buyers", "teams_succeeded", "teams_failed")
_KIND_METRIC = {"start": "starts", "join": "joins", "pay": "paid", "success": "successes"}
GROUPS = ("deal", "channel", "country", "week")

Key = tuple[str, str, str, date]  # deal, channel, country, cohort week


# ---------------------------------------------------------------------------- the roll-up


def _utc_date(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass
class DayFigures:
    counts: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[tuple[str, Key, int]] = field(default_factory=list)


def rollup_day(session: Session, day: date, now: datetime) -> int:
    """Roll up one UTC day (again, if it was already) in one transaction: returns the rows
    written. The worker and the CLI read a day's figures without the write lock instead
    (``day_figures``, then ``write_day``): counting a day passes over every seat and team."""
    return write_day(session, day, day_figures(session, day), now)


def day_figures(session: Session, day: date) -> DayFigures:
    """What one UTC day's roll-up writes, read (a read-only transaction is enough)."""
    start, end = day_start(day), day_start(day + timedelta(days=1))
    figures = DayFigures()
    _count_shares(session, figures, start, end)
    _count_visits(session, figures, start, end)
    _count_conversions(session, figures, start, end)
    _count_buyers(session, figures, day, start, end)
    _count_teams(session, figures, start, end)
    _sample_cycles(session, figures, start, end)
    return figures


def write_day(session: Session, day: date, figures: DayFigures, now: datetime) -> int:
    """Replace ``day``'s rolled-up rows with ``figures``: returns the rows written."""
    session.execute(delete(GrowthDaily).where(GrowthDaily.day == day))
    session.execute(delete(GrowthSample).where(GrowthSample.day == day))
    rows = [
        {
            "day": day,
            "deal_id": key[0],
            "channel": key[1],
            "country": key[2],
            "cohort_week": key[3],
            **{name: counts.get(name, 0) for name in _SHARE_METRICS + _BASE_METRICS},
        }
        for key, counts in figures.counts.items()
    ]
    if rows:
        session.execute(insert(GrowthDaily), rows)
    samples = [
        {
            "day": day,
            "kind": kind,
            "deal_id": key[0],
            "channel": key[1],
            "country": key[2],
            "cohort_week": key[3],
            "seconds": seconds,
        }
        for kind, key, seconds in figures.samples
    ]
    if samples:
        session.execute(insert(GrowthSample), samples)
    session.execute(
        upsert_insert(session, GrowthRollup)
        .values(day=day, rolled_at=now)
        .on_conflict_do_update(index_elements=["day"], set_={"rolled_at": now})
    )
    return len(rows) + len(samples)


def _count_shares(session: Session, figures: DayFigures, start: datetime, end: datetime) -> None:
    made = _utc_date(session, Share.created_at)
    for deal_id, channel, country, made_on, n in session.execute(
        select(Share.deal_id, Share.channel, Share.country, made, func.count())
        .where(Share.created_at >= start, Share.created_at < end)
        .group_by(Share.deal_id, Share.channel, Share.country, made)
    ):
        figures.counts[(deal_id, channel, country, week_of(_as_date(made_on)))]["shares"] += n


def _count_visits(session: Session, figures: DayFigures, start: datetime, end: datetime) -> None:
    made = _utc_date(session, Share.created_at)
    for deal_id, channel, country, made_on, n in session.execute(
        select(Share.deal_id, Share.channel, ShareVisit.country, made, func.count())
        .join(Share, Share.id == ShareVisit.share_id)
        .where(
            ShareVisit.at >= start,
            ShareVisit.at < end,
            ShareVisit.is_bot.is_(False),
            ShareVisit.is_self.is_(False),
        )
        .group_by(Share.deal_id, Share.channel, ShareVisit.country, made)
    ):
        figures.counts[(deal_id, channel, country, week_of(_as_date(made_on)))]["visits"] += n


def _count_conversions(
    session: Session, figures: DayFigures, start: datetime, end: datetime
) -> None:
    made = _utc_date(session, Share.created_at)
    for deal_id, channel, country, made_on, kind, n in session.execute(
        select(
            Share.deal_id,
            Share.channel,
            ShareVisit.country,
            made,
            ShareConversion.kind,
            func.count(),
        )
        .join(Share, Share.id == ShareConversion.share_id)
        .join(ShareVisit, ShareVisit.id == ShareConversion.visit_id)
        .where(ShareConversion.occurred_at >= start, ShareConversion.occurred_at < end)
        .group_by(Share.deal_id, Share.channel, ShareVisit.country, made, ShareConversion.kind)
    ):
        key = (deal_id, channel, country, week_of(_as_date(made_on)))
        figures.counts[key][_KIND_METRIC[kind]] += n


def _count_buyers(
    session: Session, figures: DayFigures, day: date, start: datetime, end: datetime
) -> None:
    for deal_id, n in session.execute(
        select(Seat.deal_id, func.count())
        .where(Seat.paid_at >= start, Seat.paid_at < end)
        .group_by(Seat.deal_id)
    ):
        figures.counts[(deal_id, "", "", week_of(day))]["buyers"] += n


def _count_teams(session: Session, figures: DayFigures, start: datetime, end: datetime) -> None:
    for deal_id, status, created_at, ended_at in session.execute(
        select(Team.deal_id, Team.status, Team.created_at, Team.ended_at).where(
            Team.ended_at >= start,
            Team.ended_at < end,
            Team.status.in_(("succeeded", "failed")),
            ~Team.solo,  # a solo purchase is a buyer, not a team that filled or did not
        )
    ):
        key = (deal_id, "", "", week_of(created_at))
        figures.counts[key][f"teams_{status}"] += 1
        if status == "succeeded":
            assert ended_at is not None
            figures.samples.append(("fill", key, round((ended_at - created_at).total_seconds())))


def _sample_cycles(session: Session, figures: DayFigures, start: datetime, end: datetime) -> None:
    sharer_paid_before = (
        select(func.max(Seat.paid_at))
        .where(Seat.user_id == Share.sharer_id, Seat.paid_at < ShareConversion.occurred_at)
        .correlate(Share, ShareConversion)
        .scalar_subquery()
    )
    for deal_id, channel, country, made_at, paid_at, sharer_paid_at in session.execute(
        select(
            Share.deal_id,
            Share.channel,
            ShareVisit.country,
            Share.created_at,
            ShareConversion.occurred_at,
            sharer_paid_before.label("sharer_paid_at"),
        )
        .join(Share, Share.id == ShareConversion.share_id)
        .join(ShareVisit, ShareVisit.id == ShareConversion.visit_id)
        .where(
            ShareConversion.kind == "pay",
            ShareConversion.occurred_at >= start,
            ShareConversion.occurred_at < end,
            Share.sharer_id.is_not(None),
        )
    ):
        if sharer_paid_at is None:
            continue
        before = _aware(sharer_paid_at)
        key = (deal_id, channel, country, week_of(made_at))
        figures.samples.append(("cycle", key, round((paid_at - before).total_seconds())))


def _aware(value: Any) -> datetime:
    """An instant from an aggregate, which SQLite may return as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def first_activity_day(session: Session) -> date | None:
    """The first day anything a roll-up counts happened (a share made or a seat taken)."""
    firsts = [
        session.scalar(select(func.min(Share.created_at))),
        session.scalar(select(func.min(Seat.created_at))),
    ]
    found = [_aware(v).date() for v in firsts if v is not None]
    return min(found) if found else None


def last_rolled_day(session: Session) -> date | None:
    value = session.scalar(select(func.max(GrowthRollup.day)))
    return _as_date(value) if value is not None else None


def claim_day(session: Session, day: date, now: datetime) -> bool:
    """Mark a day as being rolled up; False when another worker has it already."""
    claimed = session.execute(
        upsert_insert(session, GrowthRollup)
        .values(day=day, rolled_at=now)
        .on_conflict_do_nothing()
        .returning(GrowthRollup.day)
    ).first()
    return claimed is not None


# ---------------------------------------------------------------------------- who sees what


@dataclass(frozen=True, slots=True)
class GrowthFilters:
    deal_id: str | None = None
    merchant_id: str | None = None
    channel: str | None = None
    country: str | None = None
    from_week: date | None = None
    to_week: date | None = None
    # None: every merchant (operators); else only deals of these merchants.
    merchants: frozenset[str] | None = None


def scoped(session: Session, principal: Principal, filters: GrowthFilters) -> GrowthFilters:
    """The filters narrowed to what the caller may read: operators everything, merchant staff
    their own merchants' deals; anyone else nothing."""
    if principal.is_operator:
        merchants = None
    elif principal.merchant_ids:
        merchants = principal.merchant_ids
    else:
        raise Forbidden(
            "Growth analytics are for operators and merchant staff.", code="not_merchant_staff"
        )
    if (
        filters.merchant_id is not None
        and merchants is not None
        and filters.merchant_id not in merchants
    ):
        raise Forbidden(
            f"Only staff of merchant {filters.merchant_id} may read its analytics.",
            code="not_merchant_staff",
        )
    if filters.deal_id is not None:
        deal = session.get(Deal, filters.deal_id)
        if deal is None or (merchants is not None and deal.merchant_id not in merchants):
            raise NotFound(f"No deal {filters.deal_id}.", code="deal_not_found")
    return GrowthFilters(
        deal_id=filters.deal_id,
        merchant_id=filters.merchant_id,
        channel=filters.channel,
        country=filters.country,
        from_week=filters.from_week,
        to_week=filters.to_week,
        merchants=merchants,
    )


def _deal_conditions(filters: GrowthFilters, deal_id: Any, weeks: Any) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.deal_id is not None:
        conditions.append(deal_id == filters.deal_id)
    # ``scoped`` has already refused a merchant outside the caller's own.
    owners = {filters.merchant_id} if filters.merchant_id is not None else filters.merchants
    if owners is not None:
        conditions.append(deal_id.in_(select(Deal.id).where(Deal.merchant_id.in_(sorted(owners)))))
    if filters.from_week is not None:
        conditions.append(weeks >= filters.from_week)
    if filters.to_week is not None:
        conditions.append(weeks <= filters.to_week)
    return conditions


def _share_conditions(filters: GrowthFilters, table: Any) -> list[ColumnElement[bool]]:
    conditions = _deal_conditions(filters, table.deal_id, table.cohort_week)
    conditions.append(table.channel != "")
    if filters.channel is not None:
        conditions.append(table.channel == filters.channel)
    if filters.country is not None:
        conditions.append(table.country == filters.country)
    return conditions


def _base_conditions(filters: GrowthFilters, table: Any) -> list[ColumnElement[bool]]:
    return [*_deal_conditions(filters, table.deal_id, table.cohort_week), table.channel == ""]


# ---------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class FunnelRow:
    group: str | None
    shares: int
    visits: int
    starts: int
    joins: int
    paid: int
    successes: int
    buyers: int
    teams_succeeded: int
    teams_failed: int
    cycle_seconds: list[int]
    fill_seconds: list[int]

    @property
    def orders(self) -> int:
        return self.starts + self.joins

    @property
    def k_factor(self) -> KFactor:
        return KFactor(shares=self.shares, buyers=self.buyers, brought=self.paid)

    @property
    def team_success_rate(self) -> float | None:
        return ratio(self.teams_succeeded, self.teams_succeeded + self.teams_failed)

    @property
    def median_cycle_seconds(self) -> float | None:
        return median_seconds(self.cycle_seconds)

    @property
    def median_fill_seconds(self) -> float | None:
        return median_seconds(self.fill_seconds)


def _group_column(table: Any, group: str | None) -> Any:
    return {
        None: None,
        "deal": table.deal_id,
        "channel": table.channel,
        "country": table.country,
        "week": table.cohort_week,
    }[group]


def _group_label(value: Any, group: str | None) -> str | None:
    if group is None:
        return None
    if group == "week":
        return week_label(_as_date(value))
    return str(value)


def _sums(
    session: Session,
    metrics: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    group: str | None,
) -> dict[str | None, dict[str, int]]:
    column = _group_column(GrowthDaily, group)
    selected = [func.coalesce(func.sum(getattr(GrowthDaily, m)), 0) for m in metrics]
    query = select(*([column] if column is not None else []), *selected).where(*conditions)
    if column is not None:
        query = query.group_by(column)
    found: dict[str | None, dict[str, int]] = {}
    for row in session.execute(query):
        values = list(row)
        label = _group_label(values.pop(0), group) if column is not None else None
        found[label] = {m: int(v) for m, v in zip(metrics, values, strict=True)}
    return found


def _samples(
    session: Session, kind: str, conditions: Sequence[ColumnElement[bool]], group: str | None
) -> dict[str | None, list[int]]:
    column = _group_column(GrowthSample, group)
    query = select(*([column] if column is not None else []), GrowthSample.seconds).where(
        GrowthSample.kind == kind, *conditions
    )
    found: dict[str | None, list[int]] = defaultdict(list)
    for row in session.execute(query):
        values = list(row)
        label = _group_label(values.pop(0), group) if column is not None else None
        found[label].append(int(values[0]))
    return found


def funnel(session: Session, filters: GrowthFilters, group: str | None = None) -> list[FunnelRow]:
    """The funnel, K-factor inputs, cycle and fill times, per group (or one row in all).

    Orders from any source and team outcomes have no channel or country, so grouped or
    filtered by either, each row carries the figures of all channels and countries.
    """
    shared = _sums(session, _SHARE_METRICS, _share_conditions(filters, GrowthDaily), group)
    base_group = group if group in (None, "deal", "week") else None
    base = _sums(session, _BASE_METRICS, _base_conditions(filters, GrowthDaily), base_group)
    cycles = _samples(session, "cycle", _share_conditions(filters, GrowthSample), group)
    fills = _samples(session, "fill", _base_conditions(filters, GrowthSample), base_group)
    labels: Iterable[str | None] = (
        sorted(g for g in {*shared, *base, *cycles, *fills} if g is not None)
        if group is not None
        else [None]
    )
    rows = []
    for label in labels:
        base_label = label if base_group is not None else None
        s = shared.get(label, {})
        b = base.get(base_label, {})
        rows.append(
            FunnelRow(
                group=label,
                **{m: s.get(m, 0) for m in _SHARE_METRICS},
                **{m: b.get(m, 0) for m in _BASE_METRICS},
                cycle_seconds=sorted(cycles.get(label, [])),
                fill_seconds=sorted(fills.get(base_label, [])),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ChannelWeek:
    week: date
    visits: int
    conversions: int
    visits_ratio: float | None
    conversions_ratio: float | None


def channel_decay(session: Session, filters: GrowthFilters) -> dict[str, list[ChannelWeek]]:
    """Per channel and calendar week (the week visits and payments happened, not the cohort):
    qualifying visits and paid orders, each as a ratio of the week before."""
    week_free = GrowthFilters(
        deal_id=filters.deal_id,
        merchant_id=filters.merchant_id,
        channel=filters.channel,
        country=filters.country,
        merchants=filters.merchants,
    )
    conditions = _share_conditions(week_free, GrowthDaily)
    if filters.from_week is not None:
        conditions.append(GrowthDaily.day >= filters.from_week)
    if filters.to_week is not None:
        conditions.append(GrowthDaily.day < filters.to_week + timedelta(days=7))
    per_week: dict[str, Counter[tuple[date, str]]] = defaultdict(Counter)
    seen: list[date] = []
    for channel, day, day_visits, day_paid in session.execute(
        select(
            GrowthDaily.channel,
            GrowthDaily.day,
            func.sum(GrowthDaily.visits),
            func.sum(GrowthDaily.paid),
        )
        .where(*conditions)
        .group_by(GrowthDaily.channel, GrowthDaily.day)
    ):
        week = week_of(_as_date(day))
        per_week[channel][(week, "visits")] += int(day_visits)
        per_week[channel][(week, "paid")] += int(day_paid)
        seen.append(week)
    if not seen and (filters.from_week is None or filters.to_week is None):
        return {}
    first = filters.from_week or min(seen)
    last = filters.to_week or max(seen)
    weeks = weeks_between(first, last)
    decay: dict[str, list[ChannelWeek]] = {}
    for channel in sorted(per_week):
        counts = per_week[channel]
        visits = [counts[(w, "visits")] for w in weeks]
        paid = [counts[(w, "paid")] for w in weeks]
        decay[channel] = [
            ChannelWeek(w, v, p, vr, pr)
            for w, v, p, vr, pr in zip(
                weeks, visits, paid, week_over_week(visits), week_over_week(paid), strict=True
            )
        ]
    return decay


# ---------------------------------------------------------------------------- cross-vertical flow


@dataclass(frozen=True, slots=True)
class VerticalFlow:
    """Paid orders in ``vertical`` by shoppers who came for ``entry``, and how many shoppers."""

    entry: str
    vertical: str
    orders: int
    buyers: int


@dataclass(frozen=True, slots=True)
class CrossVerticalWeek:
    """One ISO week of paid orders, split by whether the buyer came for the same vertical."""

    week: date
    orders: int
    cross_orders: int
    buyers: int
    cross_buyers: int
    flows: list[VerticalFlow]

    @property
    def cross_share(self) -> float | None:
        return ratio(self.cross_orders, self.orders)


_IN_CHUNK = 500


def _first_touches(session: Session, table: Any, at: Any, users: list[str]) -> dict[str, Any]:
    """Each user's earliest row of ``table`` (by ``at``): (instant, vertical of its deal)."""
    found: dict[str, Any] = {}
    for offset in range(0, len(users), _IN_CHUNK):
        chunk = users[offset : offset + _IN_CHUNK]
        conditions = [table.user_id.in_(chunk)]
        if table is ShareVisit:
            conditions += [ShareVisit.is_bot.is_(False), ShareVisit.is_self.is_(False)]
        ranked = (
            select(
                table.user_id.label("user_id"),
                at.label("at"),
                Deal.vertical.label("vertical"),
                func.row_number()
                .over(partition_by=table.user_id, order_by=(at, table.id))
                .label("rank"),
            )
            .join(Deal, Deal.id == table.deal_id)
            .where(*conditions)
            .subquery()
        )
        for user_id, instant, vertical in session.execute(
            select(ranked.c.user_id, ranked.c.at, ranked.c.vertical).where(ranked.c.rank == 1)
        ):
            found[user_id] = (_aware(instant), str(vertical))
    return found


def cross_vertical(session: Session, filters: GrowthFilters) -> list[CrossVerticalWeek]:
    """Paid orders per ISO week of payment, each credited to the vertical its buyer first came
    for: the vertical of their first qualifying share visit or of their first order, whichever
    came first. An order in another vertical than that is *cross-vertical*: the one traffic
    pool lifting a vertical with shoppers another brought. Channel and country do not apply.

    Read from the orders themselves, not the roll-ups: a shopper's first touch may lie in any
    earlier day."""
    conditions = _deal_conditions(
        replace(filters, from_week=None, to_week=None), Seat.deal_id, Seat.paid_at
    )
    if filters.from_week is not None:
        conditions.append(Seat.paid_at >= day_start(filters.from_week))
    if filters.to_week is not None:
        conditions.append(Seat.paid_at < day_start(filters.to_week + timedelta(days=7)))
    paid = session.execute(
        select(Seat.user_id, Seat.paid_at, Deal.vertical)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.paid_at.is_not(None), *conditions)
    ).all()
    users = sorted({user_id for user_id, _, _ in paid})
    seats = _first_touches(session, Seat, Seat.created_at, users)
    visits = _first_touches(session, ShareVisit, ShareVisit.at, users)
    orders: dict[date, Counter[tuple[str, str]]] = defaultdict(Counter)
    buyers: dict[date, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for user_id, paid_at, vertical in paid:
        touches = [t for t in (seats.get(user_id), visits.get(user_id)) if t is not None]
        entry = min(touches)[1] if touches else str(vertical)
        week = week_of(_aware(paid_at).date())
        orders[week][(entry, str(vertical))] += 1
        buyers[week][(entry, str(vertical))].add(user_id)
    weeks = []
    for week in sorted(orders):
        pairs = orders[week]
        everyone = set().union(*buyers[week].values())
        crossing = set().union(*(b for (e, v), b in buyers[week].items() if e != v))
        weeks.append(
            CrossVerticalWeek(
                week=week,
                orders=sum(pairs.values()),
                cross_orders=sum(n for (e, v), n in pairs.items() if e != v),
                buyers=len(everyone),
                cross_buyers=len(crossing),
                flows=[
                    VerticalFlow(e, v, n, len(buyers[week][(e, v)]))
                    for (e, v), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
                ],
            )
        )
    return weeks
