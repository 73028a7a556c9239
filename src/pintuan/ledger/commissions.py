"""Commissions' money (``domain/commissions.py``): frozen, released, clawed back.

Four writers touch a commission, each a conditional write on its row, so that whatever order
they run in the money follows exactly one story:

- :func:`freeze_due` (the worker) freezes a sharer's commission for an earned seat a share
  brought. It locks the seat's payment first, so a refund racing it either committed before
  (and the commission is on what is left) or waits and then finds the commission to shrink.
- :func:`freeze` freezes a pickup point leader's commission in the transaction that hands the
  order over (``pickups/service.py``), on what the seat's payment kept.
- :func:`claw_back` (every refund after success, in the refund's own transaction, the payment
  already locked by the refund's guard; and every dispute lost, the payment locked first too)
  shrinks each frozen commission of the seat to the commission on what is still paid. A refund
  asked for by people is refused once a commission was released.
- :func:`release_due` (the worker) releases a frozen commission whose order's refund window has
  closed, to its earner's wallet.

Journals are keyed ``<commission id>:<kind>:<move>``, the move counted on the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pintuan.domain import ledger as rules
from pintuan.domain.commissions import (
    CommissionKind,
    CommissionStatus,
    commission_on,
    kept_after_refunds,
)
from pintuan.domain.deals import Vertical
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.payments import PaymentStatus
from pintuan.domain.teams import SeatStatus
from pintuan.domain.traffic import ConversionKind
from pintuan.domain.vouchers import VoucherStatus
from pintuan.errors import Conflict
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger.service import NewJournal, credit_wallets, post

# How long after a deal's end its seats' commissions may still be frozen (a payment captured
# late is earned late); older deals are not looked at again.
FREEZE_HORIZON = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class NewCommission:
    """A commission to freeze on a seat: ``amount`` (on ``base`` at ``rate_bps``) of
    ``currency``, owed by the merchant to ``sharer_id`` (the sharer, or the pickup point's
    leader)."""

    kind: CommissionKind
    seat_id: str
    payment_id: str
    deal_id: str
    merchant_id: str
    sharer_id: str
    buyer_id: str
    share_id: str | None
    currency: str
    base: int
    rate_bps: int
    amount: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    seat_id: str
    payment_id: str
    deal_id: str
    merchant_id: str
    sharer_id: str
    buyer_id: str
    share_id: str
    currency: str
    rate_bps: int


# What a payment's bank took back for good (disputes lost), which a commission is not paid on,
# as it is not on refunds.
_LOST = (
    "(SELECT COALESCE(SUM(dp.amount), 0) FROM disputes dp"
    " WHERE dp.payment_id = {payment} AND dp.status = 'lost')"
)
# Earned seats a share brought, on deals that pay their sharers, without a commission yet.
# Joined as CROSS JOINs, which SQLite always nests in the order written (PostgreSQL plans
# them as the inner joins they are): from the deals, then each deal's conversions by their
# index. SQLite's planner, without statistics, chose to walk every seat ever sold in id order
# (to spare the final sort) and look each up in the conversions: 72 ms a call with 200,000
# seats, in every worker tick that attributed an event.
FREEZE_CANDIDATES = Sql(
    f"""
    SELECT DISTINCT s.id AS seat_id, p.id AS payment_id, s.deal_id, d.merchant_id,
        sh.sharer_id, s.user_id AS buyer_id, c.share_id, p.currency,
        d.referral_commission_bps AS rate_bps
    FROM deals d
    CROSS JOIN share_conversions c
    CROSS JOIN seats s
    CROSS JOIN shares sh
    CROSS JOIN payments p
    WHERE c.deal_id = d.id AND c.kind = :success AND s.id = c.seat_id
      AND sh.id = c.share_id AND p.seat_id = s.id
      AND d.referral_commission_bps > 0 AND d.ends_at > :since
      AND sh.sharer_id IS NOT NULL AND sh.sharer_id <> s.user_id
      AND s.status = :confirmed AND p.status IN (:captured, :charged)
      AND p.pending_action IS NULL
      AND (p.amount - p.refunded_amount - {_LOST.format(payment="p.id")})
          * d.referral_commission_bps >= :basis_points
      AND EXISTS (SELECT 1 FROM ledger_journals j
                  WHERE j.payment_id = p.id AND j.kind = :earn AND j.status = :posted)
      AND NOT EXISTS (SELECT 1 FROM commissions cm
                      WHERE cm.seat_id = s.id AND cm.kind = :referral)
    ORDER BY s.id
    LIMIT :limit
