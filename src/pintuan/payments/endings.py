"""Where it is decided that a payment ends outside its usual course, and what the operators
may then do with it. Every payment ends:

* each owed provider call (capture, void, refund, poll) has a deadline and a capped number of
  attempts (``PINTUAN_PAYMENT_MAX_ATTEMPTS``), each counted when the worker takes the call, so
  that calls whose worker stopped before they answered count too. The deadline runs from the
  call's first failure (``PINTUAN_PAYMENT_CALL_DEADLINE_HOURS``), and for a capture it is never
  later than the provider's end of the hold (Stripe's ``capture_before``) less a safety margin
  (``PINTUAN_PAYMENT_CAPTURE_MARGIN_MINUTES``). Past either the worker stops asking and the
  payment gets its ``end_reason``;
* news that makes the usual course impossible ends it too: the provider cancelled a hold
  (``hold_expired``), took another sum than asked (``amount_mismatch``: what was taken goes
  back at once, void or refund, and is journalled), or a refund failed (``refund_failed``);
* what needs a person goes into the operators' queue (``queued_at``), with a notification to
  every operator; there an operator may ``retry`` the call, ``refund`` the payer in full,
  ``write_off`` a seat's missing money as a ledger journal (the platform pays the merchant), or
  ``charge_again``: ask the shopper of a confirmed seat whose money never came to pay for it
  again, within ``PINTUAN_PAYMENT_REPAY_HOURS`` (a notification, and "Pay again" on their
  orders). The money that comes is captured or earned at once; none by then puts the payment
  back in the queue as ``unpaid``, where it may be written off or charged again.
  A refund that failed is paid into the payer's wallet only on the provider's own word that it
  was not made (a refusal, a refund-failed notice, the money sent back): a refund whose answers
  were lost may have been made, and is retried under its key until the provider says which.

A payment with an ``end_reason`` and nothing owed is finished for the worker: a terminal status
(``expired``, ``voided``, ``refunded``, ``failed``), or waiting in the queue for an operator.
Everything here runs on the raw path, in the transaction of the news or the call's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from pintuan.config import Settings
from pintuan.domain.ledger import JournalKind
from pintuan.domain.payments import (
    EndReason,
    EventKind,
    MoneyBack,
    PaymentPurpose,
    PaymentStatus,
    ProviderAction,
    money_back,
)
from pintuan.domain.roles import Role
from pintuan.domain.teams import SeatStatus
from pintuan.errors import Conflict, NotFound
from pintuan.events.service import record_event
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger import endings as ledger_endings
from pintuan.ledger import service as ledger
from pintuan.ledger.service import PAYMENT_MONEY_COLUMNS, PaymentMoney, journal_id
from pintuan.payments import owed

# Polls have their own, smaller cap: about 3.5 hours of asking with backoff.
MAX_POLLS = 12


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How many times, and until when, an owed provider call is tried."""

    max_attempts: int
    deadline_after: timedelta  # from the call's first failure
    capture_margin: timedelta  # kept before the provider's end of a hold

    @classmethod
    def of(cls, settings: Settings) -> CallLimits:
        return cls(
            max_attempts=settings.payment_max_attempts,
            deadline_after=timedelta(hours=settings.payment_call_deadline_hours),
            capture_margin=timedelta(minutes=settings.payment_capture_margin_minutes),
        )

    def cap(self, action: ProviderAction) -> int:
        return (
            min(self.max_attempts, MAX_POLLS)
            if action is ProviderAction.POLL
            else (self.max_attempts)
        )

    def deadline(
        self, action: ProviderAction, first_failure: datetime, capture_before: datetime | None
    ) -> datetime:
        """When a call that first failed at ``first_failure`` is given up at the latest."""
        deadline = first_failure + self.deadline_after
        if capture_before is not None and action is ProviderAction.CAPTURE:
            return min(deadline, capture_before - self.capture_margin)
        if capture_before is not None and action is ProviderAction.VOID:
            # Past the end of the hold there is nothing left to void.
            return min(deadline, capture_before)
        return deadline


class QueueAction(StrEnum):
    """What an operator may do with a payment in the queue."""

    RETRY = "retry"  # owe the failed call again, with a fresh count of attempts
    REFUND = "refund"  # give the payer everything back: a hold voided, a charge to the wallet
    WRITE_OFF = "write_off"  # the platform pays the merchant for a seat whose money never came
    CHARGE_AGAIN = "charge_again"  # its shopper is asked to pay for the confirmed seat again


