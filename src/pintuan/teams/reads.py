"""Reading teams and seats: a team with its members, the joinable list, a shopper's orders, and
the seat lookups that paying and the friend-pays page start from.

Nothing here changes a row; every write of a team or seat is in ``teams.service``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.ladder import Ladder, LadderProgress, progress, tiers_from_json
from pintuan.domain.teams import LIVE_SEATS, SeatStatus, TeamStatus, almost_full
from pintuan.errors import NotFound
from pintuan.kit.orm import table_of
from pintuan.teams.models import Seat, Team

seats = table_of(Seat)

_LIVE = tuple(status.value for status in LIVE_SEATS)


@dataclass(frozen=True, slots=True)
class Member:
    display_name: str
    is_leader: bool
    paid: bool
    joined_at: datetime
    pay_by: datetime | None  # an unpaid seat's hold deadline


@dataclass(frozen=True, slots=True)
class Payer:
    """A member whose seat still waits for their payment, and until when."""

    display_name: str
    pay_by: datetime | None


@dataclass(frozen=True, slots=True)
class TeamView:
    id: str
    deal_id: str
    status: str
    team_size: int
    taken: int
    paid: int
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None
    members: list[Member]
    solo: bool = False
    # Who leads (or last led) the team: a member while it forms, kept once it has ended.
    leader_name: str = ""
    # A ladder team's progress through its deal's tiers, in ``currency`` (None: not a ladder).
    ladder: LadderProgress | None = None
    currency: str = ""
    # Seats a budget paid for at the window's end (domain/autofill.py), and whose.
    filled_seats: int = 0
    filled_by: str | None = None

    @property
    def leader(self) -> Member | None:
        return next((m for m in self.members if m.is_leader), None)

    @property
    def seats_left(self) -> int:
        return max(self.team_size - self.taken, 0)

    @property
    def almost_full(self) -> bool:
        return almost_full(self.team_size, self.taken)

    @property
    def waiting_for(self) -> list[Payer]:
        """Members still to pay, soonest deadline first: what a full team waits for."""
        unpaid = [Payer(m.display_name, m.pay_by) for m in self.members if not m.paid]
        return sorted(unpaid, key=lambda p: (p.pay_by is None, p.pay_by or self.expires_at))


def get_team(session: Session, team_id: str) -> TeamView:
    """A team with its live members' display names, leader first."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    return _team_views(session, [team])[0]


def _team_views(session: Session, found: Sequence[Team]) -> list[TeamView]:
    leaders: dict[str, str] = {
        row.id: row.display_name
        for row in session.execute(
            select(User.id, User.display_name).where(User.id.in_({t.leader_id for t in found}))
        )
    }
    rows = session.execute(
        select(
            seats.c.team_id,
            seats.c.is_leader,
            seats.c.status,
            seats.c.created_at,
            seats.c.hold_expires_at,
            User.display_name,
        )
        .join(User, User.id == seats.c.user_id)
        .where(seats.c.team_id.in_([t.id for t in found]), seats.c.status.in_(_LIVE))
        .order_by(seats.c.is_leader.desc(), seats.c.created_at)
    ).all()
    ladders = _ladders(session, {t.deal_id for t in found if t.min_size is not None})
    members: dict[str, list[Member]] = {t.id: [] for t in found}
    for r in rows:
        members[r.team_id].append(
            Member(
                r.display_name,
                r.is_leader,
                r.status != SeatStatus.HELD.value,
                r.created_at,
                r.hold_expires_at if r.status == SeatStatus.HELD.value else None,
            )
        )
    return [
        TeamView(
            t.id,
            t.deal_id,
            t.status,
            t.team_size,
            t.taken,
            t.paid,
            t.expires_at,
            t.created_at,
            t.ended_at,
            members[t.id],
            t.solo,
            leaders.get(t.leader_id, ""),
            progress(
                ladders[t.deal_id][0],
                paid=t.paid,
                taken=t.taken,
                forming=t.status == TeamStatus.FORMING.value,
            )
            if t.deal_id in ladders
            else None,
            ladders[t.deal_id][1] if t.deal_id in ladders else "",
            t.filled_seats,
            t.filled_by,
        )
        for t in found
    ]