""",  # noqa: S608 - this module's own text, no outside input
    success=ConversionKind.SUCCESS,
    confirmed=SeatStatus.CONFIRMED,
    captured=PaymentStatus.CAPTURED,
    charged=PaymentStatus.CHARGED,
    earn=JournalKind.EARN,
    posted=JournalStatus.POSTED,
    basis_points=rules.BASIS_POINTS,
    referral=CommissionKind.REFERRAL,
)
PAID_LEFT = Sql(
    f"SELECT amount, refunded_amount + {_LOST.format(payment='payments.id')}"  # noqa: S608 - this module's own text
    " FROM payments WHERE id = :id"
)
PAID_LEFT_LOCKED = Sql(PAID_LEFT.text + " FOR UPDATE")
LOST_TO_DISPUTES = Sql("SELECT " + _LOST.format(payment=":id"))
INSERT_COMMISSION = Sql(
    """
    INSERT INTO commissions (id, seat_id, kind, payment_id, deal_id, merchant_id, sharer_id,
        buyer_id, share_id, currency, base, rate_bps, amount, clawed_back, status, moves,
        created_at)
    VALUES (:id, :seat_id, :kind, :payment_id, :deal_id, :merchant_id, :sharer_id, :buyer_id,
        :share_id, :currency, :base, :rate_bps, :amount, 0, :frozen, 1, :now)
    ON CONFLICT (seat_id, kind) DO NOTHING
    RETURNING id
""",
    frozen=CommissionStatus.FROZEN,
)


def _journal(
    commission_id: str,
    kind: JournalKind,
    move: int,
    currency: str,
    amount: int,
    entries: list[rules.Entry],
    *,
    merchant_id: str | None,
    user_id: str,
    payment_id: str,
) -> NewJournal:
    return NewJournal(
        id=f"{commission_id}:{kind.value}:{move}",
        kind=kind,
        status=JournalStatus.POSTED,
        currency=currency,
        amount=amount,
        entries=entries,
        payment_id=payment_id,
        merchant_id=merchant_id,
        user_id=user_id,
    )


def freeze_due(tx: RawTx, now: datetime, limit: int) -> int:
    """Freeze the sharers' commissions now owed (at most ``limit``); returns how many."""
    candidates = tx.all_as(
        _Candidate, FREEZE_CANDIDATES, {"since": tx.instant(now - FREEZE_HORIZON), "limit": limit}
    )
    frozen = 0
    for c in candidates:
        base = paid_left(tx, c.payment_id)
        commission = NewCommission(
            kind=CommissionKind.REFERRAL,
            seat_id=c.seat_id,
            payment_id=c.payment_id,
            deal_id=c.deal_id,
            merchant_id=c.merchant_id,
            sharer_id=c.sharer_id,
            buyer_id=c.buyer_id,
            share_id=c.share_id,
            currency=c.currency,
            base=base,
            rate_bps=c.rate_bps,
            amount=commission_on(base, c.rate_bps),
        )
        if freeze(tx, commission, now):
            frozen += 1
    return frozen


def paid_left(tx: RawTx, payment_id: str) -> int:
    """What a payment still pays: its amount less refunds and disputes lost, which a commission
    is not paid on. On PostgreSQL the payment's row is locked first, as every refund and dispute
    decision locks it, so that one racing a freeze either committed before (and the commission
    is on what is left) or waits and then finds the commission to shrink."""
    paid = tx.one(PAID_LEFT if tx.sqlite else PAID_LEFT_LOCKED, {"id": payment_id})
    assert paid is not None, payment_id
    return max(int(paid[0]) - int(paid[1]), 0)