# Which actions fit each reason (a hold's capture or void, a refund that failed).
ACTIONS_FOR: dict[EndReason, tuple[QueueAction, ...]] = {
    EndReason.CAPTURE_FAILED: (
        QueueAction.RETRY,
        QueueAction.REFUND,
        QueueAction.WRITE_OFF,
        QueueAction.CHARGE_AGAIN,
    ),
    EndReason.HOLD_EXPIRED: (QueueAction.WRITE_OFF, QueueAction.REFUND, QueueAction.CHARGE_AGAIN),
    EndReason.VOID_FAILED: (QueueAction.RETRY,),
    EndReason.REFUND_FAILED: (QueueAction.RETRY, QueueAction.REFUND),
    EndReason.UNPAID: (QueueAction.WRITE_OFF, QueueAction.CHARGE_AGAIN),
}
# The actions that stand for a confirmed seat's money: only for a seat whose team succeeded.
FOR_CONFIRMED_SEATS = frozenset({QueueAction.WRITE_OFF, QueueAction.CHARGE_AGAIN})


# The outcomes of a refund call (or of the provider's news of one) that are the provider's own
# word that the refund was not made: then, and only then, the payer may be paid from elsewhere.
REFUND_NOT_MADE = frozenset({"refused", EndReason.REFUND_FAILED.value})


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """What besides its reason decides which actions fit a queued payment."""

    last_refund_outcome: str | None = None  # how its latest refund call came out, if any
    # Its seat's team succeeded and the seat keeps its money (not a lottery's loser, whose
    # money all goes back): only then does its merchant earn it.
    seat_confirmed: bool = False


def fits(action: QueueAction, reason: EndReason, facts: QueueFacts) -> bool:
    """Whether ``action`` fits a payment queued for ``reason``: a refund that failed goes to
    the wallet only on the provider's word (:data:`REFUND_NOT_MADE`); only a confirmed seat that
    keeps its money is written off or charged again."""
    if action not in ACTIONS_FOR.get(reason, ()):
        return False
    if action in FOR_CONFIRMED_SEATS and not facts.seat_confirmed:
        return False
    if action is QueueAction.REFUND and reason is EndReason.REFUND_FAILED:
        return facts.last_refund_outcome in REFUND_NOT_MADE
    return True


def fitting_actions(reason: str | None, facts: QueueFacts) -> list[str]:
    """The actions that fit a payment queued for ``reason`` (see :func:`fits`)."""
    if not reason:
        return []
    why = EndReason(reason)
    return [a.value for a in ACTIONS_FOR.get(why, ()) if fits(a, why, facts)]


# ---------------------------------------------------------------------------- history

_HISTORY_INSERT = """
    INSERT INTO {table} ({owner}, action, outcome, detail, actor_id, at)
    VALUES (:owner, :action, :outcome, :detail, :actor_id, :at)
"""


class History:
    """A history of provider calls, news and acts, one row a line, in ``table`` by
    ``owner`` (a payment's, a refund's): what the operators' queues show."""

    def __init__(self, table: str, owner: str) -> None:
        # Both names are written in the code that makes a history, never taken from input.
        self.insert = Sql(_HISTORY_INSERT.format(table=table, owner=owner))

    def record(
        self,
        tx: RawTx,
        owner_id: str,
        action: str,
        outcome: str,
        now: datetime,
        *,
        detail: str | None = None,
        actor_id: str | None = None,
    ) -> None:
        """One line: a call and its outcome, news, an ending, an operator's act."""
        tx.execute(
            self.insert,
            {
                "owner": owner_id,
                "action": action,
                "outcome": outcome,
                "detail": detail[:500] if detail else None,
                "actor_id": actor_id,
                "at": tx.instant(now),
            },
        )


# A payment's history: its calls (capture, void, refund, poll), its ending, operators' acts.
record_attempt = History("payment_attempts", "payment_id").record


# ---------------------------------------------------------------------------- the worker's side


@dataclass(frozen=True, slots=True)
class CallState:
    pending_action: str | None
    attempts: int
    call_deadline: object  # as the driver stores it; read with ``tx.read_instant``
    capture_before: object


# A call given up without being made again: every attempt it had was taken, and the last one's
# outcome never came (the worker making it stopped, and its lease ran out). It may have been made.
LOST_CALL = "no outcome recorded: the worker making its last attempt stopped before it answered"
CALL_STATE = Sql(
    "SELECT pending_action, attempts, call_deadline, capture_before FROM payments WHERE id = :id"
)
SET_DEADLINE = Sql("""
    UPDATE payments SET call_deadline = :deadline
    WHERE id = :id AND pending_action = :action AND call_deadline IS NULL
""")


