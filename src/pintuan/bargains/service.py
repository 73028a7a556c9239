"""Where bargains are decided (``domain/bargains.py``): a merchant sets a deal's bargain terms; a
shopper opens a bargain; friends cut it; its owner buys one unit at the price reached.

A cut is one short transaction of conditional writes, the shape of a join (DESIGN.md):

1. ``UPDATE bargains SET cuts = cuts + 1 … WHERE status = 'open' AND cuts < helpers_needed
   AND expires_at > :now AND <no live seat> RETURNING cuts``: no row is the refusal
   (``bargain_complete`` or ``bargain_closed``); on PostgreSQL it holds the bargain's row, so
   concurrent cuts of one bargain take positions 1, 2, 3… one after the other;
2. the position's amount from the schedule (``domain.bargains.cut_schedule``) comes off
   ``price_amount`` on the same, held row;
3. the cut's row is inserted, unique per bargain by position, helper, device and address: a
   repeat from any of them fails the insert and rolls the whole transaction back
   (``bargain_already_cut``, ``bargain_device_used``, ``bargain_address_used``).

The anti-abuse limits count a helper's (when their account is new) and an address's cuts of
the last 24 hours across all bargains; on PostgreSQL a transaction-scoped advisory lock per
address and per new account makes the count and the insert one step for concurrent cuts
(SQLite runs one writer at a time). Locks are taken in one order: address, account, bargain.

The purchase holds the bargain's row by a conditional write first (open, before its deadline,
no live seat), then buys alone at its price through ``teams.service.buy_at_price`` (stock and
the shopper's limit by the engine's own conditional writes), then notes the seat on the held
row: two purchases at once make one seat. Lock order: bargain, then the engine's deal, team,
counter; no other transaction takes a bargain after those.

"Bought" is read from the seat (paid, confirmed or refunded after payment) and "expired" from
the deadline; the worker writes both down later (``bargains.tasks``), and opening a new bargain
writes them down for the owner's previous one. Terms are catalogue (ORM); everything else runs
on the raw path. Services never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from pintuan.deals import service as deals
from pintuan.deals.service import refuse_problems
from pintuan.domain.bargains import (
    PAID_SEATS,
    SEED_BYTES,
    BargainStatus,
    BargainTerms,
    cut_schedule,
    shown_status,
    terms_problems,
)
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.roles import Principal
from pintuan.domain.teams import SeatStatus
from pintuan.errors import AppError, Conflict, Forbidden, NotFound, RateLimited, field_error
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import IntegrityViolation, RawTx, Sql, raw_tx
from pintuan.teams.service import TeamStart, buy_at_price

DAY = timedelta(hours=24)
HELPERS_SHOWN = 100
MAX_DEVICE_ID = 200
TERMS_STATUSES = (DealStatus.DRAFT.value, DealStatus.LIVE.value)

# ---------------------------------------------------------------------------- statements

TERMS_OF_DEAL = Sql(
    "SELECT deal_id, floor_amount, helpers, hours, created_at, updated_at "
    "FROM bargain_terms WHERE deal_id = :deal_id"
)
# Opening shares the terms' row (a removal waits for it); a removal takes it alone.
TERMS_SHARED = Sql(TERMS_OF_DEAL.text + " FOR SHARE")
TERMS_LOCKED = Sql(TERMS_OF_DEAL.text + " FOR UPDATE")
UPSERT_TERMS = Sql("""
    INSERT INTO bargain_terms (deal_id, floor_amount, helpers, hours, created_at, updated_at)
    VALUES (:deal_id, :floor_amount, :helpers, :hours, :now, :now)
    ON CONFLICT (deal_id) DO UPDATE SET floor_amount = excluded.floor_amount,
        helpers = excluded.helpers, hours = excluded.hours, updated_at = excluded.updated_at
""")
ANY_BARGAIN_OF_DEAL = Sql("SELECT 1 FROM bargains WHERE deal_id = :deal_id LIMIT 1")
DELETE_TERMS = Sql("DELETE FROM bargain_terms WHERE deal_id = :deal_id")

DEAL_FOR_BARGAIN = Sql("""
    SELECT id, status, list_price_amount, currency, starts_at, ends_at, merchant_suspended
    FROM deals WHERE id = :id
