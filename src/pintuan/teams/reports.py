"""What a merchant's staff read about their teams: lists with filters and search, and the
dashboard's figures (sales per business day, team success rate, time to fill).

Everything here only reads. Each function checks that the caller may see the merchant's data:
its staff and operators may; anybody else is told the merchant does not exist, so that ids of
other merchants cannot be probed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, cast, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.sql.expression import literal_column

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus, TeamStatus
from pintuan.errors import NotFound, field_error
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.sql import contains_pattern
from pintuan.kit.time import utc_now, zone
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import get_merchant
from pintuan.teams.models import Seat, Team

MAX_DASHBOARD_DAYS = 366
# Every UTC offset in use today is a whole number of quarter hours, so a local midnight always
# falls on a quarter-hour boundary of UTC: quarter-hour buckets sort cleanly into local days.
_BUCKET_SECONDS = 900


def managed_merchant(session: Session, principal: Principal, merchant_id: str) -> Merchant:
    """The merchant, if the caller is its staff or an operator; else ``merchant_not_found``."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    return get_merchant(session, merchant_id)


Column = ColumnElement[str] | InstrumentedAttribute[str]


def search_condition(text: str, user_id: Column, *ids: Column) -> ColumnElement[bool]:
    """Rows whose id is ``text`` exactly, or whose shopper's name or email contains it."""
    pattern = contains_pattern(text.strip())
    shopper = aliased(User)  # the query around may join users already
    people = exists().where(
        shopper.id == user_id,
        or_(
            shopper.display_name.ilike(pattern, escape="\\"),
            shopper.email.ilike(pattern, escape="\\"),
        ),
    )
    return or_(*(column == text.strip() for column in ids), people)


# ---------------------------------------------------------------------------- teams


@dataclass(frozen=True, slots=True)
class TeamFilters:
    status: TeamStatus | None = None
    deal_id: str | None = None
    text: str | None = None  # a team id, or part of a member's display name or email


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: str
    deal_id: str
    deal_title: str
    status: str
    team_size: int
    taken: int
    paid: int
    leader_name: str
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None

    @property
    def seats_left(self) -> int:
        return self.team_size - self.taken


def _teams_of(merchant_id: str) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Team.id,
            Team.deal_id,
            Deal.title,
            Team.status,
            Team.team_size,
            Team.taken,
            Team.paid,
            User.display_name,
            Team.expires_at,
            Team.created_at,
            Team.ended_at,
        )
        .join(Deal, Deal.id == Team.deal_id)
        .join(User, User.id == Team.leader_id)
        .where(Deal.merchant_id == merchant_id)
    )


def list_merchant_teams(
    session: Session,
    principal: Principal,
    merchant_id: str,
    filters: TeamFilters,
    *,
    cursor: str | None,
    limit: int,
) -> list[TeamRow]:
    """The merchant's teams newest first, ``limit + 1`` rows so the caller knows whether more
    follow. The text search finds a team by its id or by any member's name or email."""
    managed_merchant(session, principal, merchant_id)
    query = _teams_of(merchant_id).order_by(Team.id.desc()).limit(limit + 1)
    if filters.status is not None:
        query = query.where(Team.status == filters.status.value)
    if filters.deal_id:
        query = query.where(Team.deal_id == filters.deal_id)
    if filters.text and filters.text.strip():
        member = exists().where(
            Seat.team_id == Team.id, search_condition(filters.text, Seat.user_id)
        )
        query = query.where(or_(Team.id == filters.text.strip(), member))
    if cursor is not None:
        query = query.where(Team.id < decode_cursor(cursor))
    return [TeamRow(*row) for row in session.execute(query).all()]


def merchant_team(
    session: Session, principal: Principal, merchant_id: str, team_id: str
) -> TeamRow:
    """One of the merchant's teams; ``team_not_found`` when it belongs to another merchant."""
    managed_merchant(session, principal, merchant_id)
    row = session.execute(_teams_of(merchant_id).where(Team.id == team_id)).one_or_none()
    if row is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    return TeamRow(*row)


# ---------------------------------------------------------------------------- dashboard


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date
    amounts: dict[str, int]  # currency → minor units of confirmed seats

    def amount(self, currency: str) -> int:
        return self.amounts.get(currency, 0)


