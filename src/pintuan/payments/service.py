"""Use cases of payments: paying for a seat, provider notifications, and the money owed back.

Money moves in two halves. Inside a transaction we only decide (a payment is authorised, a
capture is owed…); calls to the provider happen after commit, from the worker, and each one is
idempotent by ``<payment id>:<action>`` so a retry can never capture or refund twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pintuan.domain.payments import Checkout, EventKind, PaymentStyle, ProviderEvent
from pintuan.errors import NotFound
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.ledger import service as ledger
from pintuan.ledger.service import PaymentMoney
from pintuan.payments.models import Payment
from pintuan.teams import service as teams

payments = table_of(Payment)

MAX_BACKOFF = timedelta(hours=1)
FIRST_BACKOFF = timedelta(seconds=5)
ACTION_RESULT = {"capture": "captured", "void": "voided", "refund": "refunded"}


def start_payment(
    session: Session,
    user_id: str,
    seat_id: str,
    provider: str,
    style: PaymentStyle,
    now: datetime,
) -> tuple[Payment, bool]:
    """A payment for the shopper's held seat; an unfinished one is reused. Returns the payment
    and whether it is new (a new one still needs its checkout from the provider)."""
    seat = teams.owned_seat(session, user_id, seat_id)
    teams.require_held(seat, now)
    open_payment = session.scalar(
        select(Payment).where(
            Payment.seat_id == seat_id,
            Payment.provider == provider,
            Payment.status == "requires_action",
            Payment.provider_ref.is_not(None),
        )
    )
    if open_payment is not None:
        return open_payment, False
    payment = Payment(
        id=new_id("pay"),
        seat_id=seat.id,
        team_id=seat.team_id,
        user_id=user_id,
        provider=provider,
        style=style.value,
        status="requires_action",
        amount=seat.price_amount,
        currency=seat.currency,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    return payment, True


def attach_checkout(session: Session, payment_id: str, checkout: Checkout) -> Payment:
    payment = get_payment(session, payment_id)
    payment.provider_ref = checkout.provider_ref
    payment.checkout_url = checkout.url
    session.flush()
    return payment


def get_payment(session: Session, payment_id: str) -> Payment:
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.", code="payment_not_found")
    return payment


def owned_payment(session: Session, user_id: str, payment_id: str) -> Payment:
    payment = session.get(Payment, payment_id)
    if payment is None or payment.user_id != user_id:
        raise NotFound(f"No payment {payment_id}.", code="payment_not_found")
    return payment


@dataclass(frozen=True, slots=True)
class Handled:
    duplicate: bool
    payment_id: str | None = None


STORE_EVENT = Sql("""
    INSERT INTO webhook_events (provider, event_id, type, body, received_at, processed_at)
    VALUES (:provider, :event_id, :type, :body, :now, :now)
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING event_id
""")


def handle_provider_event(
    tx: RawTx, provider: str, event: ProviderEvent, body: str, now: datetime
) -> Handled:
    """Store a verified notification once and apply it; repeats and late events change nothing
    they should not."""
    stored = tx.one(
        STORE_EVENT,
        {
            "provider": provider,
            "event_id": event.event_id,
            "type": event.raw_type,
            "body": body,
            "now": tx.instant(now),
        },
    )
    if stored is None:
        return Handled(duplicate=True)
    found = (
        tx.one(PAYMENT_BY_REF, {"provider": provider, "ref": event.provider_ref})
        if event.provider_ref
        else None
    )
    if found is None:
        return Handled(duplicate=False)
    payment_id, seat_id = found
    if event.kind in (EventKind.AUTHORIZED, EventKind.CHARGED):
        _money_arrived(tx, payment_id, seat_id, event.kind, now)
    elif event.kind is EventKind.FAILED:
        tx.execute(DECLINED, {"id": payment_id, "now": tx.instant(now)})
    return Handled(duplicate=False, payment_id=payment_id)


PAYMENT_BY_REF = Sql(
    "SELECT id, seat_id FROM payments WHERE provider = :provider AND provider_ref = :ref"
)
DECLINED = Sql("""
    UPDATE payments SET status = 'failed', updated_at = :now
    WHERE id = :id AND status = 'requires_action'
