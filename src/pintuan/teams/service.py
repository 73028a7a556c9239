"""Where joining a team is decided: starting and joining teams, buying alone, paying, releasing
and ending, and who leads a team when its leader goes.

This is the write engine only: reading teams and seats is in ``teams.reads``, and the sweeps that
find expired holds and teams are in ``teams.tasks``.

Every step that could be refused is one conditional write whose "no row changed" is the
refusal (see DESIGN.md, "the shape of a join"). No count is read, changed in Python and written
back, so concurrent requests and several processes cannot push a team past its size or a deal past
its stock.

Buying alone is the same engine: a team of one (``solo``), priced at the list price, that no one
else may join and that succeeds the moment its one seat is paid. Stock, the per-shopper limit,
holds, payments, the ledger and the audit treat it as any other team.

Lock order on PostgreSQL is always deal → team → seat → shopper counter. The join gets it from
the order of its updates; every other transition takes the deal and team locks first
(``_lock_deals_and_teams``). SQLite has one writer and needs no row locks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from pintuan.domain.autofill import AutoFill, FundedBy, fill_cost
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.ladder import stored_ladder, tiers_from_json
from pintuan.domain.lifecycle import DealStatus
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
    solo_refusal,
    team_refusal,
)
from pintuan.errors import Conflict, NotFound
from pintuan.events.service import record_event, record_events
from pintuan.kit.ids import new_id
from pintuan.kit.metrics import TEAMS_FAILED, TEAMS_SUCCEEDED, counts_joins
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql
from pintuan.ledger.fills import record_fill_subsidy
from pintuan.payments import owed
from pintuan.teams import join_postgres, lottery
from pintuan.teams.models import Seat
from pintuan.teams.vouchers import issue_for_team as issue_vouchers
from pintuan.teams.vouchers import terms_of as voucher_terms_of

# A stored instant as the driver returns it (see ``RawTx.read_instant``).
StoredInstant = datetime | str


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
    coupon_id: str | None = None  # a seat is taken without one (``domain/coupons.py``)


@dataclass(frozen=True, slots=True)
class TeamStart:
    team_id: str
    deal_id: str
    team_size: int
    expires_at: datetime
    created_at: datetime
    seat: SeatView
    solo: bool = False


# ---------------------------------------------------------------------------- joining
# The join runs on the raw path (see kit/rawsql.py): it is the hottest write of the product.

TAKE_STOCK = """
    UPDATE deals SET committed = committed + 1
    WHERE id = {deal} AND status = :live AND committed < stock
      AND starts_at <= :now AND ends_at > :now AND NOT merchant_suspended
      {solo}
    RETURNING id AS deal_id, list_price_amount AS list_price, group_price_amount AS group_price,
              leader_price_amount AS leader_price, currency, per_user_limit, team_size,
              team_window_minutes, ends_at, new_shoppers_only, ladder
"""
TAKE_STOCK_OF_DEAL = Sql(TAKE_STOCK.format(deal=":deal_id", solo=""), live=DealStatus.LIVE)
TAKE_STOCK_OF_TEAM = Sql(
    TAKE_STOCK.format(deal="(SELECT deal_id FROM teams WHERE id = :team_id)", solo=""),
    live=DealStatus.LIVE,
)
TAKE_STOCK_FOR_SOLO = Sql(
    TAKE_STOCK.format(deal=":deal_id", solo="AND allow_solo"), live=DealStatus.LIVE
)
TAKE_PLACE = Sql(
    """
    UPDATE teams SET taken = taken + 1
    WHERE id = :team_id AND status = :forming AND taken < team_size AND expires_at > :now
      AND NOT solo
    RETURNING id
""",
    forming=TeamStatus.FORMING,
)
COUNT_SHOPPER = Sql("""
    INSERT INTO deal_shopper_counts (deal_id, user_id, count) VALUES (:deal_id, :user_id, 1)
    ON CONFLICT (deal_id, user_id) DO UPDATE SET count = deal_shopper_counts.count + 1
    WHERE deal_shopper_counts.count < :limit
    RETURNING count
""")
INSERT_TEAM = Sql(
    """
    INSERT INTO teams (id, deal_id, leader_id, status, team_size, min_size, taken, paid,
                       expires_at, created_at, solo)
    VALUES (:id, :deal_id, :user_id, :forming, :team_size, :min_size, 1, :paid, :expires_at,
            :now, :solo)
""",
    forming=TeamStatus.FORMING,
)
INSERT_SEAT = Sql("""
    INSERT INTO seats (id, team_id, deal_id, user_id, status, is_leader, price_amount, currency,
                       hold_expires_at, paid_at, created_at)
    VALUES (:id, :team_id, :deal_id, :user_id, :status, :is_leader, :price, :currency,
            :hold_expires_at, :paid_at, :now)
""")
TEAM_OF = Sql("SELECT deal_id FROM teams WHERE id = :team_id")
DEAL_STATE = Sql(
    "SELECT status, stock, committed, starts_at, ends_at, merchant_suspended, allow_solo "
    "FROM deals WHERE id = :id"
)
TEAM_STATE = Sql("SELECT status, team_size, taken, expires_at, solo FROM teams WHERE id = :id")
HAS_BOUGHT = Sql(
    "SELECT 1 FROM seats WHERE user_id = :user_id AND status = :confirmed LIMIT 1",
    confirmed=SeatStatus.CONFIRMED,
)
IS_MEMBER = Sql(
    """
    SELECT 1 FROM seats WHERE team_id = :team_id AND user_id = :user_id
      AND status IN (:held, :paid, :confirmed)
""",
    held=SeatStatus.HELD,
    paid=SeatStatus.PAID,
    confirmed=SeatStatus.CONFIRMED,
)


@dataclass(frozen=True, slots=True)
class _Terms:
    """The deal's terms, as taking a unit of its stock returns them."""

    deal_id: str
    list_price: int
    group_price: int
    leader_price: int | None
    currency: str
    per_user_limit: int
    team_size: int
    team_window_minutes: int
    ends_at: StoredInstant
    new_shoppers_only: bool | int  # SQLite gives 0/1
    ladder: object = None  # a ladder deal's tiers beyond the first, as stored


