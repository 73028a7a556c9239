"""Turn outbox events into the in-app notifications shoppers read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.errors import NotFound
from pintuan.events.models import OutboxEvent
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.time import utc_now
from pintuan.notifications.models import Notification
from pintuan.payments.models import Payment
from pintuan.teams.models import Seat

outbox = table_of(OutboxEvent)

# Which events a shopper hears about, as what, and who: the payload key holding the audience.
# A seat that ends with money in it (its team failed, or its shopper left) is told once, to its
# shopper and to each friend who paid for it, by ``_seat_endings``; the money's later return is
# then no news of its own (``_covered``).
NOTICES: dict[str, list[tuple[str, str]]] = {
    "team.succeeded": [("team_succeeded", "member_ids")],
    "payment.returned": [("money_returned", "user_id")],
    # Fulfilment of goods: the address taken, the parcel on its way, its receipt.
    "seat.address_chosen": [("address_chosen", "user_id")],
    "seat.shipped": [("seat_shipped", "user_id")],
    "seat.received": [("seat_received", "user_id")],
    # Every payment ends (payments/endings.py): the operators hear of each one queued for them.
    "payment.queued": [("payment_queued", "operator_ids")],
    "payment.amount_mismatch": [("amount_returned", "user_id")],
    # A confirmed seat whose money never came: an operator asks its shopper to pay again.
    "seat.pay_again": [("pay_again", "user_id")],
    # Vouchers: used at the counter, or given back unused (the money's return is its own news).
    "voucher.redeemed": [("voucher_redeemed", "user_id")],
    "voucher.expired": [("voucher_expired", "user_id")],
    # Pickup points: the goods are at the point, or they were not collected in time (the
    # money's return is its own news).
    "pickup.arrived": [("pickup_arrived", "user_id")],
    "pickup.unclaimed": [("pickup_unclaimed", "user_id")],
}
_AUDIENCES = frozenset(
    {audience for rules in NOTICES.values() for _, audience in rules}
    | {"member_ids", "refunded_ids"}
)
_TOOK_MONEY = ("authorized", "captured", "voided", "charged", "refunded")


def dispatch_outbox(session: Session, limit: int) -> int:
    """Deliver up to ``limit`` undelivered events, oldest first; returns how many."""
    rows = session.execute(
        select(outbox.c.id, outbox.c.type, outbox.c.subject_id, outbox.c.payload)
        .where(outbox.c.dispatched_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    now = utc_now()
    notices: list[dict[str, Any]] = []
    for row in rows:
        for user_id, kind, data in _notices_of(session, row.type, row.subject_id, row.payload):
            notices.append(
                {
                    "id": new_id("ntf"),
                    "user_id": user_id,
                    "kind": kind,
                    "data": {"subject_id": row.subject_id, **data},
                    "created_at": now,
                }
            )
    if notices:
        session.execute(insert(Notification), notices)
    session.execute(
        update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(dispatched_at=now)
    )
    return len(rows)


Notice = tuple[str, str, dict[str, Any]]  # to whom, what kind, what it shows


def _notices_of(
    session: Session, type_: str, subject_id: str, payload: dict[str, Any]
) -> list[Notice]:
    if type_ == "team.failed":
        members = {str(m) for m in payload.get("member_ids") or []}
        # By the team alone (a team has a handful of seats), sorted here: asked with the members
        # and in id order too, SQLite chose the index of the shoppers' seats by id, and read
        # every seat a shopper ever held for each event (4 ms an event for one with 20,000).
        seats = sorted(
            (str(seat_id), str(user_id))
            for seat_id, user_id in session.execute(
                select(Seat.id, Seat.user_id).where(Seat.team_id == subject_id)
            )
            if str(user_id) in members
        )
        # A shopper's last seat of the team is the one that ended with it.
        ending = {user_id: seat_id for seat_id, user_id in seats}
        return _seat_endings(session, ending, "team_failed", "friend_team_failed")
    if type_ == "seat.refunded":
        user_id = str(payload.get("user_id", ""))
        return _seat_endings(
            session, {user_id: subject_id}, "seat_refunded", "friend_seat_refunded"
        )
    if type_ == "payment.returned" and _covered(session, subject_id):
        return []
    found: list[Notice] = []
    for kind, audience in NOTICES.get(type_, []):
        recipients = payload.get(audience) or []
        for user_id in recipients if isinstance(recipients, list) else [recipients]:
            found.append((str(user_id), kind, _public(payload)))
    return found


def _seat_endings(
    session: Session, seat_of_user: dict[str, str], kind: str, friend_kind: str
) -> list[Notice]:
    """One notice to each shopper whose seat ended, saying where its money goes, and one to
    each friend who paid for such a seat."""
    payments = session.execute(
        select(
            Payment.seat_id,
            Payment.user_id,
            Payment.amount,
            Payment.currency,
            Payment.status,
            Payment.style,
            Payment.provider,
            Payment.refund_to,
        )
        .where(Payment.seat_id.in_(list(seat_of_user.values())), Payment.status.in_(_TOOK_MONEY))
        .order_by(Payment.id)
    ).all()
    people = set(seat_of_user) | {str(p.user_id) for p in payments}
    names = {
        str(user_id): str(name)
        for user_id, name in session.execute(
            select(User.id, User.display_name).where(User.id.in_(people))
        )
    }
    notices: list[Notice] = []
    for user_id, seat_id in seat_of_user.items():
        money = [p for p in payments if p.seat_id == seat_id]
        notices.append(
            (
                user_id,
                kind,
                {"money": [_money(p, by_you=p.user_id == user_id, names=names) for p in money]},
            )
        )
        for friend_id in dict.fromkeys(p.user_id for p in money if p.user_id != user_id):
            mine = [_money(p, by_you=True, names=names) for p in money if p.user_id == friend_id]
            notices.append(
                (friend_id, friend_kind, {"name": names.get(user_id, ""), "money": mine})
            )
    return notices


def _money(payment: Any, *, by_you: bool, names: dict[str, str]) -> dict[str, Any]:
    """A payment's money going back, as a notice shows it (the payer's name, never their id)."""
    if payment.style == "hold" and payment.status in ("authorized", "voided"):
        how = "hold"
    elif payment.provider == "wallet" or payment.refund_to == "wallet":
        how = "wallet"
    else:
        how = "charge"
    return {
        "amount": payment.amount,
        "currency": payment.currency,
        "how": how,
        "done": payment.status in ("voided", "refunded"),
        "by_you": by_you,
        "name": "" if by_you else names.get(payment.user_id, ""),
    }


def _covered(session: Session, payment_id: str) -> bool:
    """Whether a returned payment's money was already told of: it paid a seat that then ended
    (refunded), whose notice said where its money goes."""
    status = session.scalar(
        select(Seat.status)
        .join(Payment, Payment.seat_id == Seat.id)
        .where(Payment.id == payment_id)
    )
    return status == "refunded"


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    """What of an event a notification may show: never other people's ids."""
    return {k: v for k, v in payload.items() if k not in _AUDIENCES}


def list_notifications(
    session: Session, user_id: str, cursor_id: str | None, limit: int
) -> list[Notification]:
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(limit + 1)
    )
    if cursor_id is not None:
        query = query.where(Notification.id < cursor_id)
    return list(session.scalars(query))


def mark_read(session: Session, user_id: str, notification_id: str) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise NotFound(f"No notification {notification_id}.", code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = utc_now()
        session.flush()
    return notification


def mark_seen(session: Session, user_id: str, newest_id: str) -> int:
    """The shopper opened their notifications: every unread one up to ``newest_id`` (the
    newest shown) is read now; returns how many. One arriving meanwhile stays unread."""
    done = session.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
            Notification.id <= newest_id,
        )
        .values(read_at=utc_now())
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
