"""Use cases of payments: paying for a seat, provider notifications, and the worker's side of
the provider calls a payment is owed.

Money moves in two halves. Inside a transaction we only decide (a payment is authorised, a
capture is owed…; every such decision is made in payments/owed.py); calls to the provider happen
after commit, from the worker, and each one is idempotent by ``<payment id>:<action>`` so a
retry can never capture or refund twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pintuan.domain.payments import (
    WALLET,
    Capabilities,
    Checkout,
    EndReason,
    EventKind,
    PaymentPurpose,
    PaymentStatus,
    PaymentStyle,
    ProviderAction,
    ProviderEvent,
)
from pintuan.domain.teams import SeatStatus
from pintuan.errors import Conflict, InvalidInput, NotFound
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.metrics import WEBHOOK_LAG
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.kit.time import utc_now
from pintuan.ledger import service as ledger
from pintuan.ledger.service import PaymentMoney
from pintuan.payments import endings, owed, refunds
from pintuan.payments.models import Payment
from pintuan.teams import service as teams
from pintuan.teams.models import Seat

payments = table_of(Payment)
log = logging.getLogger("pintuan.payments")

MAX_BACKOFF = timedelta(hours=1)
FIRST_BACKOFF = timedelta(seconds=5)
ACTION_RESULT = {
    ProviderAction.CAPTURE: PaymentStatus.CAPTURED,
    ProviderAction.VOID: PaymentStatus.VOIDED,
    ProviderAction.REFUND: PaymentStatus.REFUNDED,
}


@dataclass(frozen=True, slots=True)
class StyleChoice:
    style: PaymentStyle
    note: str | None = None  # why the provider's usual style was not used


def choose_style(
    capabilities: Capabilities, default: PaymentStyle, hold_until: datetime, now: datetime
) -> StyleChoice:
    """Hold when the provider holds long enough for the team's window, else charge now and
    refund on failure; refuse when the provider can do neither."""
    if default is PaymentStyle.CHARGE:
        return StyleChoice(PaymentStyle.CHARGE)
    longest = capabilities.longest_hold
    if longest is None or hold_until - now <= longest:
        return StyleChoice(PaymentStyle.HOLD)
    days = longest.days or round(longest.total_seconds() / 86400, 1)
    if PaymentStyle.CHARGE in capabilities.styles:
        return StyleChoice(
            PaymentStyle.CHARGE,
            f"The team's window outlives this provider's {days}-day card hold, so the seat is "
            "charged now and refunded automatically if the team fails.",
        )
    raise Conflict(
        f"The team's window outlives this provider's {days}-day hold; pay another way.",
        code="hold_too_short",
    )


def check_checkout(capabilities: Capabilities, currency: str, kind: str | None) -> str:
    """The checkout kind to use; refuses a kind or currency the provider does not offer."""
    if capabilities.currencies is not None and currency not in capabilities.currencies:
        raise InvalidInput(
            f"This provider does not take {currency}; it takes "
            f"{', '.join(sorted(capabilities.currencies))}.",
            code="currency_not_supported",
            extra={"errors": [{"field": "provider", "message": f"does not take {currency}"}]},
        )
    if kind is None:
        return capabilities.checkout_kinds[0]
    if kind not in capabilities.checkout_kinds:
        raise InvalidInput(
            f"Checkout kind {kind!r} is not offered; choose one of "
            f"{', '.join(capabilities.checkout_kinds)}.",
            code="invalid_checkout_kind",
            extra={"errors": [{"field": "checkout_kind", "message": "not offered"}]},
        )
    return kind


@dataclass(frozen=True, slots=True)
class NewPayment:
    payment: Payment
    new: bool  # a new payment still needs its checkout from the provider
    expires_at: datetime | None  # when the seat's hold (or its time to pay again) runs out


def start_payment(
    session: Session,
    payer_id: str,
    seat: Seat,
    provider: str,
    checkout_kind: str,
    style: StyleChoice,
    refund_to: str,
    now: datetime,
) -> NewPayment:
    """A payment for a held seat, by its shopper or a friend, or for a confirmed seat its
    shopper is asked to pay again; an unfinished one of the same payer, provider and checkout
    kind is reused."""
    if not raw_tx(session).sqlite:  # (SQLite's one writer read it in this transaction)
        # Its row locked and read again in one statement, as applying a coupon locks it: the
        # price asked is the seat's as it stands now (teams.service.lock_seat_row).
        session.refresh(seat, with_for_update=True)
    teams.require_payable(seat, now)
    # Until when the checkout may be paid: the hold, or the time a shopper has to pay again.
    until = seat.repay_by if seat.status == SeatStatus.CONFIRMED.value else seat.hold_expires_at
    unfinished = session.scalars(
        select(Payment).where(
            Payment.seat_id == seat.id,
            Payment.user_id == payer_id,
            Payment.provider == provider,
            Payment.status == PaymentStatus.REQUIRES_ACTION.value,
            Payment.provider_ref.is_not(None),
            # Paying again: not a checkout opened while the seat was held, which died with it.
            *(
                [Payment.created_at > seat.paid_at]
                if seat.status == SeatStatus.CONFIRMED.value and seat.paid_at is not None
                else []
            ),
        )
    )
    for open_payment in unfinished:
        if json.loads(open_payment.next_action or "{}").get("checkout_kind") == checkout_kind:
            return NewPayment(open_payment, False, until)
    payment = _new_payment(
        payer_id, provider, style, seat.price_amount, seat.currency, refund_to, now
    )
    payment.seat_id, payment.team_id = seat.id, seat.team_id
    session.add(payment)
    session.flush()
    return NewPayment(payment, True, until)


def start_topup(
    session: Session, user_id: str, provider: str, amount: int, currency: str, now: datetime
) -> Payment:
    """A payment into the shopper's own wallet (always charged at once)."""
    payment = _new_payment(
        user_id, provider, StyleChoice(PaymentStyle.CHARGE), amount, currency, "original", now
    )
    payment.purpose = PaymentPurpose.TOPUP.value
    session.add(payment)
    session.flush()
    return payment