def freeze(tx: RawTx, commission: NewCommission, now: datetime) -> bool:
    """Freeze one commission: its row and its journal, the money moved from the merchant's
    payable to the earner's frozen commissions. False when there is nothing to freeze (an
    amount of 0) or the seat already has a commission of its kind."""
    if commission.amount <= 0:
        return False
    commission_id = new_id("cm")
    made = tx.scalar(
        INSERT_COMMISSION,
        {
            "id": commission_id,
            "seat_id": commission.seat_id,
            "kind": commission.kind.value,
            "payment_id": commission.payment_id,
            "deal_id": commission.deal_id,
            "merchant_id": commission.merchant_id,
            "sharer_id": commission.sharer_id,
            "buyer_id": commission.buyer_id,
            "share_id": commission.share_id,
            "currency": commission.currency,
            "base": commission.base,
            "rate_bps": commission.rate_bps,
            "amount": commission.amount,
            "now": tx.instant(now),
        },
    )
    if made is None:
        return False  # another sweep froze it first
    post(
        tx,
        [
            _journal(
                commission_id,
                JournalKind.COMMISSION_FROZEN,
                1,
                commission.currency,
                commission.amount,
                rules.commission_frozen(
                    commission.merchant_id, commission.sharer_id, commission.amount
                ),
                merchant_id=commission.merchant_id,
                user_id=commission.sharer_id,
                payment_id=commission.payment_id,
            )
        ],
        now,
    )
    return True


# ---------------------------------------------------------------------------- the refund window

# When a seat's order is complete, so that its refund window opens: a voucher's redemption,
# a pickup deal's hand-over, delivered goods' receipt, else its team's success. NULL: not yet,
# and so for goods whose buyer has not yet chosen a pickup point or an address (a seat may be
# paid without either): its order is not complete until the goods reach them.
ORDER_COMPLETED = """
    CASE WHEN v.seat_id IS NOT NULL THEN
              CASE WHEN v.status = :redeemed THEN v.redeemed_at END
         WHEN d.pickup_unclaimed_days IS NOT NULL THEN k.handed_over_at
         WHEN d.vertical = :goods THEN f.received_at
         ELSE t.ended_at END
"""
_COMPLETION_JOINS = """
    JOIN teams t ON t.id = s.team_id
    JOIN deals d ON d.id = s.deal_id
    LEFT JOIN vouchers v ON v.seat_id = s.id
    LEFT JOIN pickups k ON k.seat_id = s.id
    LEFT JOIN shipments f ON f.seat_id = s.id
"""
SEAT_REFUND_STATE = Sql(
    f"""
    SELECT {ORDER_COMPLETED} AS completed_at,
        EXISTS (SELECT 1 FROM commissions cm
                WHERE cm.seat_id = s.id AND cm.status = :released) AS released
    FROM seats s {_COMPLETION_JOINS}
    WHERE s.id = :seat_id
""",  # noqa: S608 - this module's own text, no outside input
    redeemed=VoucherStatus.REDEEMED,
    goods=Vertical.GOODS,
    released=CommissionStatus.RELEASED,
)
# Not while the payment's bank disputes it: the commission waits for the bank's decision.
RELEASE_CANDIDATES = Sql(
    f"""
    SELECT cm.id FROM commissions cm JOIN seats s ON s.id = cm.seat_id {_COMPLETION_JOINS}
    WHERE cm.status = :frozen AND {ORDER_COMPLETED} <= :closed_before
      AND NOT EXISTS (SELECT 1 FROM disputes dp
                      WHERE dp.payment_id = cm.payment_id AND dp.status = 'open')
    ORDER BY cm.id
    LIMIT :limit
""",  # noqa: S608 - this module's own text, no outside input
    frozen=CommissionStatus.FROZEN,
    redeemed=VoucherStatus.REDEEMED,
    goods=Vertical.GOODS,
)


def refuse_closed_refund(tx: RawTx, seat_id: str, window: timedelta, now: datetime) -> None:
    """Refuse a refund people asked for once the seat's order is past its refund window (or
    a commission on it was paid, which only happens then): ``refund_window_closed``."""
    row = tx.one(SEAT_REFUND_STATE, {"seat_id": seat_id})
    if row is None:
        return
    completed_at, released = row
    closed = completed_at is not None and tx.read_instant(completed_at) + window <= now
    if closed or released:
        raise _window_closed(window)


def _window_closed(window: timedelta) -> Conflict:
    return Conflict(
        f"This order can no longer be refunded: its refund window of {window.days} days has "
        "closed.",
        code="refund_window_closed",
    )


RELEASE = Sql(
    """
    UPDATE commissions SET status = :released, released_at = :now, moves = moves + 1
    WHERE id = :id AND status = :frozen
    RETURNING sharer_id, currency, amount - clawed_back, moves, payment_id
""",
    released=CommissionStatus.RELEASED,
    frozen=CommissionStatus.FROZEN,
)


