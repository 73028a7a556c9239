"""Where joining a team is decided: starting and joining teams, paying, releasing and ending.

Every step that could be refused is one conditional write whose "no row changed" is the
refusal (see DESIGN.md, "the shape of a join"). No count is read, changed in Python and written
back, so concurrent requests and several processes cannot push a team past its size or a deal past
its stock.

Lock order on PostgreSQL is always deal → team → seat → shopper counter. The join gets it from
the order of its updates; every other transition takes the deal and team locks first
(``_lock_deals_and_teams``). SQLite has one writer and needs no row locks.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.teams import (
    DealState,
    SeatStatus,
    TeamState,
    TeamStatus,
    already_member,
    deal_refusal,
    limit_refusal,
    not_new_shopper,
    seat_price,
    team_refusal,
)
from pintuan.errors import Conflict, NotFound
from pintuan.events.service import record_event, record_events
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.teams.models import DealShopperCount, Seat, Team

deals = table_of(Deal)
teams = table_of(Team)
seats = table_of(Seat)
counts = table_of(DealShopperCount)

_LIVE = (SeatStatus.HELD.value, SeatStatus.PAID.value, SeatStatus.CONFIRMED.value)
_UNCONFIRMED = (SeatStatus.HELD.value, SeatStatus.PAID.value)

# What the join needs to know about the deal, read back from the stock update itself.
_DEAL_TERMS = (
    deals.c.id,
    deals.c.group_price_amount,
    deals.c.leader_price_amount,
    deals.c.currency,
    deals.c.per_user_limit,
    deals.c.team_size,
    deals.c.team_window_minutes,
    deals.c.ends_at,
    deals.c.new_shoppers_only,
)


@dataclass(frozen=True, slots=True)
class SeatView:
    id: str
    team_id: str
    deal_id: str
    user_id: str
    status: str
    is_leader: bool
    price_amount: int
    currency: str
    hold_expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TeamStart:
    team_id: str
    deal_id: str
    team_size: int
    expires_at: datetime
    created_at: datetime
    seat: SeatView


# ---------------------------------------------------------------------------- joining
# The join runs on the raw path (see kit/rawsql.py): it is the hottest write of the product.

TAKE_STOCK = """
    UPDATE deals SET committed = committed + 1
    WHERE id = {deal} AND status = 'live' AND committed < stock
      AND starts_at <= :now AND ends_at > :now
    RETURNING id, group_price_amount, leader_price_amount, currency, per_user_limit,
              team_size, team_window_minutes, ends_at, new_shoppers_only
"""
TAKE_STOCK_OF_DEAL = Sql(TAKE_STOCK.format(deal=":deal_id"))
TAKE_STOCK_OF_TEAM = Sql(TAKE_STOCK.format(deal="(SELECT deal_id FROM teams WHERE id = :team_id)"))
TAKE_PLACE = Sql("""
    UPDATE teams SET taken = taken + 1
    WHERE id = :team_id AND status = 'forming' AND taken < team_size AND expires_at > :now
    RETURNING id
""")
COUNT_SHOPPER = Sql("""
    INSERT INTO deal_shopper_counts (deal_id, user_id, count) VALUES (:deal_id, :user_id, 1)
    ON CONFLICT (deal_id, user_id) DO UPDATE SET count = deal_shopper_counts.count + 1
    WHERE deal_shopper_counts.count < :limit
    RETURNING count
""")
INSERT_TEAM = Sql("""
    INSERT INTO teams (id, deal_id, leader_id, status, team_size, taken, paid, expires_at,
                       created_at)
    VALUES (:id, :deal_id, :user_id, 'forming', :team_size, 1, 0, :expires_at, :now)
""")
INSERT_SEAT = Sql("""
    INSERT INTO seats (id, team_id, deal_id, user_id, status, is_leader, price_amount, currency,
                       hold_expires_at, created_at)
    VALUES (:id, :team_id, :deal_id, :user_id, 'held', :is_leader, :price, :currency,
            :hold_expires_at, :now)