""")
# A bargain whose purchase's seat is held, paid or was paid: taken; one released (its hold
# lapsed) is not, and the bargain may be cut and bought again.
_NO_SEAT_TAKEN = """(seat_id IS NULL OR EXISTS (SELECT 1 FROM seats s WHERE s.id = bargains.seat_id
                                             AND s.status = :released))"""
_PAID_SEAT = """EXISTS (SELECT 1 FROM seats s WHERE s.id = bargains.seat_id
                       AND s.status IN (:paid, :confirmed, :refunded))"""
_PAID_WORDS: dict[str, object] = {
    "paid": SeatStatus.PAID,
    "confirmed": SeatStatus.CONFIRMED,
    "refunded": SeatStatus.REFUNDED,
}
# The owner's earlier bargain on the deal, written down as bought or expired when it is one.
SETTLE_OWNERS_BARGAIN = Sql(
    f"""
    UPDATE bargains
    SET status = CASE WHEN {_PAID_SEAT} THEN :bought ELSE :expired END, updated_at = :now
    WHERE deal_id = :deal_id AND owner_id = :owner_id AND status = :open
      AND ({_PAID_SEAT} OR (expires_at <= :now AND NOT EXISTS (
          SELECT 1 FROM seats s WHERE s.id = bargains.seat_id AND s.status = :held)))
""",  # noqa: S608 - constant text
    open=BargainStatus.OPEN,
    bought=BargainStatus.BOUGHT,
    expired=BargainStatus.EXPIRED,
    held=SeatStatus.HELD,
    **_PAID_WORDS,
)
INSERT_BARGAIN = Sql(
    """
    INSERT INTO bargains (id, deal_id, owner_id, currency, start_amount, floor_amount,
        helpers_needed, seed, cuts, price_amount, status, expires_at, created_at, updated_at)
    VALUES (:id, :deal_id, :owner_id, :currency, :start, :floor, :helpers, :seed, 0, :start,
        :open, :expires_at, :now, :now)
    ON CONFLICT DO NOTHING
    RETURNING id
""",
    open=BargainStatus.OPEN,
)
OPEN_BARGAIN_OF = Sql(
    "SELECT id FROM bargains WHERE deal_id = :deal_id AND owner_id = :owner_id AND status = :open",
    open=BargainStatus.OPEN,
)

_BARGAIN_COLUMNS = """
    b.id, b.deal_id, d.title AS deal_title, b.owner_id, u.display_name AS owner_name,
    b.currency, b.start_amount, b.floor_amount, b.helpers_needed, b.cuts, b.price_amount,
    b.status, b.expires_at, b.seat_id, s.status AS seat_status, s.team_id,
    b.bought_price_amount, b.created_at
"""
_BARGAIN_FROM = """
    FROM bargains b JOIN deals d ON d.id = b.deal_id JOIN users u ON u.id = b.owner_id
    LEFT JOIN seats s ON s.id = b.seat_id
"""
BARGAIN_BY_ID = Sql(f"SELECT {_BARGAIN_COLUMNS} {_BARGAIN_FROM} WHERE b.id = :id")
BARGAINS_OF_OWNER = Sql(
    f"""SELECT {_BARGAIN_COLUMNS} {_BARGAIN_FROM}
    WHERE b.owner_id = :owner_id AND (CAST(:after AS VARCHAR(40)) IS NULL OR b.id < :after)
    ORDER BY b.id DESC LIMIT :limit"""
)
HELPERS_OF = Sql("""
    SELECT c.position, c.amount, c.created_at, u.display_name
    FROM bargain_cuts c JOIN users u ON u.id = c.helper_id
    WHERE c.bargain_id = :id ORDER BY c.position DESC LIMIT :limit