@counts_joins("start")
def start_team(
    tx: RawTx, user_id: str, deal_id: str, now: datetime, *, hold: timedelta
) -> TeamStart:
    """Start a team on a live deal: the shopper holds its leader seat."""
    terms = tx.one_as(_Terms, TAKE_STOCK_OF_DEAL, {"deal_id": deal_id, "now": tx.instant(now)})
    if terms is None:
        raise deal_refusal(_deal_state(tx, deal_id), now)
    expires_at = min(
        now + timedelta(minutes=terms.team_window_minutes), tx.read_instant(terms.ends_at)
    )
    team_id = new_id("team")
    # A free leader seat (leader-free deals) has nothing to pay: it is paid as it is taken.
    leader_free = seat_price(terms.group_price, terms.leader_price, is_leader=True) == 0
    # A ladder team fills up to its top tier, and needs its first (domain/ladder.py).
    tiers = tiers_from_json(terms.ladder)
    size = tiers[-1].size if tiers else terms.team_size
    tx.execute(
        INSERT_TEAM,
        {
            "id": team_id,
            "deal_id": deal_id,
            "user_id": user_id,
            "team_size": size,
            "min_size": terms.team_size if tiers else None,
            "paid": 1 if leader_free else 0,
            "expires_at": tx.instant(expires_at),
            "now": tx.instant(now),
            "solo": False,
        },
    )
    if not _count_shopper(tx, deal_id, user_id, terms.per_user_limit):
        raise limit_refusal(terms.per_user_limit)
    seat = _insert_seat(tx, team_id, terms, user_id, now, hold=hold, is_leader=True)
    return TeamStart(team_id, deal_id, size, expires_at, now, seat)


@counts_joins("solo")
def buy_alone(
    tx: RawTx, user_id: str, deal_id: str, now: datetime, *, hold: timedelta
) -> TeamStart:
    """Buy alone at the list price, on a deal that allows it: a team of one that nobody else
    may join, holding its only seat until the shopper pays; paying it succeeds the team.

    The same conditional writes as starting a team (stock, then the shopper's count), so the
    deal's stock and the shopper's limit are shared between solo and team purchases.
    """
    return _team_of_one(tx, TAKE_STOCK_FOR_SOLO, user_id, deal_id, None, now, hold=hold)


@counts_joins("bargain")
def buy_at_price(
    tx: RawTx, user_id: str, deal_id: str, price: int, now: datetime, *, hold: timedelta
) -> TeamStart:
    """Buy one unit alone at ``price``, a price agreed outside the deal's own terms (the price a
    bargain reached, ``pintuan.bargains``): a team of one like :func:`buy_alone`, on any live
    deal, taking stock and counting against the shopper's limit the same way."""
    if price < 1:
        raise ValueError("a bought unit costs at least one minor unit")
    return _team_of_one(tx, TAKE_STOCK_OF_DEAL, user_id, deal_id, price, now, hold=hold)


def _team_of_one(
    tx: RawTx,
    take_stock: Sql,
    user_id: str,
    deal_id: str,
    price: int | None,
    now: datetime,
    *,
    hold: timedelta,
) -> TeamStart:
    terms = tx.one_as(_Terms, take_stock, {"deal_id": deal_id, "now": tx.instant(now)})
    if terms is None:
        state = _deal_state(tx, deal_id)
        raise (
            solo_refusal(state, now)
            if take_stock is TAKE_STOCK_FOR_SOLO
            else deal_refusal(state, now)
        )
    expires_at = min(
        now + timedelta(minutes=terms.team_window_minutes), tx.read_instant(terms.ends_at)
    )
    team_id = new_id("team")
    tx.execute(
        INSERT_TEAM,
        {
            "id": team_id,
            "deal_id": deal_id,
            "user_id": user_id,
            "team_size": 1,
            "min_size": None,
            "paid": 0,
            "expires_at": tx.instant(expires_at),
            "now": tx.instant(now),
            "solo": True,
        },
    )
    if not _count_shopper(tx, deal_id, user_id, terms.per_user_limit):
        raise limit_refusal(terms.per_user_limit)
    seat = _insert_seat(
        tx,
        team_id,
        terms,
        user_id,
        now,
        hold=hold,
        is_leader=True,
        price=terms.list_price if price is None else price,
    )
    return TeamStart(team_id, deal_id, 1, expires_at, now, seat, solo=True)


@counts_joins("join")
def join_team(tx: RawTx, user_id: str, team_id: str, now: datetime, *, hold: timedelta) -> SeatView:
    """Join a forming team: take a unit of stock, a place, a count against the shopper's limit,
    then insert the held seat; any refusal rolls back everything before it."""
    if not tx.sqlite:
        # The same steps as one server-side function: one round trip instead of one each.
        joined = join_postgres.join_team(tx, user_id, team_id, now, hold=hold)
        free = joined.status == SeatStatus.PAID.value
        return SeatView(
            id=joined.seat_id,
            team_id=team_id,
            deal_id=joined.deal_id,
            user_id=user_id,
            status=joined.status,
            is_leader=False,
            price_amount=joined.price,
            currency=joined.currency,
            hold_expires_at=None if free else now + hold,
            created_at=now,
        )
    return join_team_by_statements(tx, user_id, team_id, now, hold=hold)