def give_up_if_spent(
    tx: RawTx,
    payment_id: str,
    action: ProviderAction,
    error: str,
    now: datetime,
    limits: CallLimits,
    *,
    refused: bool = False,
) -> bool:
    """A call just failed, a poll found no news, or (claim_due_actions) every attempt was taken
    and the last one's outcome never came: record it, and end the payment when its attempts or
    its time ran out, or when the provider refused for good. False: try again."""
    state = tx.one_as(CallState, CALL_STATE, {"id": payment_id})
    if state is None or state.pending_action != action.value:
        return True  # moved on meanwhile (news arrived, an operator acted): nothing to retry
    outcome = "no_news" if action is ProviderAction.POLL else "refused" if refused else "failed"
    record_attempt(tx, payment_id, action.value, outcome, now, detail=error)
    capture_before = tx.read_optional_instant(state.capture_before)
    deadline = tx.read_optional_instant(state.call_deadline) or limits.deadline(
        action, now, capture_before
    )
    tx.execute(
        SET_DEADLINE,
        {"id": payment_id, "action": action.value, "deadline": tx.instant(deadline)},
    )
    # The call that failed was counted when it was claimed.
    if not refused and state.attempts < limits.cap(action) and now < deadline:
        return False
    _give_up(tx, payment_id, action, capture_before, now, error, refused)
    return True


_END = """
    UPDATE payments
    SET status = :status, pending_action = NULL, next_attempt_at = NULL, end_reason = :reason,
        {queue} last_error = :error, updated_at = :now
    WHERE id = :id AND pending_action = :action
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
"""
# Into the queue (again, after an operator's retry failed too: open once more).
END_QUEUED = Sql(_END.format(queue="queued_at = :now, resolved_at = NULL,"))
END = Sql(_END.format(queue=""))


def _give_up(
    tx: RawTx,
    payment_id: str,
    action: ProviderAction,
    capture_before: datetime | None,
    now: datetime,
    error: str,
    refused: bool,
) -> None:
    lapsed = capture_before is not None and now >= capture_before
    if action is ProviderAction.POLL:
        status, reason, queue = PaymentStatus.FAILED, EndReason.NO_NEWS, False
    elif action is ProviderAction.REFUND:
        status, reason, queue = PaymentStatus.CHARGED, EndReason.REFUND_FAILED, True
    elif lapsed and (refused or action is ProviderAction.VOID):
        # The provider has let the hold go: a void is no longer needed, a capture impossible.
        # Only the provider's refusal says so for a capture: a call that failed without an
        # answer (a timeout, a 500) may have captured under its key before the hold ended,
        # so that capture goes to the operators undecided, where a retry gets the answer.
        status, reason = PaymentStatus.EXPIRED, EndReason.HOLD_EXPIRED
        queue = action is ProviderAction.CAPTURE
    elif action is ProviderAction.CAPTURE:
        status, reason, queue = PaymentStatus.AUTHORIZED, EndReason.CAPTURE_FAILED, True
    else:
        status, reason, queue = PaymentStatus.AUTHORIZED, EndReason.VOID_FAILED, True
    ended = tx.one_as(
        PaymentMoney,
        END_QUEUED if queue else END,
        {
            "id": payment_id,
            "action": action.value,
            "status": status.value,
            "reason": reason.value,
            "error": error[:500],
            "now": tx.instant(now),
        },
    )
    if ended is None:
        return
    if status is PaymentStatus.EXPIRED:
        ledger_endings.record_hold_lapsed(tx, payment_id, now)
    record_attempt(tx, payment_id, "give_up", reason.value, now, detail=error)
    if queue:
        _tell_operators(tx, ended, reason)


OPERATORS = Sql(
    "SELECT id FROM users WHERE role = :operator AND disabled_at IS NULL ORDER BY id",
    operator=Role.OPERATOR,
)


def operator_ids(tx: RawTx) -> list[str]:
    """Every operator who may act on the queues, to be told of what waits there."""
    return [row[0] for row in tx.all(OPERATORS)]


def _tell_operators(tx: RawTx, payment: PaymentMoney, reason: EndReason) -> None:
    """An outbox event that becomes a notification to every operator (after commit)."""
    record_event(
        tx,
        "payment.queued",
        payment.id,
        operator_ids=operator_ids(tx),
        reason=reason.value,
        amount=payment.amount,
        currency=payment.currency,
    )


# ---------------------------------------------------------------------------- provider news