""")
CUT_OF_HELPER = Sql(
    "SELECT position, amount FROM bargain_cuts WHERE bargain_id = :id AND helper_id = :helper_id"
)

# Cuts from the same account, device or address as an earlier one of the bargain.
EARLIER_CUT = Sql("""
    SELECT helper_id, device_hash, address_hash FROM bargain_cuts
    WHERE bargain_id = :id
      AND (helper_id = :helper_id OR device_hash = :device_hash OR address_hash = :address_hash)
    LIMIT 1
""")
USER_SINCE = Sql("SELECT created_at FROM users WHERE id = :id")
HELPER_CUTS_SINCE = Sql(
    "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM bargain_cuts "
    "WHERE helper_id = :helper_id AND created_at > :since"
)
ADDRESS_CUTS_SINCE = Sql(
    "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM bargain_cuts "
    "WHERE address_hash = :address_hash AND created_at > :since"
)
# PostgreSQL: one cut at a time per address (and per new account) while it counts and inserts.
SERIALIZE_ON = Sql("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
TAKE_CUT = Sql(
    f"""
    UPDATE bargains SET cuts = cuts + 1, updated_at = :now
    WHERE id = :id AND status = :open AND cuts < helpers_needed AND expires_at > :now
      AND {_NO_SEAT_TAKEN}
    RETURNING cuts, seed, start_amount, floor_amount, helpers_needed
""",  # noqa: S608 - constant text
    open=BargainStatus.OPEN,
    released=SeatStatus.RELEASED,
)
LOWER_PRICE = Sql(
    "UPDATE bargains SET price_amount = price_amount - :amount WHERE id = :id "
    "RETURNING price_amount"
)
INSERT_CUT = Sql("""
    INSERT INTO bargain_cuts (bargain_id, position, helper_id, amount, device_hash, address_hash,
        created_at)
    VALUES (:id, :position, :helper_id, :amount, :device_hash, :address_hash, :now)
""")

# The owner's purchase: the bargain's row held while its seat is bought.
CLAIM_PURCHASE = Sql(
    f"""
    UPDATE bargains SET updated_at = :now
    WHERE id = :id AND owner_id = :owner_id AND status = :open AND expires_at > :now
      AND {_NO_SEAT_TAKEN}
    RETURNING deal_id, price_amount
""",  # noqa: S608 - constant text
    open=BargainStatus.OPEN,
    released=SeatStatus.RELEASED,
)
NOTE_PURCHASE = Sql(
    "UPDATE bargains SET seat_id = :seat_id, bought_price_amount = :price WHERE id = :id"
)


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TermsView:
    deal_id: str
    floor_amount: int
    helpers: int
    hours: int
    currency: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BargainView:
    """A bargain as its readers see it; ``state`` is what it is now (``shown_status``)."""

    id: str
    deal_id: str
    deal_title: str
    owner_id: str
    owner_name: str
    currency: str
    start_amount: int
    floor_amount: int
    helpers_needed: int
    cuts: int
    price_amount: int
    status: str
    expires_at: datetime
    seat_id: str | None
    seat_status: str | None
    team_id: str | None
    bought_price_amount: int | None
    created_at: datetime
    state: BargainStatus = BargainStatus.OPEN

    @property
    def can_buy(self) -> bool:
        """Whether its owner may buy now: open, and no seat held or paid for it."""
        return self.state is BargainStatus.OPEN and self.seat_status not in (
            SeatStatus.HELD,
            *PAID_SEATS,
        )

    @property
    def can_be_cut(self) -> bool:
        return self.can_buy and self.cuts < self.helpers_needed


@dataclass(frozen=True, slots=True)
class HelperCut:
    """One helper's cut as everybody may see it: their display name, never their id."""

    position: int
    amount: int
    created_at: datetime
    display_name: str


@dataclass(frozen=True, slots=True)
class CutView:
    bargain_id: str
    position: int
    amount: int
    price_amount: int
    cuts: int
    helpers_needed: int
    currency: str


@dataclass(frozen=True, slots=True)
class Helper:
    """Who cuts: their account, and keyed hashes of their device and network address."""

    user_id: str
    device_hash: str
    address_hash: str


