"""The audit of pickup points' commissions, recomputed from facts: each order handed over with
a commission has exactly one, for the deal's rate on what the seat's payment kept (rounded down
as every commission is), never more than it paid, to its point's leader from its merchant; no
other order has one; and no order both was handed over and refunded as unclaimed.

A commission is a ``commissions`` row of kind ``pickup``, frozen at the hand-over, whose money
the commissions' own audit follows (``audit/ledger.py``). One handed over before commissions
froze was paid into the wallet at once, by its journal ``<seat id>:pickup_commission``, and is
audited as that journal."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.commissions.models import Commission
from pintuan.deals.models import Deal
from pintuan.domain.commissions import CommissionKind, commission_on
from pintuan.domain.ledger import JournalKind, fee_for
from pintuan.domain.pickups import PickupStatus
from pintuan.ledger.models import Entry, Journal
from pintuan.payments.models import Payment
from pintuan.pickups.models import Pickup, PickupPoint

KIND = JournalKind.PICKUP_COMMISSION.value


def paid_at_hand_over(seat_id: str) -> str:
    """The journal of a commission paid at the hand-over, before commissions froze."""
    return f"{seat_id}:{KIND}"


def pickup_commissions_paid(session: Session) -> dict[tuple[str, str], int]:
    """What each merchant paid pickup points' leaders at the hand-over, before commissions
    froze, per (merchant, currency): it left the merchant's payable for the leaders' wallets.
    (Frozen ones leave it by their journals, as a sharer's do.)"""
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for merchant_id, currency, total in session.execute(
        select(Journal.merchant_id, Entry.currency, func.sum(Entry.amount))
        .join(Entry, Entry.journal_id == Journal.id)
        .where(
            Journal.kind == KIND,
            Journal.status == "posted",
            Entry.account.startswith("wallet:"),
        )
        .group_by(Journal.merchant_id, Entry.currency)
    ):
        paid[(str(merchant_id), currency)] += -int(total)
    return paid


def pickup_breaches(session: Session) -> list[str]:
    """Every way the pickups and their commissions disagree."""
    frozen = {
        str(seat_id): (int(amount), str(leader), str(merchant))
        for seat_id, amount, leader, merchant in session.execute(
            select(
                Commission.seat_id, Commission.amount, Commission.sharer_id, Commission.merchant_id
            ).where(Commission.kind == CommissionKind.PICKUP.value)
        )
    }
    journals = {
        str(jid): (int(amount), str(user_id), str(merchant_id))
        for jid, amount, user_id, merchant_id in session.execute(
            select(Journal.id, Journal.amount, Journal.user_id, Journal.merchant_id).where(
                Journal.kind == KIND
            )
        )
    }
    paid_of_seat = {
        str(seat_id): int(amount)
        for seat_id, amount in session.execute(
            select(Payment.seat_id, func.max(Payment.amount))
            .where(Payment.seat_id.is_not(None), Payment.status.in_(("captured", "charged")))
            .group_by(Payment.seat_id)
        )
    }
    found: list[str] = []
    for seat_id, status, base, amount, refund_id, rate, leader, merchant in session.execute(
        select(
            Pickup.seat_id,
            Pickup.status,
            Pickup.commission_base,
            Pickup.commission_amount,
            Pickup.refund_id,
            Deal.pickup_commission_bps,
            PickupPoint.leader_id,
            Pickup.merchant_id,
        )
        .join(Deal, Deal.id == Pickup.deal_id)
        .join(PickupPoint, PickupPoint.id == Pickup.pickup_point_id)
    ):
        paid = journals.pop(paid_at_hand_over(seat_id), None)
        commission = frozen.pop(seat_id, None)
        handed = status == PickupStatus.HANDED_OVER
        if handed and base > paid_of_seat.get(seat_id, 0):
            found.append(f"pickup {seat_id} earned on {base}, more than its seat paid")
        # Rounded down as every commission is; half up when it was paid at the hand-over.
        rounded = fee_for if paid is not None else commission_on
        expected = rounded(int(base), int(rate or 0)) if handed else 0
        if int(amount) != expected:
            found.append(f"pickup {seat_id} is {status} with commission {amount}, not {expected}")
        if paid is not None and commission is not None:
            found.append(f"pickup {seat_id} was paid at the hand-over and has a commission too")
        earned = commission or paid
        if expected and earned != (expected, leader, merchant):
            found.append(f"pickup {seat_id} earned {expected} but its commission is {earned}")
        if not expected and earned is not None:
            found.append(f"pickup {seat_id} is {status} and earned no commission: {earned}")
        if handed and refund_id is not None:
            found.append(f"pickup {seat_id} was handed over and refunded as unclaimed")
    for journal_id in journals:
        found.append(f"journal {journal_id} pays a commission on no pickup handed over")
    for seat_id in frozen:
        found.append(f"seat {seat_id} has a pickup commission but no pickup")
    return found