@dataclass(frozen=True, slots=True)
class PaymentState(PaymentMoney):
    pending_action: str | None
    seat_id: str | None


KEEP_CAPTURE_BEFORE = Sql("UPDATE payments SET capture_before = :at WHERE id = :id")


def note_capture_before(tx: RawTx, payment_id: str, capture_before: datetime | None) -> None:
    """Keep the provider's end of a hold, which the capture's deadline is measured from."""
    if capture_before is not None:
        tx.execute(KEEP_CAPTURE_BEFORE, {"id": payment_id, "at": tx.instant(capture_before)})


HOLD_CANCELLED = Sql(
    """
    UPDATE payments
    SET status = :expired, pending_action = NULL, next_attempt_at = NULL,
        end_reason = :hold_expired, queued_at = :queued_at, updated_at = :now
    WHERE id = :id AND status = :authorized
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
""",
    expired=PaymentStatus.EXPIRED,
    hold_expired=EndReason.HOLD_EXPIRED,
    authorized=PaymentStatus.AUTHORIZED,
)
VOIDED_BY_PROVIDER = Sql(
    """
    UPDATE payments
    SET status = :voided, pending_action = NULL, next_attempt_at = NULL, updated_at = :now
    WHERE id = :id AND status = :authorized AND pending_action = :void
    RETURNING id
""",
    voided=PaymentStatus.VOIDED,
    authorized=PaymentStatus.AUTHORIZED,
    void=ProviderAction.VOID,
)


def provider_cancelled(tx: RawTx, payment_id: str, now: datetime) -> None:
    """The provider cancelled a payment (Stripe's ``payment_intent.canceled``, the sandbox's
    ``payment.canceled``). A hold we were voiding is simply voided; any other hold has lapsed:
    ``hold_expired``, and to the operators when it kept its seat (paid or confirmed). A hold
    owed back whose void was given up (a seat's second payment) kept nothing: nothing is left
    to void, and it leaves the queue (``queued_at`` cleared: no operator resolved it). A
    checkout never paid is declined as before."""
    state = tx.one_as(Queued, QUEUED, {"id": payment_id})
    if state is None or state.status != PaymentStatus.AUTHORIZED:
        return
    if state.pending_action == ProviderAction.VOID:
        if tx.one(VOIDED_BY_PROVIDER, {"id": payment_id, "now": tx.instant(now)}) is not None:
            ledger.record_provider_result(tx, payment_id, ProviderAction.VOID, now)
            record_attempt(tx, payment_id, "void", "done", now, detail="cancelled by provider")
        return
    queue = state.pending_action == ProviderAction.CAPTURE or (
        state.end_reason != EndReason.VOID_FAILED and _seat_kept(tx, state.seat_id)
    )
    ended = tx.one_as(
        PaymentMoney,
        HOLD_CANCELLED,
        {"id": payment_id, "now": tx.instant(now), "queued_at": tx.instant(now) if queue else None},
    )
    if ended is None:
        return
    ledger_endings.record_hold_lapsed(tx, payment_id, now)
    record_attempt(tx, payment_id, "cancel", EndReason.HOLD_EXPIRED.value, now)
    if queue:
        _tell_operators(tx, ended, EndReason.HOLD_EXPIRED)


SEAT_STATUS = Sql("SELECT status FROM seats WHERE id = :id")
# A seat whose team succeeded and which keeps its money: a lottery's loser is refunded in full.
# The queue's listing (payments/queue_api.py) holds its seats to the same condition.
SEAT_KEEPS_MONEY = (
    f"status = '{SeatStatus.CONFIRMED.value}' AND (lottery_won IS NULL OR lottery_won)"
)
SEAT_EARNS = Sql(f"SELECT 1 FROM seats WHERE id = :id AND {SEAT_KEEPS_MONEY}")  # noqa: S608


def _seat_confirmed(tx: RawTx, seat_id: str | None) -> bool:
    return seat_id is not None and tx.one(SEAT_EARNS, {"id": seat_id}) is not None


def _seat_kept(tx: RawTx, seat_id: str | None) -> bool:
    """Whether the hold was what kept its seat (paid, or confirmed by its team's success)."""
    return seat_id is not None and tx.scalar(SEAT_STATUS, {"id": seat_id}) in (
        "paid",
        "confirmed",
    )