@dataclass(frozen=True, slots=True)
class CutLimits:
    """The anti-abuse limits (``PINTUAN_BARGAIN_*``)."""

    new_account: timedelta
    new_account_cuts_per_day: int
    cuts_per_address_per_day: int


@dataclass(frozen=True, slots=True)
class _Deal:
    id: str
    status: str
    list_price_amount: int
    currency: str
    starts_at: Any
    ends_at: Any
    merchant_suspended: bool | int


def helper_of(secret_key: str, user_id: str, address: str, device_id: str | None) -> Helper:
    """A helper with keyed hashes (the app's secret key) of their address and device; without
    a device id the address stands for the device. Raw values are never stored."""

    def keyed(kind: str, value: str) -> str:
        message = f"bargain-{kind}:{value}".encode()
        return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()

    address_hash = keyed("address", address)
    device = (device_id or "").strip()[:MAX_DEVICE_ID]
    return Helper(user_id, keyed("device", device) if device else address_hash, address_hash)


# ---------------------------------------------------------------------------- terms


def _terms_view(tx: RawTx, row: Any, currency: str) -> TermsView:
    return TermsView(
        deal_id=row[0],
        floor_amount=int(row[1]),
        helpers=int(row[2]),
        hours=int(row[3]),
        currency=currency,
        created_at=tx.read_instant(row[4]),
        updated_at=tx.read_instant(row[5]),
    )


def terms_of(session: Session, principal: Principal | None, deal_id: str) -> TermsView:
    """A deal's bargain terms, for anyone who may see the deal (404 for drafts but to its
    merchant's staff); ``bargain_terms_not_found`` when it has none."""
    found = offered_terms(session, principal, deal_id)
    if found is None:
        raise NotFound(f"Deal {deal_id} has no bargain.", code="bargain_terms_not_found")
    return found


def offered_terms(session: Session, principal: Principal | None, deal_id: str) -> TermsView | None:
    """A visible deal's bargain terms, or None."""
    deal = deals.visible_deal(session, principal, deal_id)
    return deal_terms(session, deal.id, deal.currency)


def deal_terms(session: Session, deal_id: str, currency: str) -> TermsView | None:
    """The bargain terms of a deal the caller has read already (the deal page: a button or
    not), or None."""
    tx = raw_tx(session)
    row = tx.one(TERMS_OF_DEAL, {"deal_id": deal_id})
    return None if row is None else _terms_view(tx, row, currency)


def set_terms(
    session: Session,
    principal: Principal,
    deal_id: str,
    terms: BargainTerms,
    currency: str,
    now: datetime,
) -> TermsView:
    """Give a draft or live deal bargain terms, or change them (its staff and operators).
    Bargains already open keep the terms they were opened with."""
    deal = deals.deal_to_change(session, principal, deal_id)
    if deal.status not in TERMS_STATUSES:
        raise Conflict(
            f"This deal is {deal.status}: bargain terms are set on draft and live deals.",
            code="bargain_terms_not_editable",
        )
    if currency != deal.currency:
        raise field_error("floor_price.currency", f"must be the deal's currency {deal.currency}")
    refuse_problems(terms_problems(terms, deal.list_price_amount))
    tx = raw_tx(session)
    tx.execute(
        UPSERT_TERMS,
        {
            "deal_id": deal_id,
            "floor_amount": terms.floor_amount,
            "helpers": terms.helpers,
            "hours": terms.hours,
            "now": tx.instant(now),
        },
    )
    row = tx.one(TERMS_OF_DEAL, {"deal_id": deal_id})
    return _terms_view(tx, row, deal.currency)


