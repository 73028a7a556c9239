"""Turn outbox events into the in-app notifications shoppers read."""

from __future__ import annotations

from collections.abc import Sequence
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
# shopper and to each friend who paid for it, by ``_SeatEndings``; the money's later return is
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
    # A refund after success that its provider refused, or that ran out of attempts or time.
    "refund.queued": [("refund_queued", "operator_ids")],
    # A refund after success whose money came back from the payer's bank (a closed card).
    "refund.returned": [("refund_sent_back", "user_id")],
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
    endings = _SeatEndings.of(session, rows)
    notices: list[dict[str, Any]] = []
    for row in rows:
        found = endings.notices(row.id)
        if found is None:
            found = _notices_of(session, row.type, row.subject_id, row.payload)
        for user_id, kind, data in found:
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
# Per event that ends seats: each shopper's seat that ended, and the two notices' kinds.
_Ending = tuple[dict[str, str], str, str]


class _SeatEndings:
    """The notices of a batch's events that end seats with money in them (a failed team, a
    seat refunded), read for the whole batch at once: the failed teams' seats in one query,
    their payments in another, the people's names in a third, instead of three for each event.

    A failed team's seats are read by the team alone and matched with its members here: asked
    with the members and in id order too, SQLite chose the index of a shopper's seats by id and
    read every seat the shopper ever held (4 ms an event for one with 20,000)."""

    def __init__(
        self,
        endings: dict[int, _Ending],
        payments: dict[str, list[Any]],
        names: dict[str, str],
    ) -> None:
        self._endings = endings
        self._payments = payments
        self._names = names

    @classmethod
    def of(cls, session: Session, rows: Sequence[Any]) -> _SeatEndings:
        failed = [r for r in rows if r.type == "team.failed"]
        seats_of: dict[str, list[tuple[str, str]]] = {}
        if failed:
            for seat_id, team_id, user_id in session.execute(
                select(Seat.id, Seat.team_id, Seat.user_id).where(
                    Seat.team_id.in_(sorted({r.subject_id for r in failed}))
                )
            ):
                seats_of.setdefault(str(team_id), []).append((str(seat_id), str(user_id)))
        endings: dict[int, _Ending] = {}
        for row in rows:
            if row.type == "team.failed":
                members = {str(m) for m in row.payload.get("member_ids") or []}
                seats = sorted(s for s in seats_of.get(row.subject_id, []) if s[1] in members)
                # A shopper's last seat of the team is the one that ended with it.
                ending = {user_id: seat_id for seat_id, user_id in seats}
                endings[row.id] = (ending, "team_failed", "friend_team_failed")
            elif row.type == "seat.refunded":
                user_id = str(row.payload.get("user_id", ""))
                endings[row.id] = (
                    {user_id: row.subject_id},
                    "seat_refunded",
                    "friend_seat_refunded",
                )
        seat_ids = sorted({seat for ending, _, _ in endings.values() for seat in ending.values()})
        payments: dict[str, list[Any]] = {}
        if seat_ids:
            for payment in session.execute(
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
                .where(Payment.seat_id.in_(seat_ids), Payment.status.in_(_TOOK_MONEY))
                .order_by(Payment.id)
            ):
                payments.setdefault(str(payment.seat_id), []).append(payment)
        people = {user for ending, _, _ in endings.values() for user in ending} | {
            str(p.user_id) for found in payments.values() for p in found
        }
        names = (
            {
                str(user_id): str(name)
                for user_id, name in session.execute(
                    select(User.id, User.display_name).where(User.id.in_(sorted(people)))
                )
            }
            if people
            else {}
        )
        return cls(endings, payments, names)

    def notices(self, row_id: int) -> list[Notice] | None:
        """One notice to each shopper whose seat the event ended, saying where its money goes,
        and one to each friend who paid for such a seat; None for an event of another kind."""
        found = self._endings.get(row_id)
        if found is None:
            return None
        seat_of_user, kind, friend_kind = found
        names = self._names
        notices: list[Notice] = []
        for user_id, seat_id in seat_of_user.items():
            money = self._payments.get(seat_id, [])
            notices.append(
                (
                    user_id,
                    kind,
                    {"money": [_money(p, by_you=p.user_id == user_id, names=names) for p in money]},
                )
            )
            for friend_id in dict.fromkeys(p.user_id for p in money if p.user_id != user_id):
                mine = [
                    _money(p, by_you=True, names=names) for p in money if p.user_id == friend_id
                ]
                notices.append(
                    (friend_id, friend_kind, {"name": names.get(user_id, ""), "money": mine})
                )
        return notices


def _notices_of(
    session: Session, type_: str, subject_id: str, payload: dict[str, Any]
) -> list[Notice]:
    if type_ == "payment.returned" and _covered(session, subject_id):
        return []
    found: list[Notice] = []
    for kind, audience in NOTICES.get(type_, []):
        recipients = payload.get(audience) or []
        for user_id in recipients if isinstance(recipients, list) else [recipients]:
            found.append((str(user_id), kind, _public(payload)))
    return found


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