def release_due(tx: RawTx, now: datetime, window: timedelta, limit: int) -> int:
    """Release the frozen commissions whose orders' refund windows have closed to their
    earners' wallets (at most ``limit``); returns how many."""
    ids = [
        str(r[0])
        for r in tx.all(
            RELEASE_CANDIDATES, {"closed_before": tx.instant(now - window), "limit": limit}
        )
    ]
    released = 0
    for commission_id in ids:
        row = tx.one(RELEASE, {"id": commission_id, "now": tx.instant(now)})
        if row is None:
            continue  # clawed back or released meanwhile
        sharer_id, currency, left, move, payment_id = (
            str(row[0]),
            str(row[1]),
            int(row[2]),
            int(row[3]),
            str(row[4]),
        )
        credit_wallets(tx, [(sharer_id, currency, left)], now)
        post(
            tx,
            [
                _journal(
                    commission_id,
                    JournalKind.COMMISSION_PAID,
                    move,
                    currency,
                    left,
                    rules.commission_paid(sharer_id, left),
                    merchant_id=None,
                    user_id=sharer_id,
                    payment_id=payment_id,
                )
            ],
            now,
        )
        released += 1
    return released


# ---------------------------------------------------------------------------- refunds

_OF_SEAT = """
    SELECT id, merchant_id, sharer_id, currency, amount, clawed_back, rate_bps, status,
        payment_id
    FROM commissions WHERE seat_id = :seat_id ORDER BY kind
"""
COMMISSION_OF_SEAT = Sql(_OF_SEAT)
COMMISSION_OF_SEAT_LOCKED = Sql(_OF_SEAT + " FOR UPDATE")
CLAW_BACK = Sql(
    """
    UPDATE commissions SET clawed_back = :clawed_back, moves = moves + 1,
        status = CASE WHEN :clawed_back = amount THEN :clawed ELSE status END
    WHERE id = :id AND status = :frozen AND clawed_back < :clawed_back
    RETURNING moves
""",
    clawed=CommissionStatus.CLAWED_BACK,
    frozen=CommissionStatus.FROZEN,
)


@dataclass(frozen=True, slots=True)
class _Held:
    id: str
    merchant_id: str
    sharer_id: str
    currency: str
    amount: int
    clawed_back: int
    rate_bps: int
    status: str
    payment_id: str


def claw_back(
    tx: RawTx,
    seat_id: str,
    paid: int,
    refunded: int,
    now: datetime,
    *,
    window: timedelta | None,
) -> None:
    """A refund of a seat's payment (``refunded`` of ``paid`` back in all), or a dispute of it
    lost, shrinks each frozen commission of the seat (its sharer's, its pickup leader's) to the
    commission on what is still paid (less what disputes lost took), in the refund's or the
    decision's own transaction. With a ``window`` (a refund people asked for), a commission
    already released refuses the refund: its order's refund window closed."""
    held = tx.all_as(
        _Held, COMMISSION_OF_SEAT if tx.sqlite else COMMISSION_OF_SEAT_LOCKED, {"seat_id": seat_id}
    )
    if window is not None and any(h.status == CommissionStatus.RELEASED for h in held):
        raise _window_closed(window)
    # A refund made at the provider after a release: the merchant bears that commission.
    frozen = [h for h in held if h.status == CommissionStatus.FROZEN]
    if not frozen:
        return
    lost = {  # the seat's commissions are on its one earned payment: read once
        payment_id: int(tx.scalar(LOST_TO_DISPUTES, {"id": payment_id}) or 0)
        for payment_id in {h.payment_id for h in frozen}
    }
    for h in frozen:
        clawed_back = h.amount - kept_after_refunds(
            h.amount, paid, refunded + lost[h.payment_id], h.rate_bps
        )
        move = tx.scalar(CLAW_BACK, {"id": h.id, "clawed_back": clawed_back})
        if move is None:
            continue  # nothing more to take back
        taken = clawed_back - h.clawed_back
        post(
            tx,
            [
                _journal(
                    h.id,
                    JournalKind.COMMISSION_BACK,
                    int(move),
                    h.currency,
                    taken,
                    rules.commission_back(h.merchant_id, h.sharer_id, taken),
                    merchant_id=h.merchant_id,
                    user_id=h.sharer_id,
                    payment_id=h.payment_id,
                )
            ],
            now,
        )