def join_team_by_statements(
    tx: RawTx, user_id: str, team_id: str, now: datetime, *, hold: timedelta
) -> SeatView:
    """The join one statement at a time: SQLite's path, and the rule the PostgreSQL function
    follows (the tests hold them to the same answers)."""
    at = tx.instant(now)
    terms = tx.one_as(_Terms, TAKE_STOCK_OF_TEAM, {"team_id": team_id, "now": at})
    if terms is None:
        deal_id = tx.scalar(TEAM_OF, {"team_id": team_id})
        if deal_id is None:
            raise team_refusal(None, now)
        raise deal_refusal(_deal_state(tx, deal_id), now)
    if tx.one(TAKE_PLACE, {"team_id": team_id, "now": at}) is None:
        raise team_refusal(_team_state(tx, team_id), now)
    if terms.new_shoppers_only and tx.one(HAS_BOUGHT, {"user_id": user_id}) is not None:
        raise not_new_shopper()
    if not _count_shopper(tx, terms.deal_id, user_id, terms.per_user_limit):
        # Being in this team already explains the refusal better than the limit does.
        member = tx.one(IS_MEMBER, {"team_id": team_id, "user_id": user_id}) is not None
        raise already_member() if member else limit_refusal(terms.per_user_limit)
    return _insert_seat(tx, team_id, terms, user_id, now, hold=hold, is_leader=False)


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
    price: int | None = None,
) -> SeatView:
    if price is None:
        price = seat_price(terms.group_price, terms.leader_price, is_leader=is_leader)
    free = price == 0
    seat = SeatView(
        id=new_id("seat"),
        team_id=team_id,
        deal_id=terms.deal_id,
        user_id=user_id,
        status=SeatStatus.PAID.value if free else SeatStatus.HELD.value,
        is_leader=is_leader,
        price_amount=price,
        currency=terms.currency,
        hold_expires_at=None if free else now + hold,
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
                "status": seat.status,
                "is_leader": is_leader,
                "price": seat.price_amount,
                "currency": seat.currency,
                "hold_expires_at": None if free else tx.instant(now + hold),
                "paid_at": tx.instant(now) if free else None,
                "now": tx.instant(now),
            },
        )
    except IntegrityViolation as exc:
        raise already_member() from exc
    record_event(tx, f"seat.{seat.status}", seat.id, team_id=team_id, user_id=user_id)
    return seat


def _deal_state(tx: RawTx, deal_id: str) -> DealState | None:
    return tx.one_as(partial(_read_deal_state, tx), DEAL_STATE, {"id": deal_id})


def _read_deal_state(
    tx: RawTx,
    *,
    status: str,
    stock: int,
    committed: int,
    starts_at: StoredInstant,
    ends_at: StoredInstant,
    merchant_suspended: bool | int,
    allow_solo: bool | int,
) -> DealState:
    return DealState(
        status,
        stock,
        committed,
        tx.read_instant(starts_at),
        tx.read_instant(ends_at),
        bool(merchant_suspended),
        bool(allow_solo),
    )


def _team_state(tx: RawTx, team_id: str) -> TeamState | None:
    return tx.one_as(partial(_read_team_state, tx), TEAM_STATE, {"id": team_id})


def _read_team_state(
    tx: RawTx,
    *,
    status: str,
    team_size: int,
    taken: int,
    expires_at: StoredInstant,
    solo: bool | int,
) -> TeamState:
    return TeamState(status, team_size, taken, tx.read_instant(expires_at), bool(solo))


# ---------------------------------------------------------------------------- locking

LOCK_DEALS = Sql("SELECT id FROM deals WHERE id IN_LIST(:ids) ORDER BY id FOR UPDATE")
LOCK_TEAMS = Sql("SELECT id FROM teams WHERE id IN_LIST(:ids) ORDER BY id FOR UPDATE")


# A seat's deal, then its team, found from the seat (neither ever changes for a seat).
LOCK_DEAL_OF_SEAT = Sql(
    "SELECT id FROM deals WHERE id = (SELECT deal_id FROM seats WHERE id = :id) FOR UPDATE"
)
LOCK_TEAM_OF_SEAT = Sql(
    "SELECT id FROM teams WHERE id = (SELECT team_id FROM seats WHERE id = :id) FOR UPDATE"
)


def lock_seat(tx: RawTx, seat_id: str) -> None:
    """Lock the deal and team of a seat, in that order as every transition takes them, so the
    caller may then change the seat's payments (PostgreSQL; SQLite has one writer already).
    Nothing is read: both locks go out with the caller's next statement."""
    if tx.sqlite:
        return
    tx.send(LOCK_DEAL_OF_SEAT, {"id": seat_id})
    tx.send(LOCK_TEAM_OF_SEAT, {"id": seat_id})


# The team's count of seats paid and the deal's tipping point come with them: a payment decides
# from them whether it fills the team, with no round trip of its own (PostgreSQL).
SEAT_AND_TEAM = Sql("""
    SELECT s.user_id, s.team_id, s.deal_id, s.status, s.hold_expires_at, s.repay_by,
           t.status AS team_status, t.team_size, t.taken, t.expires_at, t.solo, t.paid,
           d.tipping_point, d.tipped_at, d.ends_at
    FROM seats s JOIN teams t ON t.id = s.team_id JOIN deals d ON d.id = s.deal_id
    WHERE s.id = :id
""")


@dataclass(frozen=True, slots=True)
class DealTipping:
    """A deal's tipping point (None: it has none), when it tipped, and when it ends, as stored."""

    tipping_point: int | None
    tipped_at: StoredInstant | None
    ends_at: StoredInstant


@dataclass(frozen=True, slots=True)
class SeatAndTeam:
    """A seat and its team as a payment arriving for the seat reads them, under their locks."""

    user_id: str
    team_id: str
    deal_id: str
    status: str
    hold_expires_at: datetime | None
    repay_by: datetime | None
    team: TeamState
    team_paid: int  # the team's seats paid before this payment
    tipping: DealTipping


def seat_and_team(tx: RawTx, seat_id: str) -> SeatAndTeam | None:
    """The seat and its team, in one read (the caller holds their locks: :func:`lock_seat`)."""
    return read_seat_and_team(tx, tx.one(SEAT_AND_TEAM, {"id": seat_id}))