OTHER_AMOUNT = Sql(
    """
    UPDATE payments
    SET status = :status, taken_amount = :taken, end_reason = :amount_mismatch,
        pending_action = NULL, next_attempt_at = NULL, attempts = 0, updated_at = :now
    WHERE id = :id AND status IN (:requires_action, :failed)
    RETURNING id, user_id, provider, provider_ref, taken_amount AS amount, currency, status,
        purpose, refund_to
""",
    amount_mismatch=EndReason.AMOUNT_MISMATCH,
    requires_action=PaymentStatus.REQUIRES_ACTION,
    failed=PaymentStatus.FAILED,
)


def return_other_amount(
    tx: RawTx, payment_id: str, kind: EventKind, taken: int, now: datetime
) -> None:
    """The provider took ``taken``, not what we asked: the seat is not paid by it, and what
    was taken goes back to the payer at once (a hold voided, a charge refunded, through the
    provider it came by) with its journals, so nothing is kept that nobody agreed to."""
    status = PaymentStatus.AUTHORIZED if kind is EventKind.AUTHORIZED else PaymentStatus.CHARGED
    payment = tx.one_as(
        PaymentMoney,
        OTHER_AMOUNT,
        {"id": payment_id, "status": status.value, "taken": taken, "now": tx.instant(now)},
    )
    if payment is None:
        return  # already recorded (a repeat), or the payment moved on
    # Journalled as money taken for nothing (never a wallet's top-up), owed back at once.
    ledger.record_money_in(tx, replace(payment, purpose=PaymentPurpose.SEAT.value), now)
    back = money_back(payment.status, payment.provider, "original")
    if back is MoneyBack.VOID:
        owed.owe_provider_action(tx, ProviderAction.VOID, [payment_id], now)
    elif back is MoneyBack.REFUND:
        owed.owe_provider_action(tx, ProviderAction.REFUND, [payment_id], now)
        ledger.record_owed_back(tx, [payment], now)
    record_attempt(
        tx,
        payment_id,
        "news",
        EndReason.AMOUNT_MISMATCH.value,
        now,
        detail=f"the provider took {taken} {payment.currency}; it goes back by {back.value}",
    )
    record_event(
        tx,
        "payment.amount_mismatch",
        payment_id,
        user_id=payment.user_id,
        amount=taken,
        currency=payment.currency,
    )


REFUND_NOT_DONE = Sql(
    """
    UPDATE payments
    SET pending_action = NULL, next_attempt_at = NULL, end_reason = :refund_failed,
        queued_at = :now, updated_at = :now
    WHERE id = :id AND status = :charged AND pending_action = :refund
    RETURNING id, user_id, provider, provider_ref, COALESCE(taken_amount, amount) AS amount,
        currency, status, purpose, refund_to
""",
    refund_failed=EndReason.REFUND_FAILED,
    charged=PaymentStatus.CHARGED,
    refund=ProviderAction.REFUND,
)
REFUND_CAME_BACK = Sql(
    """
    UPDATE payments
    SET status = :charged, end_reason = :refund_failed, queued_at = :now, resolved_at = NULL,
        resolution = NULL, updated_at = :now
    WHERE id = :id AND status = :refunded AND provider <> :wallet
      AND (end_reason IS NULL OR end_reason <> :refund_failed)
    RETURNING id, user_id, provider, provider_ref, COALESCE(taken_amount, amount) AS amount,
        currency, status, purpose, refund_to
""",
    refund_failed=EndReason.REFUND_FAILED,
    charged=PaymentStatus.CHARGED,
    refunded=PaymentStatus.REFUNDED,
    wallet="wallet",
)


def provider_refund_failed(tx: RawTx, payment_id: str, now: datetime, detail: str) -> None:
    """The provider says a refund did not go through (Stripe's ``refund.failed``, WeChat Pay's
    ``ABNORMAL`` or ``CLOSED``). Owed still: stop asking and queue it. Already confirmed: the
    money came back to us, so the refund is reversed in the ledger and the payer is owed again."""
    params = {"id": payment_id, "now": tx.instant(now)}
    ended = tx.one_as(PaymentMoney, REFUND_NOT_DONE, params)
    if ended is None:
        ended = tx.one_as(PaymentMoney, REFUND_CAME_BACK, params)
        if ended is None:
            return
        ledger_endings.record_refund_reversed(tx, ended, now)
    record_attempt(tx, payment_id, "refund", EndReason.REFUND_FAILED.value, now, detail=detail)
    _tell_operators(tx, ended, EndReason.REFUND_FAILED)


# ---------------------------------------------------------------------------- the operators' side


@dataclass(frozen=True, slots=True)
class Queued(PaymentState):
    end_reason: str | None
    queued_at: object
    resolved_at: object
    capture_before: object