""")
TEAM_OF = Sql("SELECT deal_id FROM teams WHERE id = :team_id")
DEAL_STATE = Sql("SELECT status, stock, committed, starts_at, ends_at FROM deals WHERE id = :id")
TEAM_STATE = Sql("SELECT status, team_size, taken, expires_at FROM teams WHERE id = :id")
HAS_BOUGHT = Sql("SELECT 1 FROM seats WHERE user_id = :user_id AND status = 'confirmed' LIMIT 1")
IS_MEMBER = Sql("""
    SELECT 1 FROM seats WHERE team_id = :team_id AND user_id = :user_id
      AND status IN ('held', 'paid', 'confirmed')
""")


@dataclass(frozen=True, slots=True)
class _Terms:
    deal_id: str
    group_price: int
    leader_price: int | None
    currency: str
    per_user_limit: int
    team_size: int
    team_window_minutes: int
    ends_at: datetime
    new_shoppers_only: bool


def start_team(
    tx: RawTx, user_id: str, deal_id: str, now: datetime, *, hold: timedelta
) -> TeamStart:
    """Start a team on a live deal: the shopper holds its leader seat."""
    terms = _take_stock(tx, TAKE_STOCK_OF_DEAL, {"deal_id": deal_id, "now": tx.instant(now)})
    if terms is None:
        raise deal_refusal(_deal_state(tx, deal_id), now)
    expires_at = min(now + timedelta(minutes=terms.team_window_minutes), terms.ends_at)
    team_id = new_id("team")
    tx.execute(
        INSERT_TEAM,
        {
            "id": team_id,
            "deal_id": deal_id,
            "user_id": user_id,
            "team_size": terms.team_size,
            "expires_at": tx.instant(expires_at),
            "now": tx.instant(now),
        },
    )
    if not _count_shopper(tx, deal_id, user_id, terms.per_user_limit):
        raise limit_refusal(terms.per_user_limit)
    seat = _insert_seat(tx, team_id, terms, user_id, now, hold=hold, is_leader=True)
    return TeamStart(team_id, deal_id, terms.team_size, expires_at, now, seat)


def join_team(tx: RawTx, user_id: str, team_id: str, now: datetime, *, hold: timedelta) -> SeatView:
    """Join a forming team: take a unit of stock, a place, a count against the shopper's limit,
    then insert the held seat; any refusal rolls back everything before it."""
    at = tx.instant(now)
    terms = _take_stock(tx, TAKE_STOCK_OF_TEAM, {"team_id": team_id, "now": at})
    if terms is None:
        row = tx.one(TEAM_OF, {"team_id": team_id})
        if row is None:
            raise team_refusal(None, now)
        raise deal_refusal(_deal_state(tx, row[0]), now)
    if tx.one(TAKE_PLACE, {"team_id": team_id, "now": at}) is None:
        raise team_refusal(_team_state(tx, team_id), now)
    if terms.new_shoppers_only and tx.one(HAS_BOUGHT, {"user_id": user_id}) is not None:
        raise not_new_shopper()
    if not _count_shopper(tx, terms.deal_id, user_id, terms.per_user_limit):
        # Being in this team already explains the refusal better than the limit does.
        member = tx.one(IS_MEMBER, {"team_id": team_id, "user_id": user_id}) is not None
        raise already_member() if member else limit_refusal(terms.per_user_limit)
    return _insert_seat(tx, team_id, terms, user_id, now, hold=hold, is_leader=False)


def _take_stock(tx: RawTx, sql: Sql, params: dict[str, Any]) -> _Terms | None:
    row = tx.one(sql, params)
    if row is None:
        return None
    return _Terms(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        tx.read_instant(row[7]),
        bool(row[8]),
    )


def _count_shopper(tx: RawTx, deal_id: str, user_id: str, limit: int) -> bool:
    """Count one more seat for the shopper on the deal, unless that passes the limit."""
    row = tx.one(COUNT_SHOPPER, {"deal_id": deal_id, "user_id": user_id, "limit": limit})
    return row is not None


def _insert_seat(
    tx: RawTx,
    team_id: str,
    terms: _Terms,
    user_id: str,
    now: datetime,
    *,
    hold: timedelta,
    is_leader: bool,
) -> SeatView:
    seat = SeatView(
        id=new_id("seat"),
        team_id=team_id,
        deal_id=terms.deal_id,
        user_id=user_id,
        status=SeatStatus.HELD.value,
        is_leader=is_leader,
        price_amount=seat_price(terms.group_price, terms.leader_price, is_leader=is_leader),
        currency=terms.currency,
        hold_expires_at=now + hold,
        created_at=now,
    )
    try:
        tx.execute(
            INSERT_SEAT,
            {
                "id": seat.id,
                "team_id": team_id,
                "deal_id": terms.deal_id,
                "user_id": user_id,
                "is_leader": is_leader,
                "price": seat.price_amount,
                "currency": seat.currency,
                "hold_expires_at": tx.instant(now + hold),
                "now": tx.instant(now),
            },
        )
    except (sqlite3.IntegrityError, psycopg.IntegrityError) as exc:
        raise already_member() from exc
    record_event(tx, "seat.held", seat.id, team_id=team_id, user_id=user_id)
    return seat


def _deal_state(tx: RawTx, deal_id: str) -> DealState | None:
    row = tx.one(DEAL_STATE, {"id": deal_id})
    if row is None:
        return None
    return DealState(row[0], row[1], row[2], tx.read_instant(row[3]), tx.read_instant(row[4]))


def _team_state(tx: RawTx, team_id: str) -> TeamState | None:
    row = tx.one(TEAM_STATE, {"id": team_id})
    return TeamState(row[0], row[1], row[2], tx.read_instant(row[3])) if row else None


# ---------------------------------------------------------------------------- locking


def _lock_deals_and_teams(
    session: Session, deal_ids: Iterable[str], team_ids: Iterable[str]
) -> None:
    """Take row locks in the one global order (PostgreSQL; SQLite has one writer already)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(
        select(deals.c.id)
        .where(deals.c.id.in_(sorted(set(deal_ids))))
        .order_by(deals.c.id)
        .with_for_update()
    ).all()
    session.execute(
        select(teams.c.id)
        .where(teams.c.id.in_(sorted(set(team_ids))))
        .order_by(teams.c.id)
        .with_for_update()
    ).all()