def read_seat_and_team(tx: RawTx, row: Any) -> SeatAndTeam | None:
    """A row of ``SEAT_AND_TEAM`` (None: no such seat), for a caller that read it together
    with other statements."""
    if row is None:
        return None
    user_id, team_id, deal_id, status, held_until, repay_by, *rest = row
    team_status, team_size, taken, expires_at, solo, paid, tipping_point, tipped_at, ends_at = rest
    return SeatAndTeam(
        user_id,
        team_id,
        deal_id,
        status,
        tx.read_optional_instant(held_until),
        tx.read_optional_instant(repay_by),
        _read_team_state(
            tx,
            status=team_status,
            team_size=team_size,
            taken=taken,
            expires_at=expires_at,
            solo=solo,
        ),
        paid,
        DealTipping(tipping_point, tipped_at, ends_at),
    )


LOCK_SEAT_ROW = Sql("SELECT id FROM seats WHERE id = :id FOR UPDATE")


def lock_seat_row(tx: RawTx, seat_id: str) -> None:
    """Lock one seat's row, so its price cannot change (a coupon applied) while a payment of
    it is made, nor a payment begin while its price changes (PostgreSQL; SQLite has one
    writer already). Taken after the deal's and team's locks, never before them."""
    if not tx.sqlite:
        tx.execute(LOCK_SEAT_ROW, {"id": seat_id})


def _lock_deals_and_teams(tx: RawTx, deal_ids: Iterable[str], team_ids: Iterable[str]) -> None:
    """Take row locks in the one global order (PostgreSQL; SQLite has one writer already)."""
    if tx.sqlite:
        return
    tx.execute(LOCK_DEALS, {"ids": sorted(set(deal_ids))})
    tx.execute(LOCK_TEAMS, {"ids": sorted(set(team_ids))})


# ---------------------------------------------------------------------------- ending seats
# Sweeps end thousands of seats at once, so these statements are set-based on the raw path.

END_SEATS = """
    UPDATE seats
    SET status = CASE WHEN status = :held THEN :released ELSE :refunded END,
        ended_at = :now, hold_expires_at = NULL
    WHERE {which} IN_LIST(:ids) AND status IN (:held, :paid)
    RETURNING id AS seat_id, team_id, deal_id, user_id, status, is_leader
"""
_ENDING = {
    "held": SeatStatus.HELD,
    "paid": SeatStatus.PAID,
    "released": SeatStatus.RELEASED,
    "refunded": SeatStatus.REFUNDED,
}
END_SEATS_BY_ID = Sql(END_SEATS.format(which="id"), **_ENDING)
END_SEATS_OF_TEAMS = Sql(END_SEATS.format(which="team_id"), **_ENDING)
RELEASE_HOLDS = Sql(
    """
    UPDATE seats SET status = :released, ended_at = :now, hold_expires_at = NULL
    WHERE id IN_LIST(:ids) AND status = :held AND hold_expires_at <= :now
    RETURNING id AS seat_id, team_id, deal_id, user_id, status, is_leader
""",
    held=SeatStatus.HELD,
    released=SeatStatus.RELEASED,
)
RETURN_STOCK = Sql("UPDATE deals SET committed = committed - :n WHERE id = :deal_id")
RETURN_PLACES = Sql(
    "UPDATE teams SET taken = taken - :taken, paid = paid - :paid WHERE id = :team_id"
)
UNCOUNT_SHOPPER = Sql(
    "UPDATE deal_shopper_counts SET count = count - :n WHERE deal_id = :deal_id "
    "AND user_id = :user_id"
)
SEAT_OF = Sql("SELECT user_id, team_id, deal_id, status, hold_expires_at FROM seats WHERE id = :id")
PAY_SEAT = Sql(
    """
    UPDATE seats SET status = :paid, paid_at = :now, hold_expires_at = NULL
    WHERE id = :id AND status = :held
""",
    paid=SeatStatus.PAID,
    held=SeatStatus.HELD,
)
# The count after it is known from the team as read under its lock (``SeatAndTeam``).
ADD_PAID = Sql(
    "UPDATE teams SET paid = paid + 1 WHERE id = :team_id AND status = :forming",
    forming=TeamStatus.FORMING,
)
SUCCEED_TEAM = Sql(
    """
    UPDATE teams SET status = :succeeded, ended_at = :now
    WHERE id = :team_id AND status = :forming
""",
    succeeded=TeamStatus.SUCCEEDED,
    forming=TeamStatus.FORMING,
)
# What a team's success does beyond confirming its seats: the deal's lottery, ladder, vouchers
# and leader reward, read once.
DEAL_AT_SUCCESS = Sql("""
    SELECT d.id AS deal_id, d.merchant_id, d.voucher, d.lottery_winners, d.lottery_seed,
           d.lottery_coupon_amount, d.lottery_coupon_days, d.leader_reward_kind, d.ladder,
           d.team_size, d.group_price_amount AS group_price, t.solo
    FROM teams t JOIN deals d ON d.id = t.deal_id WHERE t.id = :team_id
""")
# A ladder team's price reached, and whether anyone paid more than it (``payments/ladder.py``).
SET_LADDER_PRICE = Sql(
    """
    UPDATE teams SET ladder_price = :price,
        ladder_refunds_due = EXISTS (SELECT 1 FROM seats WHERE team_id = :team_id
                                     AND status = :confirmed AND price_amount > :price)
    WHERE id = :team_id
""",
    confirmed=SeatStatus.CONFIRMED,
)
# Of teams whose window ended, those that need not fail: a ladder team with its first tier paid
# succeeds (``secured``); a team at most its deal's auto-fill short of paid seats, with at least
# one paid member (domain/autofill.py), may be filled. The condition is written once and used
# twice: the sweep fails every team it does not hold in the same statement that finds them
# (most teams are neither, so most batches need nothing more), and reads what filling the rest
# would cost and whose budget pays.
_SAVEABLE = """(t.min_size IS NOT NULL AND t.paid >= t.min_size)
    OR EXISTS (SELECT 1 FROM deals d WHERE d.id = t.deal_id AND d.auto_fill_seats IS NOT NULL
               AND NOT t.solo AND t.paid >= 1
               AND t.team_size - t.paid BETWEEN 1 AND d.auto_fill_seats)"""