def remove_terms(session: Session, principal: Principal, deal_id: str) -> None:
    """Take a deal's bargain terms away; refused once any bargain was opened on them
    (``bargain_terms_in_use``). Removing terms a deal does not have changes nothing."""
    deals.deal_to_change(session, principal, deal_id)
    tx = raw_tx(session)
    # Held alone, so an opening that shares the row has committed or waits: its bargain counts.
    if tx.one(TERMS_OF_DEAL if tx.sqlite else TERMS_LOCKED, {"deal_id": deal_id}) is None:
        return
    if tx.one(ANY_BARGAIN_OF_DEAL, {"deal_id": deal_id}) is not None:
        raise Conflict(
            "Shoppers have opened bargains on these terms; they stay while the deal runs.",
            code="bargain_terms_in_use",
        )
    tx.execute(DELETE_TERMS, {"deal_id": deal_id})


# ---------------------------------------------------------------------------- reading


def _bargains(tx: RawTx, sql: Sql, params: dict[str, Any], now: datetime) -> list[BargainView]:
    def build(**row: Any) -> BargainView:
        row["expires_at"] = tx.read_instant(row["expires_at"])
        row["created_at"] = tx.read_instant(row["created_at"])
        view = BargainView(**row)
        return replace(
            view, state=shown_status(view.status, view.expires_at, view.seat_status, now)
        )

    return tx.all_as(build, sql, params)


def get_bargain(tx: RawTx, bargain_id: str, now: datetime) -> BargainView:
    """A bargain, for anyone holding its link."""
    found = _bargains(tx, BARGAIN_BY_ID, {"id": bargain_id}, now)
    if not found:
        raise NotFound(f"No bargain {bargain_id}.", code="bargain_not_found")
    return found[0]


def helpers_of(tx: RawTx, bargain_id: str, limit: int = HELPERS_SHOWN) -> list[HelperCut]:
    """The bargain's helpers, newest first, by display name and amount cut."""
    return [
        HelperCut(int(p), int(a), tx.read_instant(at), str(name))
        for p, a, at, name in tx.all(HELPERS_OF, {"id": bargain_id, "limit": limit})
    ]


def cut_of_helper(tx: RawTx, bargain_id: str, user_id: str) -> tuple[int, int] | None:
    """(position, amount) of the viewer's own cut of the bargain, if they made one."""
    row = tx.one(CUT_OF_HELPER, {"id": bargain_id, "helper_id": user_id})
    return None if row is None else (int(row[0]), int(row[1]))


def bargains_of_owner(
    tx: RawTx, owner_id: str, after: str | None, limit: int, now: datetime
) -> list[BargainView]:
    """A shopper's bargains, newest first."""
    return _bargains(
        tx, BARGAINS_OF_OWNER, {"owner_id": owner_id, "after": after, "limit": limit}, now
    )


# ---------------------------------------------------------------------------- opening


def open_bargain(tx: RawTx, user_id: str, deal_id: str, now: datetime) -> BargainView:
    """Open a bargain on a live deal with bargain terms, at its list price, until ``hours``
    from now (never after the deal's end). One open bargain per shopper and deal:
    ``bargain_already_open`` names it."""
    deal = tx.one_as(_Deal, DEAL_FOR_BARGAIN, {"id": deal_id})
    if deal is None or deal.status == DealStatus.DRAFT:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    row = tx.one(TERMS_OF_DEAL if tx.sqlite else TERMS_SHARED, {"deal_id": deal_id})
    terms = None if row is None else BargainTerms(int(row[1]), int(row[2]), int(row[3]))
    if terms is None or terms_problems(terms, int(deal.list_price_amount)):
        # Terms that no longer fit (a draft's price changed after them) offer nothing.
        raise Conflict("This deal offers no bargain.", code="bargain_not_offered")
    ends_at = tx.read_instant(deal.ends_at)
    if (
        deal.status != DealStatus.LIVE
        or deal.merchant_suspended
        or not tx.read_instant(deal.starts_at) <= now < ends_at
    ):
        raise Conflict("This deal is not open right now.", code="deal_not_live")
    at = tx.instant(now)
    tx.execute(SETTLE_OWNERS_BARGAIN, {"deal_id": deal_id, "owner_id": user_id, "now": at})
    bargain_id = new_id("bargain")
    made = tx.scalar(
        INSERT_BARGAIN,
        {
            "id": bargain_id,
            "deal_id": deal_id,
            "owner_id": user_id,
            "currency": deal.currency,
            "start": int(deal.list_price_amount),
            "floor": terms.floor_amount,
            "helpers": terms.helpers,
            "seed": secrets.token_hex(SEED_BYTES),
            "expires_at": tx.instant(min(now + timedelta(hours=terms.hours), ends_at)),
            "now": at,
        },
    )
    if made is None:
        existing = tx.scalar(OPEN_BARGAIN_OF, {"deal_id": deal_id, "owner_id": user_id})
        raise Conflict(
            "You have a bargain open on this deal already; share that one.",
            code="bargain_already_open",
            extra={"bargain_id": existing},
        )
    record_event(tx, "bargain.opened", bargain_id, user_id=user_id, deal_id=deal_id)
    return get_bargain(tx, bargain_id, now)