QUEUED = Sql(
    f"""
    SELECT {PAYMENT_MONEY_COLUMNS}, pending_action, seat_id, end_reason, queued_at, resolved_at,
        capture_before
    FROM payments WHERE id = :id
"""  # noqa: S608
)
# A write-off stays what resolved the seat, whatever is done with the payment after it.
RESOLVE = Sql("""
    UPDATE payments SET resolved_at = :now, updated_at = :now,
        resolution = CASE WHEN resolution = 'write_off' THEN resolution ELSE :resolution END
    WHERE id = :id AND queued_at IS NOT NULL AND resolved_at IS NULL AND pending_action IS NULL
    RETURNING id
""")
OWE_AGAIN = Sql("""
    UPDATE payments
    SET pending_action = :action, next_attempt_at = :now, attempts = 0, call_deadline = NULL,
        end_reason = NULL, last_error = NULL, updated_at = :now
    WHERE id = :id AND pending_action IS NULL AND status = :status
""")
REFUND_REVERSED = Sql("SELECT 1 FROM ledger_journals WHERE id = :id")
LAST_REFUND_OUTCOME = Sql(
    """
    SELECT outcome FROM payment_attempts WHERE payment_id = :id AND action = :refund
    ORDER BY id DESC LIMIT 1
""",
    refund=ProviderAction.REFUND,
)
LOCK_PAYMENT = Sql("SELECT id FROM payments WHERE id = :id FOR UPDATE")


def act_on_queued_payment(
    tx: RawTx,
    payment_id: str,
    action: QueueAction,
    actor_id: str,
    now: datetime,
    *,
    repay_within: timedelta,
) -> str:
    """An operator's action on a payment in the queue, at most once: the first action closes
    its place in the queue (a conditional write), so two operators, or a repeat, cannot both
    act. Returns the payment's reason. Refused: not queued, or an action that does not fit.
    ``repay_within``: how long a shopper asked to pay again (``charge_again``) has."""
    if not tx.sqlite:
        tx.execute(LOCK_PAYMENT, {"id": payment_id})
    found = tx.one_as(Queued, QUEUED, {"id": payment_id})
    if found is None:
        raise NotFound(f"No payment {payment_id}.", code="payment_not_found")
    if found.queued_at is None or found.resolved_at is not None or found.pending_action:
        raise Conflict(
            "This payment is not waiting in the operators' queue.", code="payment_not_queued"
        )
    reason = EndReason(found.end_reason) if found.end_reason else None
    if reason is None or action not in ACTIONS_FOR.get(reason, ()):
        fitting = ", ".join(a.value for a in ACTIONS_FOR.get(reason, ())) if reason else "none"
        raise Conflict(
            f"A payment queued for {reason} cannot be given {action.value}; fitting: {fitting}.",
            code="queue_action_not_available",
        )
    facts = QueueFacts(
        last_refund_outcome=tx.scalar(LAST_REFUND_OUTCOME, {"id": payment_id}),
        seat_confirmed=_seat_confirmed(tx, found.seat_id),
    )
    if action in FOR_CONFIRMED_SEATS and not facts.seat_confirmed:
        raise Conflict(
            "Only a seat whose team succeeded, and that did not lose its lottery, is written "
            "off or charged again: the merchant earns nothing for it.",
            code="queue_action_not_available",
        )
    if not fits(action, reason, facts):
        raise Conflict(
            "The provider has not said that this refund failed: its answers were lost, so it "
            "may have been made. Retry it: under its key the provider answers with what it did.",
            code="refund_outcome_unknown",
        )
    capture_before = tx.read_optional_instant(found.capture_before)
    # A capture may be retried past the hold's end: its key makes the provider answer with
    # what an earlier, unanswered call did, or refuse for good (then it ends as expired).
    void_call = reason is EndReason.VOID_FAILED
    if action is QueueAction.RETRY and void_call and capture_before and now >= capture_before:
        _hold_ended_in_the_queue(tx, payment_id, actor_id, now)
        return reason.value
    if action is QueueAction.RETRY and tx.scalar(
        REFUND_REVERSED, {"id": journal_id(payment_id, JournalKind.REFUND_REVERSED)}
    ):
        raise Conflict(
            "The provider returned this payment's refund; refund it to the payer's wallet.",
            code="queue_action_not_available",
        )
    if tx.one(RESOLVE, {"id": payment_id, "now": tx.instant(now), "resolution": action.value}) is (
        None
    ):
        raise Conflict(
            "This payment is not waiting in the operators' queue.", code="payment_not_queued"
        )
    record_attempt(tx, payment_id, f"operator_{action.value}", "accepted", now, actor_id=actor_id)
    if action is QueueAction.RETRY:
        call = (
            ProviderAction.REFUND
            if reason is EndReason.REFUND_FAILED
            else (
                ProviderAction.CAPTURE
                if reason is EndReason.CAPTURE_FAILED
                else ProviderAction.VOID
            )
        )
        tx.execute(
            OWE_AGAIN,
            {
                "id": payment_id,
                "action": call.value,
                "status": found.status,
                "now": tx.instant(now),
            },
        )
    elif action is QueueAction.REFUND:
        refund_payment_in_full(tx, found, now)
    elif action is QueueAction.CHARGE_AGAIN:
        assert found.seat_id is not None  # a confirmed seat's, checked above
        _ask_to_pay_again(tx, found, found.seat_id, now + repay_within)
        if found.status == PaymentStatus.AUTHORIZED:
            # The new payment takes its place; the hold that could not be captured is let go.
            _owe_void(tx, payment_id, now)
    else:
        ledger_endings.record_write_off(tx, found, now)
        if found.status == PaymentStatus.AUTHORIZED:
            # The platform pays the merchant; the shopper's hold is let go.
            _owe_void(tx, payment_id, now)
    return reason.value