_FAIL = """
    UPDATE teams AS t SET status = :failed, ended_at = :now, taken = 0, paid = 0
    WHERE t.id IN_LIST(:ids) AND t.status = :forming {unless}
    RETURNING id
"""
FAIL_TEAMS = Sql(_FAIL.format(unless=""), failed=TeamStatus.FAILED, forming=TeamStatus.FORMING)
# Asked again under the teams' locks, whose window ended: a deal's end moved later since the
# sweep found them (a tipping deal's waiting teams follow it) gives them that time.
FAIL_UNSAVEABLE_TEAMS = Sql(
    _FAIL.format(unless=f"AND t.expires_at <= :now AND NOT ({_SAVEABLE})"),
    failed=TeamStatus.FAILED,
    forming=TeamStatus.FORMING,
)
_OUTCOMES = """
    SELECT t.id AS team_id, t.min_size IS NOT NULL AND t.paid >= t.min_size AS secured,
           t.team_size - t.paid AS missing, d.group_price_amount AS price,
           d.currency, d.merchant_id, d.auto_fill_funded_by AS funded_by
    FROM teams t JOIN deals d ON d.id = t.deal_id
    WHERE t.id IN_LIST(:ids) AND t.status = :forming AND t.expires_at <= :now AND ({saveable})
    ORDER BY t.id
"""
WINDOW_OUTCOMES = Sql(_OUTCOMES.format(saveable=_SAVEABLE), forming=TeamStatus.FORMING)
# The budget pays only within its limit: the conditional write is the whole decision.
USE_BUDGET = Sql("""
    UPDATE fill_budgets
    SET used_amount = used_amount + :cost, filled_seats = filled_seats + :seats, updated_at = :now
    WHERE payer = :payer AND currency = :currency AND used_amount + :cost <= limit_amount
    RETURNING payer
""")
MARK_FILLED = Sql(
    "UPDATE teams SET filled_seats = :seats, filled_by = :funded_by WHERE id = :team_id"
)
HELD_SEATS_OF_TEAMS = Sql(
    "SELECT id FROM seats WHERE team_id IN_LIST(:ids) AND status = :held ORDER BY id",
    held=SeatStatus.HELD,
)
# A deal's tipping point (domain/ladder.py): a full, paid team of an untipped deal waits for it
# until the deal's end; the seats of waiting teams count towards it.
WAIT_FOR_TIP = Sql("UPDATE teams SET expires_at = :ends_at WHERE id = :team_id")
WAITING_TEAMS = Sql(
    """
    SELECT id, paid FROM teams
    WHERE deal_id = :deal_id AND status = :forming AND paid = team_size
    ORDER BY id
""",
    forming=TeamStatus.FORMING,
)
TIP = Sql("UPDATE deals SET tipped_at = :now WHERE id = :deal_id AND tipped_at IS NULL")
# The team owes its leader the deal's reward (paid by ``payments/rewards.py``).
OWE_LEADER_REWARD = Sql("UPDATE teams SET leader_reward_due = TRUE WHERE id = :team_id")
CONFIRM_SEATS = Sql(
    """
    UPDATE seats SET status = :confirmed WHERE team_id = :team_id AND status = :paid
    RETURNING id, user_id
""",
    confirmed=SeatStatus.CONFIRMED,
    paid=SeatStatus.PAID,
)


@dataclass(frozen=True, slots=True)
class _SeatRow:
    user_id: str
    team_id: str
    deal_id: str
    status: str
    hold_expires_at: StoredInstant | None


@dataclass(frozen=True, slots=True)
class DueHold:
    """A held seat whose hold has run out, as the sweep found it (see ``teams.tasks``)."""

    seat_id: str
    deal_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class DueTeam:
    """A forming team whose window has closed, as the sweep found it (see ``teams.tasks``)."""

    team_id: str
    deal_id: str


@dataclass(frozen=True, slots=True)
class EndedSeat:
    seat_id: str
    team_id: str
    deal_id: str
    user_id: str
    status: str  # released or refunded
    is_leader: bool | int  # SQLite gives 0/1


def _end_seats(tx: RawTx, seat_ids: Sequence[str], now: datetime) -> list[EndedSeat]:
    """End live, unconfirmed seats: held ones are released, paid ones refunded. Each seat ends
    at most once: the status guard makes a second attempt change nothing."""
    if not seat_ids:
        return []
    ended = tx.all_as(EndedSeat, END_SEATS_BY_ID, {"ids": list(seat_ids), "now": tx.instant(now)})
    _give_back(tx, ended, now, team_closed=False)
    return ended


def _give_back(tx: RawTx, ended: Sequence[EndedSeat], now: datetime, *, team_closed: bool) -> None:
    """Return the stock, places, shopper counts and money of seats that just ended."""
    if not ended:
        return
    # Money taken for a seat that ended goes back: doing it here, wherever a seat ends, means
    # no caller can forget it.
    owed.owe_back_for_seats(tx, [s.seat_id for s in ended], now)
    stock = Counter(s.deal_id for s in ended)
    tx.many(RETURN_STOCK, [{"deal_id": deal_id, "n": n} for deal_id, n in stock.items()])
    shoppers = Counter((s.deal_id, s.user_id) for s in ended)
    tx.many(
        UNCOUNT_SHOPPER,
        [{"deal_id": d, "user_id": u, "n": n} for (d, u), n in shoppers.items()],
    )
    if team_closed:
        return  # the team's counters were zeroed as it failed; its team.failed event says all
    paid = Counter(s.team_id for s in ended if s.status == SeatStatus.REFUNDED.value)
    places = Counter(s.team_id for s in ended)
    tx.many(
        RETURN_PLACES,
        [{"team_id": t, "taken": n, "paid": paid.get(t, 0)} for t, n in places.items()],
    )
    record_events(
        tx,
        [
            (f"seat.{s.status}", s.seat_id, {"team_id": s.team_id, "user_id": s.user_id})
            for s in ended
        ],
    )
    closed = _close_empty_teams(tx, sorted(places), now)
    _pass_leadership(tx, sorted({s.team_id for s in ended if s.is_leader} - closed))