# ---------------------------------------------------------------------------- ending seats


@dataclass(frozen=True, slots=True)
class EndedSeat:
    seat_id: str
    team_id: str
    deal_id: str
    user_id: str
    status: str  # released or refunded


def _end_seats(
    session: Session, seat_ids: Sequence[str], now: datetime, *, team_closed: bool = False
) -> list[EndedSeat]:
    """End live, unconfirmed seats: held ones are released, paid ones refunded. Each seat ends
    at most once: the status guard makes a second attempt change nothing."""
    if not seat_ids:
        return []
    rows = session.execute(
        update(seats)
        .where(seats.c.id.in_(seat_ids), seats.c.status.in_(_UNCONFIRMED))
        .values(
            status=case(
                (seats.c.status == SeatStatus.HELD.value, SeatStatus.RELEASED.value),
                else_=SeatStatus.REFUNDED.value,
            ),
            ended_at=now,
            hold_expires_at=None,
        )
        .returning(seats.c.id, seats.c.team_id, seats.c.deal_id, seats.c.user_id, seats.c.status)
    ).all()
    ended = [EndedSeat(r.id, r.team_id, r.deal_id, r.user_id, r.status) for r in rows]
    _give_back(session, ended, team_closed=team_closed)
    return ended


def _give_back(session: Session, ended: Sequence[EndedSeat], *, team_closed: bool) -> None:
    """Return the stock, places and shopper counts of seats that just ended."""
    if not ended:
        return
    for deal_id, n in Counter(s.deal_id for s in ended).items():
        session.execute(
            update(deals).where(deals.c.id == deal_id).values(committed=deals.c.committed - n)
        )
    if not team_closed:  # a closed team's counters were zeroed when it failed
        paid = Counter(s.team_id for s in ended if s.status == SeatStatus.REFUNDED.value)
        for team_id, n in Counter(s.team_id for s in ended).items():
            session.execute(
                update(teams)
                .where(teams.c.id == team_id)
                .values(taken=teams.c.taken - n, paid=teams.c.paid - paid.get(team_id, 0))
            )
    session.execute(
        update(counts)
        .where(counts.c.deal_id == bindparam("d"), counts.c.user_id == bindparam("u"))
        .values(count=counts.c.count - 1),
        [{"d": seat.deal_id, "u": seat.user_id} for seat in ended],
    )
    record_events(
        raw_tx(session),
        [
            (f"seat.{s.status}", s.seat_id, {"team_id": s.team_id, "user_id": s.user_id})
            for s in ended
        ],
    )