# ---------------------------------------------------------------------------- cutting


def _closed(view: BargainView) -> AppError | None:
    if not view.can_buy:
        return Conflict(
            "This bargain has ended: it was bought or its time ran out.", code="bargain_closed"
        )
    if view.cuts >= view.helpers_needed:
        return Conflict(
            "This bargain has reached its lowest price; no more cuts are needed.",
            code="bargain_complete",
        )
    return None


def _already_cut() -> AppError:
    return Conflict("You have helped cut this bargain already.", code="bargain_already_cut")


def _device_used() -> AppError:
    return Conflict(
        "Somebody already helped cut this bargain from this device.", code="bargain_device_used"
    )


def _address_used() -> AppError:
    return Conflict(
        "Somebody already helped cut this bargain from this network.",
        code="bargain_address_used",
    )


def _repeat(earlier: Any, helper: Helper) -> AppError:
    """Why an earlier cut of the bargain stops this one: the same account, device or address."""
    helper_id, device_hash, _ = earlier
    if helper_id == helper.user_id:
        return _already_cut()
    return _device_used() if device_hash == helper.device_hash else _address_used()


def _repeat_of(violation: IntegrityViolation) -> AppError:
    """Which uniqueness a concurrent repeat broke, by the constraint's columns (both drivers
    name them in the message); anything else is not a repeat and goes on up."""
    said = str(violation)
    for column, refusal in (
        ("helper_id", _already_cut),
        ("device_hash", _device_used),
        ("address_hash", _address_used),
    ):
        if column in said:
            return refusal()
    raise violation


def _refuse_over_limits(tx: RawTx, helper: Helper, now: datetime, limits: CutLimits) -> None:
    since = tx.instant(now - DAY)
    if not tx.sqlite:
        tx.execute(SERIALIZE_ON, {"key": f"bargain-address:{helper.address_hash}"})
    count, oldest = tx.one(
        ADDRESS_CUTS_SINCE, {"address_hash": helper.address_hash, "since": since}
    )
    if int(count) >= limits.cuts_per_address_per_day:
        raise _limited(
            tx,
            oldest,
            now,
            f"This network has helped cut {limits.cuts_per_address_per_day} bargains today; "
            "try again later.",
            "bargain_address_limit",
        )
    joined = tx.read_instant(tx.scalar(USER_SINCE, {"id": helper.user_id}))
    if joined <= now - limits.new_account:
        return
    if not tx.sqlite:
        tx.execute(SERIALIZE_ON, {"key": f"bargain-helper:{helper.user_id}"})
    count, oldest = tx.one(HELPER_CUTS_SINCE, {"helper_id": helper.user_id, "since": since})
    if int(count) >= limits.new_account_cuts_per_day:
        raise _limited(
            tx,
            oldest,
            now,
            f"New accounts help cut {limits.new_account_cuts_per_day} bargains a day at most; "
            "try again later.",
            "bargain_new_account_limit",
        )


def _limited(tx: RawTx, oldest: Any, now: datetime, detail: str, code: str) -> AppError:
    """429 with the seconds until the oldest cut counted leaves the 24 hours."""
    wait = DAY if oldest is None else tx.read_instant(oldest) + DAY - now
    refused = RateLimited(detail, retry_after_seconds=max(1, int(wait.total_seconds()) + 1))
    refused.code = code
    return refused