def _new_payment(
    payer_id: str,
    provider: str,
    style: StyleChoice,
    amount: int,
    currency: str,
    refund_to: str,
    now: datetime,
) -> Payment:
    return Payment(
        id=new_id("pay"),
        purpose=PaymentPurpose.SEAT.value,
        user_id=payer_id,
        provider=provider,
        style=style.style.value,
        style_note=style.note,
        status=PaymentStatus.REQUIRES_ACTION.value,
        amount=amount,
        currency=currency,
        refund_to=refund_to,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


def attach_checkout(
    session: Session, payment_id: str, checkout_kind: str, checkout: Checkout
) -> None:
    """The provider opened a checkout: keep what the payer does next, and owe a poll."""
    payment = get_payment(session, payment_id)
    payment.provider_ref = checkout.provider_ref
    action = {
        "checkout_kind": checkout_kind,
        "url": checkout.url,
        "qr_code": checkout.qr_code,
        "client_params": dict(checkout.client_params) if checkout.client_params else None,
    }
    payment.next_action = json.dumps({k: v for k, v in action.items() if v is not None})
    session.flush()
    owed.owe_poll(raw_tx(session), payment_id, utc_now())


def checkout_failed(session: Session, payment_id: str, now: datetime) -> None:
    """The provider could not open a checkout: the payment ends before it began."""
    payment = get_payment(session, payment_id)
    payment.status, payment.updated_at = PaymentStatus.FAILED.value, now


def pay_from_wallet(tx: RawTx, payer_id: str, seat_id: str, refund_to: str, now: datetime) -> str:
    """Pay a held seat from the payer's wallet, at once, in one transaction."""
    teams.lock_seat(tx, seat_id)  # deal and team before the wallet, as refunds take them
    teams.lock_seat_row(tx, seat_id)  # then the seat, whose price a coupon may change
    seat = tx.one_as(SeatToPay, SEAT_TO_PAY, {"id": seat_id})
    if seat is None or not teams.payable(
        seat.status,
        tx.read_optional_instant(seat.hold_expires_at),
        tx.read_optional_instant(seat.repay_by),
        now,
    ):
        raise Conflict(
            "This seat is no longer held; only a held seat, or one its shopper is asked to pay "
            "again, can be paid.",
            code="seat_not_payable",
        )
    payment_id = new_id("pay")
    tx.execute(
        INSERT_WALLET_PAYMENT,
        {
            "id": payment_id,
            "seat_id": seat_id,
            "team_id": seat.team_id,
            "user_id": payer_id,
            "amount": seat.price_amount,
            "currency": seat.currency,
            "refund_to": refund_to,
            "now": tx.instant(now),
        },
    )
    ledger.debit_wallet(tx, payer_id, seat.currency, seat.price_amount, now)
    _money_arrived(tx, payment_id, seat_id, EventKind.CHARGED, None, now)
    return payment_id


@dataclass(frozen=True, slots=True)
class SeatToPay:
    status: str
    team_id: str
    price_amount: int
    hold_expires_at: object  # as the driver stores it; read with ``tx.read_instant``
    repay_by: object
    currency: str


SEAT_TO_PAY = Sql("""
    SELECT status, team_id, price_amount, hold_expires_at, repay_by, currency
    FROM seats WHERE id = :id
""")


INSERT_WALLET_PAYMENT = Sql(
    """
    INSERT INTO payments (id, purpose, seat_id, team_id, user_id, provider, style, status,
        amount, currency, refund_to, attempts, created_at, updated_at)
    VALUES (:id, :seat, :seat_id, :team_id, :user_id, :wallet, :charge, :requires_action,
        :amount, :currency, :refund_to, 0, :now, :now)
""",
    seat=PaymentPurpose.SEAT,
    wallet=WALLET,
    charge=PaymentStyle.CHARGE,
    requires_action=PaymentStatus.REQUIRES_ACTION,
)


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


_STORE_EVENT = """
    INSERT INTO webhook_events (provider, event_id, type, body, received_at, processed_at)
    VALUES (:provider, :event_id, :type, :body, :now, :now)
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING event_id
"""
STORE_EVENT = Sql(_STORE_EVENT)


def handle_provider_event(
    tx: RawTx, provider: str, event: ProviderEvent, body: str, now: datetime
) -> Handled:
    """Store a verified notification once and apply it; repeats and late events change nothing
    they should not."""
    stored, found = _store_and_find(tx, provider, event, body, now)
    if not stored:
        return Handled(duplicate=True)
    if found is None:
        return Handled(duplicate=False)
    payment_id, seat_id = found.id, found.seat_id
    opened = tx.read_instant(found.created_at)
    WEBHOOK_LAG.labels(provider=provider).observe((now - opened).total_seconds())
    if event.notices:
        news_of = refunds.NoticePayment(payment_id, seat_id, provider, found.amount)
        refunds.take_notices(tx, news_of, event.notices, now)
    expected = (found.amount, found.currency)
    reported = (event.amount, event.currency or found.currency)
    money_news = event.kind in (EventKind.AUTHORIZED, EventKind.CHARGED)
    if money_news and event.amount is not None and reported != expected:
        # The provider took another sum than we asked: apply nothing, leave it for an operator
        # (reconciliation shows it as a difference).
        log.error(
            "provider reported a different amount",
            extra={"payment_id": payment_id, "reported": reported, "expected": expected},
        )
        if reported[1] == expected[1] and event.amount > 0:
            # Another sum in our currency: what was taken goes back at once (payments/endings).
            endings.return_other_amount(tx, payment_id, event.kind, event.amount, now)
        else:
            tx.execute(
                AMOUNT_MISMATCH,
                {
                    "id": payment_id,
                    "now": tx.instant(now),
                    "error": f"provider reported {reported}",
                },
            )
        return Handled(duplicate=False, payment_id=payment_id)
    if money_news:
        _money_arrived(tx, payment_id, seat_id, event.kind, event.capture_before, now)
    elif event.kind is EventKind.FAILED:
        tx.execute(DECLINED, {"id": payment_id, "now": tx.instant(now)})
    elif event.kind is EventKind.CANCELED:
        tx.execute(CHECKOUT_CANCELLED, {"id": payment_id, "now": tx.instant(now)})
        endings.provider_cancelled(tx, payment_id, now)
    elif event.kind is EventKind.REFUND_FAILED:
        endings.provider_refund_failed(tx, payment_id, now, event.raw_type)
    return Handled(duplicate=False, payment_id=payment_id)


def _store_and_find(
    tx: RawTx, provider: str, event: ProviderEvent, body: str, now: datetime
) -> tuple[bool, PaymentByRef | None]:
    """Store the notification unless it is a repeat (False then), and find its payment."""
    stored = {
        "provider": provider,
        "event_id": event.event_id,
        "type": event.raw_type,
        "body": body,
        "now": tx.instant(now),
    }
    if not tx.sqlite:
        row = tx.one(STORE_EVENT_FIND_PAYMENT, {**stored, "ref": event.provider_ref})
        if row is None:
            return False, None
        return True, None if row[0] is None else PaymentByRef(*row)
    if tx.one(STORE_EVENT, stored) is None:
        return False, None
    if not event.provider_ref:
        return True, None
    by_ref = {"provider": provider, "ref": event.provider_ref}
    return True, tx.one_as(PaymentByRef, PAYMENT_BY_REF, by_ref)


@dataclass(frozen=True, slots=True)
class PaymentByRef:
    id: str
    seat_id: str | None  # None for a wallet top-up
    amount: int
    currency: str
    created_at: object  # as the driver stores it; read with ``tx.read_instant``


PAYMENT_BY_REF = Sql("""
    SELECT id, seat_id, amount, currency, created_at FROM payments
    WHERE provider = :provider AND provider_ref = :ref
""")
# PostgreSQL stores the notification and finds its payment in one statement (SQLite cannot
# write inside a WITH): no row for a repeat, a row of NULLs when no payment of ours has the ref.
STORE_EVENT_FIND_PAYMENT = Sql(f"""
    WITH stored AS ({_STORE_EVENT})
    SELECT p.id, p.seat_id, p.amount, p.currency, p.created_at
    FROM stored LEFT JOIN payments p ON p.provider = :provider AND p.provider_ref = :ref
""")  # noqa: S608 (the statement above, no outside input)
AMOUNT_MISMATCH = Sql("UPDATE payments SET last_error = :error, updated_at = :now WHERE id = :id")
DECLINED = Sql(
    """
    UPDATE payments
    SET status = :failed, pending_action = NULL, next_attempt_at = NULL, updated_at = :now
    WHERE id = :id AND status = :requires_action
""",
    failed=PaymentStatus.FAILED,
    requires_action=PaymentStatus.REQUIRES_ACTION,
)
# A checkout the provider cancelled before its money came (its notices may arrive in any order):
# declined for good, so that the news of a hold on it, sent before the cancel and arriving
# after it, finds nothing to apply (below). A charge that arrives still counts: money taken is
# real, whatever came before.
CHECKOUT_CANCELLED = Sql(
    """
    UPDATE payments
    SET status = :failed, end_reason = :cancelled, pending_action = NULL, next_attempt_at = NULL,
        updated_at = :now
    WHERE id = :id AND status IN (:requires_action, :failed)
""",
    failed=PaymentStatus.FAILED,
    cancelled=EndReason.CANCELLED,
    requires_action=PaymentStatus.REQUIRES_ACTION,
)
# The status change is its own guard: of two deliveries of the same news racing each other,
# only one finds the payment still waiting. The news ends the polling, so its count and error
# go too: a capture, void or refund owed next starts from the first backoff. The provider's
# end of a hold, when the news gives one, is kept in the same write.
MONEY_ARRIVED = Sql(
    """
    UPDATE payments
    SET status = :status, pending_action = NULL, next_attempt_at = NULL, attempts = 0,
        last_error = NULL, end_reason = NULL, updated_at = :now,
        capture_before = COALESCE(:capture_before, capture_before)
    WHERE id = :id AND status IN (:requires_action, :failed)
      AND NOT (COALESCE(end_reason, '') = :cancelled AND :status = :authorized)
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
""",
    requires_action=PaymentStatus.REQUIRES_ACTION,
    failed=PaymentStatus.FAILED,
    cancelled=EndReason.CANCELLED,
    authorized=PaymentStatus.AUTHORIZED,
)


def _money_arrived(
    tx: RawTx,
    payment_id: str,
    seat_id: str | None,
    kind: EventKind,
    capture_before: datetime | None,
    now: datetime,
) -> None:
    status = PaymentStatus.AUTHORIZED if kind is EventKind.AUTHORIZED else PaymentStatus.CHARGED
    arrived = {
        "id": payment_id,
        "status": status.value,
        "now": tx.instant(now),
        "capture_before": None if capture_before is None else tx.instant(capture_before),
    }
    seat: teams.SeatAndTeam | None = None
    if seat_id is None:
        payment = tx.one_as(PaymentMoney, MONEY_ARRIVED, arrived)
    else:
        teams.lock_seat(tx, seat_id)  # deal and team first, as every transition takes them
        # The seat and its team are read under those locks in the same round trip.
        paid, seen = tx.together((MONEY_ARRIVED, arrived), (teams.SEAT_AND_TEAM, {"id": seat_id}))
        payment = paid.one_as(PaymentMoney)
        seat = teams.read_seat_and_team(tx, seen.one())
    if payment is None:
        # Already recorded (a repeat of the same news, which may still say when the hold ends),
        # or a hold on a checkout the provider has cancelled since (stale: nothing to apply).
        endings.note_capture_before(tx, payment_id, capture_before)
        return
    ledger.record_money_in(tx, payment, now)
    record_event(tx, f"payment.{status}", payment_id, seat_id=seat_id)
    if seat_id is None:
        return  # a wallet top-up: the money is in the wallet, nothing else waits on it
    # The seat and its team, read once under their locks, decide the rest.
    assert seat is not None
    if endings.take_repayment(tx, payment_id, seat_id, (seat.status, seat.repay_by), status, now):
        return  # a confirmed seat paid again, as an operator asked its shopper
    # A team that succeeds owes its captures in the same step (teams/service.py).
    outcome = teams.mark_seat_paid(tx, seat_id, now, seen=seat)
    if not outcome.took_place:
        owed.owe_back_for_payments(tx, [payment_id], now)


@dataclass(frozen=True, slots=True)
class DueAction:
    payment_id: str
    provider: str
    action: ProviderAction
    provider_ref: str
    amount: int
    attempts: int  # taken before this one
    dated: bool = False  # a failure set its deadline already (endings.give_up_if_spent)

    @property
    def idempotency_key(self) -> str:
        return f"{self.payment_id}:{self.action}"


def claim_due_actions(
    session: Session, now: datetime, limit: int, lease: timedelta, limits: endings.CallLimits
) -> list[DueAction]:
    """Take up to ``limit`` owed provider calls to make, leasing them so no other worker takes
    them. Each is counted as an attempt now, before its call (``DueAction.attempts`` is the
    count before it): a worker that stops during a call leaves it counted, and its lease's end
    hands it on. One whose every attempt was taken so is given up here, never called again."""
    query = (
        select(
            payments.c.id,
            payments.c.provider,
            payments.c.pending_action,
            payments.c.provider_ref,
            # What the provider took, when it was not what we asked, is what goes back.
            func.coalesce(payments.c.taken_amount, payments.c.amount).label("amount"),
            payments.c.attempts,
            payments.c.call_deadline.is_not(None).label("dated"),
        )
        .where(payments.c.pending_action.is_not(None), payments.c.next_attempt_at <= now)
        .order_by(payments.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = [
        DueAction(
            r.id,
            r.provider,
            ProviderAction(r.pending_action),
            r.provider_ref or "",
            r.amount,
            r.attempts,
            bool(r.dated),
        )
        for r in session.execute(query).all()
    ]
    for action in due:
        if action.attempts >= limits.cap(action.action):
            endings.give_up_if_spent(
                raw_tx(session), action.payment_id, action.action, endings.LOST_CALL, now, limits
            )
    due = [a for a in due if a.attempts < limits.cap(a.action)]
    if due:
        session.execute(
            update(payments)
            .where(payments.c.id.in_([a.payment_id for a in due]))
            .values(next_attempt_at=now + lease, attempts=payments.c.attempts + 1)
        )
    return due


def finish_action(session: Session, action: DueAction, now: datetime) -> bool:
    """The provider did it: record the final status (once)."""
    done = session.execute(
        update(payments)
        .where(payments.c.id == action.payment_id, payments.c.pending_action == action.action.value)
        .values(
            status=ACTION_RESULT[action.action].value,
            pending_action=None,
            next_attempt_at=None,
            last_error=None,
            updated_at=now,
        )
        .returning(
            payments.c.user_id,
            func.coalesce(payments.c.taken_amount, payments.c.amount).label("amount"),
            payments.c.currency,
        )
    ).first()
    if done is None:
        return False
    endings.record_attempt(raw_tx(session), action.payment_id, action.action.value, "done", now)
    ledger.record_provider_result(raw_tx(session), action.payment_id, action.action, now)
    if action.action in (ProviderAction.VOID, ProviderAction.REFUND):
        record_event(
            raw_tx(session),
            "payment.returned",
            action.payment_id,
            user_id=done.user_id,
            amount=done.amount,
            currency=done.currency,
        )
    return True


def poll_again_later(
    session: Session, action: DueAction, now: datetime, detail: str = "no news yet"
) -> None:
    """The provider has no news of the checkout yet: ask again later (payments/endings.py
    decides first whether the polls have run out)."""
    retry_action_later(session, action, detail, now)


def retry_action_later(session: Session, action: DueAction, error: str, now: datetime) -> None:
    """The provider call failed: try again after an exponential backoff, capped at an hour
    (the call was counted when it was claimed)."""
    delay = min(FIRST_BACKOFF * 2 ** min(action.attempts, 20), MAX_BACKOFF)
    session.execute(
        update(payments)
        .where(payments.c.id == action.payment_id, payments.c.pending_action == action.action.value)
        .values(
            next_attempt_at=now + delay,
            last_error=error[:500],
            updated_at=now,
        )
    )