def cancel_seat(session: Session, user_id: str, seat_id: str, now: datetime) -> EndedSeat:
    """The shopper gives up a seat of a forming team: held is released, paid is refunded."""
    seat = session.execute(
        select(seats.c.user_id, seats.c.team_id, seats.c.deal_id, seats.c.status).where(
            seats.c.id == seat_id
        )
    ).first()
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    _lock_deals_and_teams(session, [seat.deal_id], [seat.team_id])
    team = _team_state(raw_tx(session), seat.team_id)
    assert team is not None
    if team.status != TeamStatus.FORMING.value:
        raise Conflict(
            f"The team has {team.status}; its seats can no longer be cancelled.",
            code="team_closed",
        )
    ended = _end_seats(session, [seat_id], now)
    if not ended:
        raise Conflict(f"This seat is already {seat.status}.", code="seat_not_cancellable")
    return ended[0]


def release_expired_holds(session: Session, now: datetime, limit: int) -> list[EndedSeat]:
    """Release up to ``limit`` held seats whose payment did not arrive in time."""
    due = session.execute(
        select(seats.c.id, seats.c.deal_id, seats.c.team_id)
        .where(seats.c.status == SeatStatus.HELD.value, seats.c.hold_expires_at <= now)
        .order_by(seats.c.hold_expires_at)
        .limit(limit)
    ).all()
    if not due:
        return []
    _lock_deals_and_teams(session, [r.deal_id for r in due], [r.team_id for r in due])
    return _end_seats(session, [r.id for r in due], now)


def fail_teams(
    session: Session, team_ids: Sequence[str], now: datetime
) -> tuple[list[str], list[EndedSeat]]:
    """Fail forming teams (each at most once) and end their seats; returns the teams this call
    failed and the seats that ended with them."""
    failed = list(
        session.execute(
            update(teams)
            .where(teams.c.id.in_(team_ids), teams.c.status == TeamStatus.FORMING.value)
            .values(status=TeamStatus.FAILED.value, ended_at=now, taken=0, paid=0)
            .returning(teams.c.id)
        ).scalars()
    )
    if not failed:
        return [], []
    live = list(
        session.execute(
            select(seats.c.id).where(seats.c.team_id.in_(failed), seats.c.status.in_(_UNCONFIRMED))
        ).scalars()
    )
    ended = _end_seats(session, live, now, team_closed=True)
    members: dict[str, list[str]] = {team_id: [] for team_id in failed}
    for seat in ended:
        members[seat.team_id].append(seat.user_id)
    record_events(
        raw_tx(session),
        [("team.failed", team_id, {"member_ids": users}) for team_id, users in members.items()],
    )
    return failed, ended


def close_expired_teams(session: Session, now: datetime, limit: int) -> tuple[int, list[EndedSeat]]:
    """Fail up to ``limit`` forming teams whose window has ended; returns how many teams were
    failed and the seats that ended with them."""
    due = session.execute(
        select(teams.c.id, teams.c.deal_id)
        .where(teams.c.status == TeamStatus.FORMING.value, teams.c.expires_at <= now)
        .order_by(teams.c.expires_at)
        .limit(limit)
    ).all()
    if not due:
        return 0, []
    _lock_deals_and_teams(session, [r.deal_id for r in due], [r.id for r in due])
    failed, ended = fail_teams(session, [r.id for r in due], now)
    return len(failed), ended


# ---------------------------------------------------------------------------- paying


@dataclass(frozen=True, slots=True)
class PaidOutcome:
    """What a payment's arrival did to its seat."""

    took_place: bool  # False: the seat was gone or already paid; this money must go back
    team_id: str
    team_succeeded: bool = False
    ended: tuple[EndedSeat, ...] = ()