def cut(tx: RawTx, helper: Helper, bargain_id: str, now: datetime, limits: CutLimits) -> CutView:
    """A friend cuts the bargain by its next scheduled amount: one conditional write on the
    bargain (refused ``bargain_complete`` or ``bargain_closed``), its price lowered on the held
    row, the cut inserted (a repeat from the account, device or address: 409). Never the
    owner (403 ``bargain_own``); new accounts and busy addresses are limited (429)."""
    bargain = get_bargain(tx, bargain_id, now)
    if bargain.owner_id == helper.user_id:
        raise Forbidden("Friends cut your bargain; you cannot cut it yourself.", code="bargain_own")
    closed = _closed(bargain)
    if closed is not None:
        raise closed
    params = {
        "id": bargain_id,
        "helper_id": helper.user_id,
        "device_hash": helper.device_hash,
        "address_hash": helper.address_hash,
    }
    earlier = tx.one(EARLIER_CUT, params)
    if earlier is not None:
        raise _repeat(earlier, helper)
    _refuse_over_limits(tx, helper, now, limits)
    at = tx.instant(now)
    taken = tx.one(TAKE_CUT, {"id": bargain_id, "now": at})
    if taken is None:
        raise _closed(get_bargain(tx, bargain_id, now)) or Conflict(
            "This bargain has ended.", code="bargain_closed"
        )
    position, seed, start, floor, helpers_needed = taken
    amount = cut_schedule(str(seed), int(start) - int(floor), int(helpers_needed))[position - 1]
    price = int(tx.scalar(LOWER_PRICE, {"id": bargain_id, "amount": amount}))
    try:
        tx.execute(INSERT_CUT, {**params, "position": position, "amount": amount, "now": at})
    except IntegrityViolation as violation:
        raise _repeat_of(violation) from violation
    record_event(
        tx,
        "bargain.cut",
        bargain_id,
        user_id=bargain.owner_id,
        helper_id=helper.user_id,
        position=position,
        amount=amount,
        price=price,
    )
    return CutView(
        bargain_id,
        int(position),
        amount,
        price,
        int(position),
        bargain.helpers_needed,
        bargain.currency,
    )


# ---------------------------------------------------------------------------- buying


def purchase(
    tx: RawTx, user_id: str, bargain_id: str, now: datetime, *, hold: timedelta
) -> TeamStart:
    """The owner buys one unit at the price the bargain reached, before its deadline: a team of
    one held for payment, like buying alone. Refused ``bargain_already_bought`` while an
    earlier purchase's seat is held or paid; a seat whose hold lapsed may be bought again."""
    claimed = tx.one(
        CLAIM_PURCHASE, {"id": bargain_id, "owner_id": user_id, "now": tx.instant(now)}
    )
    if claimed is None:
        raise _not_buyable(get_bargain(tx, bargain_id, now), user_id)
    deal_id, price = str(claimed[0]), int(claimed[1])
    start = buy_at_price(tx, user_id, deal_id, price, now, hold=hold)
    tx.execute(NOTE_PURCHASE, {"id": bargain_id, "seat_id": start.seat.id, "price": price})
    record_event(
        tx, "bargain.purchased", bargain_id, user_id=user_id, seat_id=start.seat.id, price=price
    )
    return start


def _not_buyable(bargain: BargainView, user_id: str) -> AppError:
    if bargain.owner_id != user_id:
        return Forbidden(
            "Only the shopper who opened this bargain buys at its price.", code="bargain_not_owner"
        )
    if bargain.seat_id is not None and (
        bargain.seat_status in PAID_SEATS or bargain.seat_status == SeatStatus.HELD
    ):
        return Conflict(
            "You bought at this bargain's price already; pay for that order.",
            code="bargain_already_bought",
            extra={"seat_id": bargain.seat_id, "team_id": bargain.team_id},
        )
    return Conflict("This bargain has ended: its time ran out.", code="bargain_closed")