# ---------------------------------------------------------------------------- who leads a team
# A forming team always has a leader among its members, or no members and no longer forms.

CLOSE_EMPTY_TEAMS = Sql(
    """
    UPDATE teams SET status = :failed, ended_at = :now
    WHERE id IN_LIST(:ids) AND status = :forming AND taken = 0
    RETURNING id
""",
    failed=TeamStatus.FAILED,
    forming=TeamStatus.FORMING,
)
# The member who joined first (by the seat's join time, then its id) of those still in the team.
MAKE_LEADER = Sql(
    """
    UPDATE seats SET is_leader = :yes
    WHERE id = (SELECT id FROM seats WHERE team_id = :team_id
                  AND status IN (:held, :paid, :confirmed)
                ORDER BY created_at, id LIMIT 1)
    RETURNING id, user_id
""",
    held=SeatStatus.HELD,
    paid=SeatStatus.PAID,
    confirmed=SeatStatus.CONFIRMED,
)
SET_TEAM_LEADER = Sql(
    "UPDATE teams SET leader_id = :user_id WHERE id = :team_id AND status = :forming",
    forming=TeamStatus.FORMING,
)


@dataclass(frozen=True, slots=True)
class _NewLeader:
    id: str
    user_id: str


def _close_empty_teams(tx: RawTx, team_ids: Sequence[str], now: datetime) -> set[str]:
    """Close forming teams whose last member just left: nobody is left to fill them, so they
    fail at once instead of being listed as forming until their window ends."""
    closed: list[str] = tx.column(
        CLOSE_EMPTY_TEAMS, {"ids": list(team_ids), "now": tx.instant(now)}
    )
    if closed:
        TEAMS_FAILED.inc(len(closed))
        record_events(
            tx,
            [
                ("team.failed", team_id, {"member_ids": [], "refunded_ids": []})
                for team_id in closed
            ],
        )
    return set(closed)


def _pass_leadership(tx: RawTx, team_ids: Sequence[str]) -> None:
    """Hand each team whose leader just left to its next member by join order.

    The new leader keeps the price they joined at (the rule and its reason are in
    ``domain.teams``).
    """
    for team_id in team_ids:
        new = tx.one_as(_NewLeader, MAKE_LEADER, {"team_id": team_id, "yes": True})
        if new is None:
            continue
        tx.execute(SET_TEAM_LEADER, {"team_id": team_id, "user_id": new.user_id})
        record_event(tx, "team.leader_changed", team_id, user_id=new.user_id, seat_id=new.id)


def cancel_seat(tx: RawTx, user_id: str, seat_id: str, now: datetime) -> EndedSeat:
    """The shopper gives up a seat of a forming team: held is released, paid is refunded.
    Once the team's window has ended, only its ending decides (a ladder team secured by its
    paid seats succeeds with them), however late the sweep that ends it: no cancel then."""
    seat = tx.one_as(_SeatRow, SEAT_OF, {"id": seat_id})
    if seat is None or seat.user_id != user_id:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    _lock_deals_and_teams(tx, [seat.deal_id], [seat.team_id])
    team = _team_state(tx, seat.team_id)
    assert team is not None
    if team.status != TeamStatus.FORMING.value:
        raise Conflict(
            f"The team has {team.status}; its seats can no longer be cancelled.",
            code="team_closed",
        )
    if team.expires_at <= now:
        raise Conflict(
            "The team's time is up and it is being ended; its seats can no longer be cancelled.",
            code="team_closed",
        )
    ended = _end_seats(tx, [seat_id], now)
    if not ended:
        raise Conflict(f"This seat is already {seat.status}.", code="seat_not_cancellable")
    return ended[0]


def release_expired_holds(tx: RawTx, due: Sequence[DueHold], now: datetime) -> list[EndedSeat]:
    """Release held seats whose payment did not arrive in time (the sweep found them due)."""
    if not due:
        return []
    _lock_deals_and_teams(tx, [d.deal_id for d in due], [d.team_id for d in due])
    # Under the locks, ask again: a payment may have paid a seat since it was found due.
    ended = tx.all_as(
        EndedSeat, RELEASE_HOLDS, {"ids": [d.seat_id for d in due], "now": tx.instant(now)}
    )
    _give_back(tx, ended, now, team_closed=False)
    return ended


def fail_teams(
    tx: RawTx, team_ids: Sequence[str], now: datetime
) -> tuple[list[str], list[EndedSeat]]:
    """Fail forming teams (each at most once) and end their seats; returns the teams this call
    failed and the seats that ended with them."""
    return _failed(tx, tx.column(FAIL_TEAMS, {"ids": list(team_ids), "now": tx.instant(now)}), now)


def _failed(tx: RawTx, failed: list[str], now: datetime) -> tuple[list[str], list[EndedSeat]]:
    """What follows teams' failing: their seats end, and each team says so in one event."""
    if not failed:
        return [], []
    at = tx.instant(now)
    TEAMS_FAILED.inc(len(failed))
    ended = tx.all_as(EndedSeat, END_SEATS_OF_TEAMS, {"ids": failed, "now": at})
    _give_back(tx, ended, now, team_closed=True)
    members: dict[str, list[str]] = {team_id: [] for team_id in failed}
    refunded: dict[str, list[str]] = {team_id: [] for team_id in failed}
    for seat in ended:
        members[seat.team_id].append(seat.user_id)
        if seat.status == SeatStatus.REFUNDED.value:
            refunded[seat.team_id].append(seat.user_id)
    record_events(
        tx,
        [
            ("team.failed", team_id, {"member_ids": users, "refunded_ids": refunded[team_id]})
            for team_id, users in members.items()
        ],
    )
    return failed, ended


def close_expired_teams(
    tx: RawTx, due: Sequence[DueTeam], now: datetime
) -> tuple[list[str], list[EndedSeat]]:
    """End forming teams whose window has ended (the sweep found them due); returns the teams
    this call ended and the seats that ended with them."""
    if not due:
        return [], []
    _lock_deals_and_teams(tx, [d.deal_id for d in due], [d.team_id for d in due])
    return _end_windows(tx, [d.team_id for d in due], now)