def mark_seat_paid(session: Session, seat_id: str, now: datetime) -> PaidOutcome:
    """Record that a held seat's payment arrived. The team succeeds when its last seat is paid.

    A payment after the seat's hold or the team's window has run out never takes a place: the
    seat (or the whole team) ends first, exactly as the sweep would have ended it.
    """
    seat = session.execute(
        select(seats.c.team_id, seats.c.deal_id, seats.c.user_id).where(seats.c.id == seat_id)
    ).one()
    _lock_deals_and_teams(session, [seat.deal_id], [seat.team_id])
    team = _team_state(raw_tx(session), seat.team_id)
    assert team is not None
    if team.status == TeamStatus.FORMING.value and team.expires_at <= now:
        _, ended = fail_teams(session, [seat.team_id], now)
        return PaidOutcome(False, seat.team_id, ended=tuple(ended))
    status, hold_expires_at = session.execute(
        select(seats.c.status, seats.c.hold_expires_at).where(seats.c.id == seat_id)
    ).one()
    if status != SeatStatus.HELD.value:
        return PaidOutcome(False, seat.team_id)
    if hold_expires_at is not None and hold_expires_at <= now:
        return PaidOutcome(False, seat.team_id, ended=tuple(_end_seats(session, [seat_id], now)))
    session.execute(
        update(seats)
        .where(seats.c.id == seat_id, seats.c.status == SeatStatus.HELD.value)
        .values(status=SeatStatus.PAID.value, paid_at=now, hold_expires_at=None)
    )
    counted = session.execute(
        update(teams)
        .where(teams.c.id == seat.team_id, teams.c.status == TeamStatus.FORMING.value)
        .values(paid=teams.c.paid + 1)
        .returning(teams.c.paid, teams.c.team_size)
    ).one()
    record_event(raw_tx(session), "seat.paid", seat_id, team_id=seat.team_id, user_id=seat.user_id)
    if counted.paid < counted.team_size:
        return PaidOutcome(True, seat.team_id)
    _succeed_team(session, seat.team_id, now)
    return PaidOutcome(True, seat.team_id, team_succeeded=True)


def _succeed_team(session: Session, team_id: str, now: datetime) -> None:
    session.execute(
        update(teams)
        .where(teams.c.id == team_id, teams.c.status == TeamStatus.FORMING.value)
        .values(status=TeamStatus.SUCCEEDED.value, ended_at=now)
    )
    members = list(
        session.execute(
            update(seats)
            .where(seats.c.team_id == team_id, seats.c.status == SeatStatus.PAID.value)
            .values(status=SeatStatus.CONFIRMED.value)
            .returning(seats.c.user_id)
        ).scalars()
    )
    record_event(raw_tx(session), "team.succeeded", team_id, member_ids=members)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Member:
    display_name: str
    is_leader: bool
    paid: bool
    joined_at: datetime


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

    @property
    def leader(self) -> Member | None:
        return next((m for m in self.members if m.is_leader), None)


def get_team(session: Session, team_id: str) -> TeamView:
    """A team with its live members' display names, leader first."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    return _team_views(session, [team])[0]


def _team_views(session: Session, found: Sequence[Team]) -> list[TeamView]:
    rows = session.execute(
        select(
            seats.c.team_id,
            seats.c.is_leader,
            seats.c.status,
            seats.c.created_at,
            User.display_name,
        )
        .join(User, User.id == seats.c.user_id)
        .where(seats.c.team_id.in_([t.id for t in found]), seats.c.status.in_(_LIVE))
        .order_by(seats.c.is_leader.desc(), seats.c.created_at)
    ).all()
    members: dict[str, list[Member]] = {t.id: [] for t in found}
    for r in rows:
        members[r.team_id].append(
            Member(r.display_name, r.is_leader, r.status != SeatStatus.HELD.value, r.created_at)
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
        )
        for t in found
    ]


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
    return [MySeat(r[0], r[1], r[2], r[3]) for r in session.execute(query).all()]


def owned_seat(session: Session, user_id: str, seat_id: str) -> Seat:
    seat = session.get(Seat, seat_id)
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return seat


def require_held(seat: Seat, now: datetime) -> None:
    """Only a seat still within its hold can be paid for."""
    if seat.status != SeatStatus.HELD.value or (
        seat.hold_expires_at is not None and seat.hold_expires_at <= now
    ):
        state = seat.status if seat.status != SeatStatus.HELD.value else "no longer held"
        raise Conflict(
            f"This seat is {state}; only a held seat can be paid.", code="seat_not_payable"
        )