""")
# The status change is its own guard: of two deliveries of the same news racing each other,
# only one finds the payment still waiting.
MONEY_ARRIVED = Sql("""
    UPDATE payments SET status = :status, updated_at = :now
    WHERE id = :id AND status IN ('requires_action', 'failed')
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
""")


def _money_arrived(
    tx: RawTx, payment_id: str, seat_id: str | None, kind: EventKind, now: datetime
) -> None:
    if seat_id is not None:
        teams.lock_seat(tx, seat_id)  # deal and team first, as every transition takes them
    status = "authorized" if kind is EventKind.AUTHORIZED else "charged"
    changed = tx.one(MONEY_ARRIVED, {"id": payment_id, "status": status, "now": tx.instant(now)})
    if changed is None:
        return  # already recorded: a repeat of the same news
    payment = PaymentMoney(*changed)
    ledger.record_money_in(tx, payment, now)
    record_event(tx, f"payment.{status}", payment_id, seat_id=seat_id)
    if seat_id is None:
        return  # a wallet top-up: the money is in the wallet, nothing else waits on it
    outcome = teams.mark_seat_paid(tx, seat_id, now)
    if not outcome.took_place:
        ledger.owe_back_for_payments(tx, [payment_id], now)
    if outcome.team_succeeded:
        schedule_captures(tx, outcome.team_id, now)


SCHEDULE_CAPTURES = Sql("""
    UPDATE payments SET pending_action = 'capture', next_attempt_at = :now, updated_at = :now
    WHERE team_id = :team_id AND status = 'authorized' AND pending_action IS NULL
      AND seat_id IN (SELECT id FROM seats WHERE team_id = :team_id AND status = 'confirmed')
""")


def schedule_captures(tx: RawTx, team_id: str, now: datetime) -> None:
    """A team succeeded: capture every hold of its confirmed seats; charges earn at once."""
    tx.execute(SCHEDULE_CAPTURES, {"team_id": team_id, "now": tx.instant(now)})
    ledger.earn_team_charges(tx, team_id, now)


@dataclass(frozen=True, slots=True)
class DueAction:
    payment_id: str
    provider: str
    action: str
    provider_ref: str
    amount: int
    attempts: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.payment_id}:{self.action}"


def claim_due_actions(
    session: Session, now: datetime, limit: int, lease: timedelta
) -> list[DueAction]:
    """Take up to ``limit`` owed provider calls, leasing them so no other worker takes them."""
    query = (
        select(
            payments.c.id,
            payments.c.provider,
            payments.c.pending_action,
            payments.c.provider_ref,
            payments.c.amount,
            payments.c.attempts,
        )
        .where(payments.c.pending_action.is_not(None), payments.c.next_attempt_at <= now)
        .order_by(payments.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(query).all()
    if rows:
        session.execute(
            update(payments)
            .where(payments.c.id.in_([r.id for r in rows]))
            .values(next_attempt_at=now + lease)
        )
    return [
        DueAction(r.id, r.provider, r.pending_action, r.provider_ref or "", r.amount, r.attempts)
        for r in rows
    ]


def finish_action(session: Session, action: DueAction, now: datetime) -> bool:
    """The provider did it: record the final status (once)."""
    done = session.execute(
        update(payments)
        .where(payments.c.id == action.payment_id, payments.c.pending_action == action.action)
        .values(
            status=ACTION_RESULT[action.action],
            pending_action=None,
            next_attempt_at=None,
            last_error=None,
            updated_at=now,
        )
        .returning(payments.c.user_id, payments.c.amount, payments.c.currency)
    ).first()
    if done is None:
        return False
    ledger.record_provider_result(raw_tx(session), action.payment_id, action.action, now)
    if action.action in ("void", "refund"):
        record_event(
            raw_tx(session),
            "payment.returned",
            action.payment_id,
            user_id=done.user_id,
            amount=done.amount,
            currency=done.currency,
        )
    return True


def retry_action_later(session: Session, action: DueAction, error: str, now: datetime) -> None:
    """The provider call failed: try again after an exponential backoff, capped at an hour."""
    delay = min(FIRST_BACKOFF * 2 ** min(action.attempts, 20), MAX_BACKOFF)
    session.execute(
        update(payments)
        .where(payments.c.id == action.payment_id, payments.c.pending_action == action.action)
        .values(
            attempts=payments.c.attempts + 1,
            next_attempt_at=now + delay,
            last_error=error[:500],
            updated_at=now,
        )
    )