# A void retried past the hold's end: resolved by that retry, and ended as the lapse it is.
HOLD_ENDED_IN_QUEUE = Sql(
    """
    UPDATE payments
    SET status = :expired, end_reason = :hold_expired, resolved_at = :now,
        resolution = :retry, updated_at = :now
    WHERE id = :id AND status = :authorized AND end_reason = :void_failed
      AND queued_at IS NOT NULL AND resolved_at IS NULL AND pending_action IS NULL
    RETURNING id
""",
    expired=PaymentStatus.EXPIRED,
    hold_expired=EndReason.HOLD_EXPIRED,
    retry=QueueAction.RETRY,
    authorized=PaymentStatus.AUTHORIZED,
    void_failed=EndReason.VOID_FAILED,
)


def _hold_ended_in_the_queue(tx: RawTx, payment_id: str, actor_id: str, now: datetime) -> None:
    """A void whose answers were lost, retried after the hold's end: nothing is left to void.
    The provider has let the hold go, under the lost call's key or at its end, and took no
    money either way; the payment ends as a lapsed hold (as a void the worker still owed past
    the hold's end does, see ``_give_up``) and leaves the queue. Refusing the retry instead
    left it there for good, since a void has no other action."""
    if tx.one(HOLD_ENDED_IN_QUEUE, {"id": payment_id, "now": tx.instant(now)}) is None:
        raise Conflict(
            "This payment is not waiting in the operators' queue.", code="payment_not_queued"
        )
    ledger_endings.record_hold_lapsed(tx, payment_id, now)
    outcome = EndReason.HOLD_EXPIRED.value
    record_attempt(tx, payment_id, "operator_retry", outcome, now, actor_id=actor_id)


# ---------------------------------------------------------------------------- charge again

ASK_TO_PAY_AGAIN = Sql(
    """
    UPDATE seats SET repay_by = :until
    WHERE id = :id AND status = :confirmed AND repay_by IS NULL
    RETURNING user_id, team_id, price_amount, currency
""",
    confirmed=SeatStatus.CONFIRMED,
)


@dataclass(frozen=True, slots=True)
class _Owing:
    user_id: str
    team_id: str
    price_amount: int
    currency: str


def _ask_to_pay_again(tx: RawTx, payment: Queued, seat_id: str, until: datetime) -> None:
    owing = tx.one_as(_Owing, ASK_TO_PAY_AGAIN, {"id": seat_id, "until": tx.instant(until)})
    if owing is None:
        raise Conflict(
            "This seat's shopper is already asked to pay for it again.",
            code="queue_action_not_available",
        )
    record_event(
        tx,
        "seat.pay_again",
        seat_id,
        user_id=owing.user_id,
        team_id=owing.team_id,
        payment_id=payment.id,
        amount=owing.price_amount,
        currency=owing.currency,
        repay_by=until.isoformat(),
    )


TAKE_REPAYMENT = Sql(
    """
    UPDATE seats SET repay_by = NULL
    WHERE id = :id AND status = :confirmed AND repay_by IS NOT NULL AND repay_by > :now
    RETURNING id
""",
    confirmed=SeatStatus.CONFIRMED,
)