def _ladders(session: Session, deal_ids: set[str]) -> dict[str, tuple[Ladder, str]]:
    """The ladders of these deals, with their currency."""
    if not deal_ids:
        return {}
    return {
        d.id: (Ladder.of(d.team_size, d.group_price_amount, tiers_from_json(d.ladder)), d.currency)
        for d in session.execute(
            select(
                Deal.id, Deal.team_size, Deal.group_price_amount, Deal.ladder, Deal.currency
            ).where(Deal.id.in_(deal_ids), Deal.ladder.is_not(None))
        )
    }


def joinable_teams(session: Session, deal_id: str, now: datetime, limit: int) -> list[TeamView]:
    """Forming teams with a free place, the nearest to full first."""
    if session.get(Deal, deal_id) is None:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    found = session.scalars(
        select(Team)
        .where(
            Team.deal_id == deal_id,
            Team.status == TeamStatus.FORMING.value,
            Team.taken < Team.team_size,
            Team.expires_at > now,
            ~Team.solo,
        )
        .order_by((Team.team_size - Team.taken).asc(), Team.expires_at.asc())
        .limit(limit)
    ).all()
    return _team_views(session, found) if found else []


@dataclass(frozen=True, slots=True)
class MySeat:
    seat: Seat
    team_status: str
    team_expires_at: datetime
    deal_title: str

    @property
    def id(self) -> str:
        return self.seat.id


def my_seats(session: Session, user_id: str, cursor_id: str | None, limit: int) -> list[MySeat]:
    """The shopper's seats newest first, with their team's status."""
    query = (
        select(Seat, Team.status, Team.expires_at, Deal.title)
        .join(Team, Team.id == Seat.team_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.user_id == user_id)
        .order_by(Seat.id.desc())
        .limit(limit + 1)
    )
    if cursor_id is not None:
        query = query.where(Seat.id < cursor_id)
    return [MySeat(r.Seat, r.status, r.expires_at, r.title) for r in session.execute(query).all()]


def seat_by_id(session: Session, seat_id: str) -> Seat:
    """Any seat by its id (a friend paying for it may see it)."""
    seat = session.get(Seat, seat_id)
    if seat is None:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return seat


def team_expiry(session: Session, team_id: str) -> datetime:
    """Until when a payment's hold for a seat of the team must last: its window, and on a deal
    with a tipping point not yet reached, the deal's end, when a full team waiting for the tip
    succeeds or fails (``WAIT_FOR_TIP`` in teams/service.py)."""
    row = session.execute(
        select(Team.expires_at, Deal.ends_at, Deal.tipping_point, Deal.tipped_at)
        .join(Deal, Deal.id == Team.deal_id)
        .where(Team.id == team_id)
    ).first()
    if row is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    expires_at, ends_at, tipping_point, tipped_at = row
    if tipping_point is not None and tipped_at is None:
        return max(expires_at, ends_at)
    return expires_at


@dataclass(frozen=True, slots=True)
class FriendSeat:
    """What a friend asked to pay for a seat may see of it."""

    seat_id: str
    team_id: str
    deal_id: str
    deal_title: str
    display_name: str
    amount: int
    currency: str


def seat_for_friend(session: Session, seat_id: str) -> FriendSeat:
    """The seat a pay link names, as the friend asked to pay for it may see it."""
    row = session.execute(
        select(Seat, Deal.title, User.display_name)
        .join(Deal, Deal.id == Seat.deal_id)
        .join(User, User.id == Seat.user_id)
        .where(Seat.id == seat_id)
    ).first()
    if row is None:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    seat = row.Seat
    return FriendSeat(
        seat.id,
        seat.team_id,
        seat.deal_id,
        row.title,
        row.display_name,
        seat.price_amount,
        seat.currency,
    )


def owned_seat(session: Session, user_id: str, seat_id: str) -> Seat:
    """The shopper's own seat; anybody else's is not found."""
    seat = session.get(Seat, seat_id)
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return seat


def tipping_seats(session: Session, deal: Deal) -> int | None:
    """How many paid seats count towards an untipped deal's tipping point: those of its full,
    paid teams waiting for it (``domain/ladder.py``); None for a deal with no tipping point or
    one that tipped already."""
    if deal.tipping_point is None or deal.tipped_at is not None:
        return None
    waiting = session.scalar(
        select(func.coalesce(func.sum(Team.paid), 0)).where(
            Team.deal_id == deal.id,
            Team.status == TeamStatus.FORMING.value,
            Team.paid == Team.team_size,
        )
    )
    return int(waiting or 0)