@dataclass(frozen=True, slots=True)
class DayOutcomes:
    day: date
    succeeded: int
    failed: int

    @property
    def ended(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.ended if self.ended else None


@dataclass(frozen=True, slots=True)
class TimeToFill:
    """Seconds from a team's start to its success, over the teams that succeeded."""

    teams: int
    median_seconds: int | None
    p90_seconds: int | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    merchant_id: str
    time_zone: str
    currency: str
    first_day: date
    last_day: date
    sales: list[DaySales]
    outcomes: list[DayOutcomes]
    time_to_fill: TimeToFill

    @property
    def succeeded(self) -> int:
        return sum(o.succeeded for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    @property
    def success_rate(self) -> float | None:
        ended = self.succeeded + self.failed
        return self.succeeded / ended if ended else None

    @property
    def currencies(self) -> list[str]:
        """Currencies with sales in the period, the merchant's own first."""
        seen = {c for s in self.sales for c, amount in s.amounts.items() if amount}
        return sorted(seen | {self.currency}, key=lambda c: (c != self.currency, c))

    def total_sales(self, currency: str) -> int:
        return sum(s.amount(currency) for s in self.sales)


def nearest_rank(sorted_values: Sequence[int], fraction: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of the values
    at or below it (the median of 1, 2, 3, 4 is 2). None for no values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _quarter_hour(session: Session, instant: Any) -> ColumnElement[int]:
    """The UTC quarter hour an instant falls in, counted from the Unix epoch."""
    width: ColumnElement[int] = literal_column(
        str(_BUCKET_SECONDS), Integer
    )  # a literal, so GROUP BY repeats it exactly
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", instant), Integer) // width
    return cast(func.floor(func.extract("epoch", instant) / width), BigInteger)


def merchant_dashboard(
    session: Session,
    principal: Principal,
    merchant_id: str,
    *,
    days: int = 30,
    deal_id: str | None = None,
    today: date | None = None,
) -> Dashboard:
    """The merchant's figures for the ``days`` business days up to ``today`` (default: today in
    the merchant's time zone), optionally for one deal.

    Sales are the prices of confirmed seats, counted on the business day their team succeeded;
    a team's outcome counts on the day it ended. The database groups by UTC quarter hour, so the
    work grows with the length of the period, not with the number of seats sold.
    """
    if not 1 <= days <= MAX_DASHBOARD_DAYS:
        raise field_error("days", f"must be between 1 and {MAX_DASHBOARD_DAYS}")
    merchant = managed_merchant(session, principal, merchant_id)
    tz = zone(merchant.time_zone)
    last_day = today or utc_now().astimezone(tz).date()
    first_day = last_day - timedelta(days=days - 1)
    start = datetime.combine(first_day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    scope = [Deal.merchant_id == merchant_id, Team.ended_at >= start, Team.ended_at < end]
    if deal_id:
        scope.append(Team.deal_id == deal_id)

    def local_day(quarter: int) -> date:
        return datetime.fromtimestamp(quarter * _BUCKET_SECONDS, tz).date()

    bucket = _quarter_hour(session, Team.ended_at)
    sold = session.execute(
        select(bucket, Seat.currency, func.sum(Seat.price_amount))
        .select_from(Seat)
        .join(Team, Team.id == Seat.team_id)
        .join(Deal, Deal.id == Team.deal_id)
        .where(
            *scope,
            Team.status == TeamStatus.SUCCEEDED.value,
            Seat.status == SeatStatus.CONFIRMED.value,
        )
        .group_by(bucket, Seat.currency)
    ).all()
    sales: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for quarter, currency, amount in sold:
        sales[local_day(int(quarter))][currency] += int(amount)

    # A solo purchase is sales, not a team: it neither fills nor fails to fill.
    ended = session.execute(
        select(bucket, Team.status, func.count())
        .join(Deal, Deal.id == Team.deal_id)
        .where(
            *scope,
            Team.status.in_((TeamStatus.SUCCEEDED.value, TeamStatus.FAILED.value)),
            ~Team.solo,
        )
        .group_by(bucket, Team.status)
    ).all()
    outcomes: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for quarter, status, count in ended:
        outcomes[local_day(int(quarter))][status] += int(count)

    filled = session.execute(
        select(Team.created_at, Team.ended_at)
        .join(Deal, Deal.id == Team.deal_id)
        .where(*scope, Team.status == TeamStatus.SUCCEEDED.value, ~Team.solo)
    ).all()
    durations = sorted(
        max(0, int((ended_at - created_at).total_seconds()))
        for created_at, ended_at in filled
        if ended_at is not None
    )

    every_day = [first_day + timedelta(days=n) for n in range(days)]
    return Dashboard(
        merchant_id=merchant.id,
        time_zone=merchant.time_zone,
        currency=merchant.currency,
        first_day=first_day,
        last_day=last_day,
        sales=[DaySales(day, dict(sales.get(day, {}))) for day in every_day],
        outcomes=[
            DayOutcomes(
                day,
                outcomes.get(day, {}).get(TeamStatus.SUCCEEDED.value, 0),
                outcomes.get(day, {}).get(TeamStatus.FAILED.value, 0),
            )
            for day in every_day
        ],
        time_to_fill=TimeToFill(
            teams=len(durations),
            median_seconds=nearest_rank(durations, 0.5),
            p90_seconds=nearest_rank(durations, 0.9),
        ),
    )