def take_repayment(
    tx: RawTx,
    payment_id: str,
    seat_id: str,
    seen: tuple[str, datetime | None],
    status: PaymentStatus,
    now: datetime,
) -> bool:
    """Money arrived for a seat: when it is a confirmed seat its shopper was asked to pay again
    (and in time), it is that payment: a hold is captured, a charge earns at once. False: not
    such a seat (then the seat's usual course decides). The caller holds the seat's locks and
    read the seat's status and ``repay_by`` under them (``seen``): a seat not asked to pay
    again is told apart by them, with no statement."""
    seat_status, repay_by = seen
    if seat_status != SeatStatus.CONFIRMED.value or repay_by is None or repay_by <= now:
        return False
    if tx.one(TAKE_REPAYMENT, {"id": seat_id, "now": tx.instant(now)}) is None:
        return False
    if status is PaymentStatus.AUTHORIZED:
        owed.owe_provider_action(tx, ProviderAction.CAPTURE, [payment_id], now)
    else:
        ledger.earn_charge(tx, payment_id, now)
    return True


# Seats whose shopper did not pay again in time: their asking ends, their old payment goes back
# to the queue. The predicate repeats ``ix_seats_repay_by``'s word for word.
UNPAID_SEATS = Sql("""
    WITH picked AS MATERIALIZED (
        SELECT id FROM seats WHERE repay_by IS NOT NULL AND repay_by <= :now
        ORDER BY repay_by LIMIT :limit SKIP_LOCKED
    )
    UPDATE seats SET repay_by = NULL
    WHERE id IN (SELECT id FROM picked) AND repay_by IS NOT NULL AND repay_by <= :now
    RETURNING id
""")
BACK_TO_QUEUE = Sql(
    """
    UPDATE payments
    SET queued_at = :now, resolved_at = NULL, resolution = NULL, end_reason = :unpaid,
        updated_at = :now
    WHERE seat_id IN_LIST(:seat_ids) AND resolution = :charge_again
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
""",
    unpaid=EndReason.UNPAID,
    charge_again=QueueAction.CHARGE_AGAIN,
)


def requeue_unpaid_seats(tx: RawTx, now: datetime, limit: int) -> int:
    """Up to ``limit`` seats whose shopper was asked to pay again and did not by the time given:
    each one's payment goes back to the operators, ``unpaid``. Returns how many seats."""
    seat_ids = [row[0] for row in tx.all(UNPAID_SEATS, {"now": tx.instant(now), "limit": limit})]
    if not seat_ids:
        return 0
    for payment in tx.all_as(
        PaymentMoney, BACK_TO_QUEUE, {"seat_ids": seat_ids, "now": tx.instant(now)}
    ):
        record_attempt(tx, payment.id, "pay_again", EndReason.UNPAID.value, now)
        _tell_operators(tx, payment, EndReason.UNPAID)
    return len(seat_ids)


def _owe_void(tx: RawTx, payment_id: str, now: datetime) -> None:
    tx.execute(
        OWE_AGAIN,
        {
            "id": payment_id,
            "action": ProviderAction.VOID.value,
            "status": PaymentStatus.AUTHORIZED.value,
            "now": tx.instant(now),
        },
    )


BACK_TO_WALLET = Sql(
    """
    UPDATE payments SET status = :refunded, refund_to = :wallet, updated_at = :now
    WHERE id = :id AND status = :charged AND pending_action IS NULL
    RETURNING id, user_id, provider, provider_ref, COALESCE(taken_amount, amount) AS amount,
        currency, status, purpose, refund_to
""",
    refunded=PaymentStatus.REFUNDED,
    wallet="wallet",
    charged=PaymentStatus.CHARGED,
)


def refund_payment_in_full(tx: RawTx, payment: PaymentMoney, now: datetime) -> None:
    """Give a queued payment's payer everything back: a hold is voided at the provider; a
    charge whose refund the provider would not make goes into the payer's wallet at once; a
    hold that expired took nothing, so the payer has it all already. The one place the queue
    refunds, so that a fuller refund service can take its place."""
    if payment.status == PaymentStatus.EXPIRED:
        return
    if payment.status == PaymentStatus.AUTHORIZED:
        _owe_void(tx, payment.id, now)
        return
    returned: Sequence[PaymentMoney] = tx.all_as(
        PaymentMoney, BACK_TO_WALLET, {"id": payment.id, "now": tx.instant(now)}
    )
    if not returned:
        return
    ledger.record_returned_to_wallet(tx, returned, now)
    record_event(
        tx,
        "payment.returned",
        payment.id,
        user_id=payment.user_id,
        amount=returned[0].amount,
        currency=payment.currency,
        to="wallet",
    )