def _end_windows(
    tx: RawTx, team_ids: Sequence[str], now: datetime
) -> tuple[list[str], list[EndedSeat]]:
    """Teams whose window ended (locked by the caller, and asked again under the locks): a
    ladder team whose first tier is paid (domain/ladder.py), or a team a budget fills
    (domain/autofill.py), succeeds with its paid seats, its held ones released; every other
    fails. Returns the teams ended and the seats that ended with them."""
    failed, ended = _failed(
        tx,
        tx.column(FAIL_UNSAVEABLE_TEAMS, {"ids": list(team_ids), "now": tx.instant(now)}),
        now,
    )
    if len(failed) == len(team_ids):
        return failed, ended
    gone = set(failed)
    rest = [team_id for team_id in team_ids if team_id not in gone]
    outcomes = tx.all_as(_WindowOutcome, WINDOW_OUTCOMES, {"ids": rest, "now": tx.instant(now)})
    secured = [team.team_id for team in outcomes if team.secured]
    unfilled = [team for team in outcomes if not team.secured]
    filled = _filled(tx, unfilled, now)
    secured += filled
    released: list[EndedSeat] = []
    if secured:
        held: list[str] = tx.column(HELD_SEATS_OF_TEAMS, {"ids": secured})
        released = _end_seats(tx, held, now)
        for team_id in secured:
            _succeed_team(tx, team_id, now)
    # A fillable team no budget could fill fails as any team.
    unlucky, more = fail_teams(tx, [t.team_id for t in unfilled if t.team_id not in filled], now)
    return secured + failed + unlucky, released + ended + more


@dataclass(frozen=True, slots=True)
class _WindowOutcome:
    team_id: str
    secured: bool | int  # SQLite gives 0/1
    missing: int
    price: int
    currency: str
    merchant_id: str
    funded_by: str | None


def _filled(tx: RawTx, fillable: Sequence[_WindowOutcome], now: datetime) -> list[str]:
    """The teams among ``fillable`` that a budget fills (domain/autofill.py): each is marked
    with its filled seats, counted against the budget within its limit, and, when the platform
    pays, journalled; returns them (they succeed with their paid seats)."""
    filled = []
    for team in fillable:
        assert team.funded_by is not None  # only a deal that fills teams makes one fillable
        fill = AutoFill(team.missing, FundedBy(team.funded_by))
        cost = fill_cost(team.missing, int(team.price))
        granted = tx.one(
            USE_BUDGET,
            {
                "payer": fill.payer(team.merchant_id),
                "currency": team.currency,
                "cost": cost,
                "seats": team.missing,
                "now": tx.instant(now),
            },
        )
        if granted is None:
            continue  # no budget, or not enough left: the team fails as any team
        tx.execute(
            MARK_FILLED,
            {"team_id": team.team_id, "seats": team.missing, "funded_by": fill.funded_by.value},
        )
        if fill.funded_by is FundedBy.PLATFORM:
            record_fill_subsidy(tx, team.team_id, team.merchant_id, cost, team.currency, now)
        record_event(
            tx, "team.filled", team.team_id, seats=team.missing, funded_by=fill.funded_by.value
        )
        filled.append(team.team_id)
    return filled


# ---------------------------------------------------------------------------- paying


@dataclass(frozen=True, slots=True)
class PaidOutcome:
    """What a payment's arrival did to its seat."""

    took_place: bool  # False: the seat was gone or already paid; this money must go back
    team_id: str
    team_succeeded: bool = False
    ended: tuple[EndedSeat, ...] = ()


def mark_seat_paid(
    tx: RawTx, seat_id: str, now: datetime, *, seen: SeatAndTeam | None = None
) -> PaidOutcome:
    """Record that a held seat's payment arrived. The team succeeds when its last seat is paid.

    A payment after the seat's hold or the team's window has run out never takes a place: the
    seat (or the whole team) ends first, exactly as the sweep would have ended it. ``seen`` is
    the seat and its team as the caller read them under their locks (:func:`seat_and_team`);
    without it, they are locked and read here.
    """
    if seen is None:
        lock_seat(tx, seat_id)
        # Read under the locks (on SQLite, under the one write lock this transaction holds).
        seen = seat_and_team(tx, seat_id)
        assert seen is not None
    user_id, team_id, team = seen.user_id, seen.team_id, seen.team
    if team.status == TeamStatus.FORMING.value and team.expires_at <= now:
        _, ended = _end_windows(tx, [team_id], now)
        return PaidOutcome(False, team_id, ended=tuple(ended))
    if seen.status != SeatStatus.HELD.value:
        return PaidOutcome(False, team_id)
    if seen.hold_expires_at is not None and seen.hold_expires_at <= now:
        return PaidOutcome(False, team_id, ended=tuple(_end_seats(tx, [seat_id], now)))
    # A held seat's team is forming (a team that ends ends its seats), as read under its lock:
    # the seat and the team's count change as read, so neither answer is waited for.
    assert team.status == TeamStatus.FORMING.value, team.status
    tx.send(PAY_SEAT, {"id": seat_id, "now": tx.instant(now)})
    tx.send(ADD_PAID, {"team_id": team_id})
    record_event(tx, "seat.paid", seat_id, team_id=team_id, user_id=user_id)
    if seen.team_paid + 1 < team.team_size:
        return PaidOutcome(True, team_id)
    tipping = seen.tipping  # read under the deal's lock, which this transaction still holds
    if tipping.tipping_point is not None and tipping.tipped_at is None:
        tipped = _wait_or_tip(tx, team_id, seen.deal_id, tipping, now)
        return PaidOutcome(True, team_id, team_succeeded=tipped)
    _succeed_team(tx, team_id, now)
    return PaidOutcome(True, team_id, team_succeeded=True)


@dataclass(frozen=True, slots=True)
class _Waiting:
    id: str
    paid: int


def _wait_or_tip(
    tx: RawTx, team_id: str, deal_id: str, tipping: DealTipping, now: datetime
) -> bool:
    """A team of an untipped deal is full and paid: it waits for the deal's tipping point until
    the deal's end, unless its seats tip the deal, and then every waiting team succeeds now.
    The deal's row is locked (SQLite: the one writer), so payments count one at a time and
    exactly one tips the deal. Returns whether it did."""
    assert tipping.tipping_point is not None
    waiting = tx.all_as(_Waiting, WAITING_TEAMS, {"deal_id": deal_id})
    seats = sum(w.paid for w in waiting)
    if seats < tipping.tipping_point:
        tx.execute(WAIT_FOR_TIP, {"team_id": team_id, "ends_at": tipping.ends_at})
        record_event(tx, "team.waiting", team_id, deal_id=deal_id, seats=seats)
        return False
    tx.execute(TIP, {"deal_id": deal_id, "now": tx.instant(now)})
    record_event(tx, "deal.tipped", deal_id, seats=seats)
    # Deal first, then the teams in order: the global lock order (this team's lock is held).
    _lock_deals_and_teams(tx, [deal_id], [w.id for w in waiting])
    for team in waiting:
        _succeed_team(tx, team.id, now)
    return True


def _succeed_team(tx: RawTx, team_id: str, now: datetime) -> None:
    """A forming team succeeds: its paid seats are confirmed, the deal's options at success
    applied, and its money becomes the merchant's (holds captured, charges earned)."""
    # The team is forming (its caller read it so under its lock): its end needs no answer.
    tx.send(SUCCEED_TEAM, {"team_id": team_id, "now": tx.instant(now)})
    TEAMS_SUCCEEDED.inc()
    by_team = {"team_id": team_id}
    seats, deal = tx.together((CONFIRM_SEATS, by_team), (DEAL_AT_SUCCESS, by_team))
    confirmed: list[tuple[str, str]] = [(seat, user) for seat, user in seats.rows]
    record_event(tx, "team.succeeded", team_id, member_ids=[user for _, user in confirmed])
    at_success = deal.one_as(_DealAtSuccess)
    assert at_success is not None  # the team just succeeded
    _what_success_brings(tx, team_id, at_success, confirmed, now)
    owed.owe_captures(tx, team_id, now)


@dataclass(frozen=True, slots=True)
class _DealAtSuccess:
    deal_id: str
    merchant_id: str
    voucher: Any
    lottery_winners: int | None
    lottery_seed: str | None
    lottery_coupon_amount: int | None
    lottery_coupon_days: int | None
    leader_reward_kind: str | None
    ladder: object
    team_size: int
    group_price: int
    solo: bool | int  # a purchase alone: SQLite answers 0 or 1


def _what_success_brings(
    tx: RawTx,
    team_id: str,
    deal: _DealAtSuccess,
    confirmed: list[tuple[str, str]],
    now: datetime,
) -> None:
    """The deal's options at a team's success: a lottery's draw first (only its winners keep
    their seat's purchase and get a voucher), a ladder's tier reached, then the vouchers, then
    the leader's reward. A purchase alone (at the list price, or at a bargain's) is no team's:
    no draw, no tier, no reward, only its voucher."""
    if not deal.solo:
        confirmed = _draw_and_climb(tx, team_id, deal, confirmed, now)
    terms = voucher_terms_of(deal.voucher)
    if terms is not None:
        issue_vouchers(tx, team_id, deal.deal_id, deal.merchant_id, terms, confirmed, now)
    if deal.leader_reward_kind is not None and not deal.solo:
        tx.execute(OWE_LEADER_REWARD, {"team_id": team_id})


def _draw_and_climb(
    tx: RawTx,
    team_id: str,
    deal: _DealAtSuccess,
    confirmed: list[tuple[str, str]],
    now: datetime,
) -> list[tuple[str, str]]:
    """A team's lottery draw and its ladder's tier reached; returns the seats that keep their
    purchase (a lottery's winners, else every confirmed seat)."""
    if deal.lottery_winners is not None and deal.lottery_seed is not None:
        consolation = (
            lottery.Consolation(
                deal.merchant_id,
                CouponTerms(deal.lottery_coupon_amount, deal.lottery_coupon_days),
            )
            if deal.lottery_coupon_amount is not None and deal.lottery_coupon_days is not None
            else None
        )
        won = lottery.draw_team(
            tx,
            team_id,
            deal.lottery_winners,
            deal.lottery_seed,
            [s for s, _ in confirmed],
            consolation,
            now,
        )
        confirmed = [(seat, user) for seat, user in confirmed if seat in won]
    ladder = stored_ladder(deal.team_size, deal.group_price, deal.ladder)
    if ladder is not None:
        reached = ladder.reached(len(confirmed))
        assert reached is not None  # a ladder team succeeds from its first tier on
        tx.execute(SET_LADDER_PRICE, {"team_id": team_id, "price": reached.price})
    return confirmed


def payable(
    status: str, hold_expires_at: datetime | None, repay_by: datetime | None, now: datetime
) -> bool:
    """Whether a seat can be paid for now: held and within its hold, or confirmed and its
    shopper asked to pay for it again (payments/endings.py, ``charge_again``) in time."""
    if status == SeatStatus.HELD.value:
        return hold_expires_at is None or hold_expires_at > now
    return status == SeatStatus.CONFIRMED.value and repay_by is not None and repay_by > now


def require_payable(seat: Seat, now: datetime) -> None:
    """Refuse paying for a seat that cannot be paid for now (:func:`payable`)."""
    if not payable(seat.status, seat.hold_expires_at, seat.repay_by, now):
        require_held(seat, now)  # says why


def require_held(seat: Seat, now: datetime) -> None:
    """Only a seat still within its hold can be paid for."""
    if seat.status != SeatStatus.HELD.value or (
        seat.hold_expires_at is not None and seat.hold_expires_at <= now
    ):
        state = seat.status if seat.status != SeatStatus.HELD.value else "no longer held"
        raise Conflict(
            f"This seat is {state}; only a held seat can be paid.", code="seat_not_payable"
        )
