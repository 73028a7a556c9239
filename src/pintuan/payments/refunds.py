"""Where refunds after a team's success and disputes are decided.

A confirmed seat's payment may be refunded, by the merchant's staff or an operator, several
times and in parts, never beyond what was paid and not yet refunded or disputed. The guard is
one conditional write, ``payments.refunded_amount + amount <= what is left``, so concurrent
refunds of one seat can never take back more than was paid. Each refund is its own row with its
own journals (``<refund id>:<kind>``); the money comes back from the merchant's payable and the
platform's fee as ``domain.refunds.split_refund`` says.

A refund to the original method is owed at the provider: the worker makes the call after commit
(:func:`claim_due_refunds`, :func:`finish_refund`, :func:`retry_refund_later`), idempotent by
the refund's id. Every such refund ends, as every payment's owed call does (payments/endings.py):
one the provider refuses for good, or whose calls run out of attempts
(``PINTUAN_PAYMENT_MAX_ATTEMPTS``, each counted when the worker takes the call) or of time from
its first failure (``PINTUAN_PAYMENT_CALL_DEADLINE_HOURS``), is asked no more and waits in the
operators' queue, still ``pending`` (the payer is still owed it), with a notification to every
operator. There an operator retries it, or pays it into the payer's wallet, but only on the
provider's word that it was not made (:func:`act_on_queued_refund`): an unanswered call may
have made it.

A refund to the wallet (a wallet payment, or a payer who chose the wallet) is done at once. A
provider's news of refunds (ours confirmed, or one made in its dashboard) and of
disputes arrives with a verified notification (:func:`take_notices`).

Everything here runs on the raw path: it changes what money is owed and writes journals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.payments import WALLET, PaymentStatus, RefundTo
from pintuan.domain.refunds import (
    DisputeStatus,
    MoneyNotice,
    NoticeKind,
    RefundOutcome,
    RefundQueueAction,
    RefundSource,
    RefundStatus,
    split_refund,
)
from pintuan.domain.teams import SeatStatus
from pintuan.domain.vouchers import VoucherStatus
from pintuan.errors import AppError, Conflict, InvalidInput, NotFound
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger.commissions import claw_back, refuse_closed_refund
from pintuan.ledger.refunds import (
    DisputeMoney,
    RefundMoney,
    record_dispute_decided,
    record_dispute_opened,
    record_refund_owed,
    record_refund_paid,
    record_refund_repaid,
    record_refund_returned,
    record_refund_to_wallet,
)
from pintuan.ledger.vouchers import VoucherMoney, release_for_refund, release_waiting
from pintuan.payments.endings import LOST_CALL, CallLimits, History, operator_ids

log = logging.getLogger("pintuan.payments.refunds")

FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(hours=1)
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class EarnedPayment:
    """A confirmed seat's payment whose money its merchant earned."""

    id: str
    seat_id: str
    user_id: str
    provider: str
    provider_ref: str | None
    amount: int
    currency: str
    refund_to: str
    merchant_id: str
    refunded_amount: int


_EARNED = """
    SELECT p.id, p.seat_id, p.user_id, p.provider, p.provider_ref, p.amount, p.currency,
           p.refund_to, d.merchant_id, p.refunded_amount
    FROM payments p
    JOIN seats s ON s.id = p.seat_id
    JOIN deals d ON d.id = s.deal_id
    WHERE {which} AND s.status = :confirmed AND p.pending_action IS NULL
      AND p.status IN (:captured, :charged)
      AND EXISTS (SELECT 1 FROM ledger_journals j
                  WHERE j.payment_id = p.id AND j.kind = :earn AND j.status = :posted)
"""
_EARNED_PARAMS = {
    "confirmed": SeatStatus.CONFIRMED,
    "captured": PaymentStatus.CAPTURED,
    "charged": PaymentStatus.CHARGED,
    "earn": JournalKind.EARN,
    "posted": JournalStatus.POSTED,
}
# A payment ``p`` whose money its merchant earned, written out for the worker's claims that
# refund deals' seats (vouchers at expiry, leaders' rewards, lottery losers).
PAYMENT_EARNED = """EXISTS (SELECT 1 FROM ledger_journals j
    WHERE j.payment_id = p.id AND j.kind = 'earn' AND j.status = 'posted')"""
EARNED_OF_SEAT = Sql(_EARNED.format(which="p.seat_id = :seat_id"), **_EARNED_PARAMS)
EARNED_PAYMENT = Sql(_EARNED.format(which="p.id = :id"), **_EARNED_PARAMS)
SEAT_MERCHANT = Sql("""
    SELECT d.merchant_id FROM seats s JOIN deals d ON d.id = s.deal_id WHERE s.id = :id
""")
# The fee the platform took when the payment was earned (an entry of 0 is never written).
FEE_EARNED = Sql(
    """
    SELECT COALESCE(-SUM(e.amount), 0) FROM ledger_entries e
    WHERE e.journal_id = :journal_id AND e.account = :fees
""",
    fees=rules.PLATFORM_FEES,
)
# The guard: refunds never take back more than was paid less what open or lost disputes took.
TAKE_BACK = Sql(
    """
    UPDATE payments SET refunded_amount = refunded_amount + :amount, updated_at = :now
    WHERE id = :id AND refunded_amount + :amount <= amount - COALESCE(
        (SELECT SUM(d.amount) FROM disputes d
         WHERE d.payment_id = :id AND d.status IN (:open, :lost)), 0)
    RETURNING refunded_amount
""",
    open=DisputeStatus.OPEN,
    lost=DisputeStatus.LOST,
)
LEFT_TO_REFUND = Sql(
    """
    SELECT p.amount - p.refunded_amount - COALESCE(
        (SELECT SUM(d.amount) FROM disputes d
         WHERE d.payment_id = p.id AND d.status IN (:open, :lost)), 0)
    FROM payments p WHERE p.id = :id
""",
    open=DisputeStatus.OPEN,
    lost=DisputeStatus.LOST,
)
INSERT_REFUND = Sql("""
    INSERT INTO refunds (id, payment_id, seat_id, merchant_id, provider, amount, currency,
        merchant_part, fee_part, reason, status, source, destination, requested_by, provider_ref,
        attempts, next_attempt_at, created_at, decided_at)
    VALUES (:id, :payment_id, :seat_id, :merchant_id, :provider, :amount, :currency,
        :merchant_part, :fee_part, :reason, :status, :source, :destination, :requested_by,
        :provider_ref, 0, :next_attempt_at, :now, :decided_at)
""")
_REFUND_MONEY = """
    SELECT r.id, r.payment_id, r.merchant_id, p.user_id, r.provider, p.provider_ref, r.amount,
           r.currency, r.merchant_part, r.fee_part
"""
REFUND_MONEY = Sql(
    _REFUND_MONEY
    + """
    FROM refunds r JOIN payments p ON p.id = r.payment_id
    WHERE r.id = :id
""",
)
_FINISH = """
    UPDATE refunds SET status = :succeeded, decided_at = :now, next_attempt_at = NULL,
        last_error = NULL, provider_ref = COALESCE(provider_ref, :provider_ref)
    WHERE id = :id AND status = :pending
      AND (last_outcome IS NULL OR last_outcome <> :returned) {called}
    RETURNING id
"""
# News that the refund reached the payer finishes it wherever it is, unless news that it came
# back was heard (a late or stale notice of its success changes nothing then); the worker's
# call only while the refund is still leased to it (that news may have queued it meanwhile).
FINISH_REFUND = Sql(
    _FINISH.format(called=""),
    succeeded=RefundStatus.SUCCEEDED,
    pending=RefundStatus.PENDING,
    returned=RefundOutcome.RETURNED,
)
FINISH_CALLED_REFUND = Sql(
    _FINISH.format(called="AND next_attempt_at IS NOT NULL"),
    succeeded=RefundStatus.SUCCEEDED,
    pending=RefundStatus.PENDING,
    returned=RefundOutcome.RETURNED,
)
NOTE_PROVIDER_REF = Sql("""
    UPDATE refunds SET provider_ref = :provider_ref
    WHERE id = :id AND provider_ref IS NULL AND NOT EXISTS (
        SELECT 1 FROM refunds other WHERE other.provider = refunds.provider
          AND other.provider_ref = :provider_ref)
""")


def refund_seat(
    tx: RawTx,
    seat_id: str,
    amount: int,
    reason: str,
    requested_by: str | None,
    now: datetime,
    *,
    source: RefundSource = RefundSource.REQUEST,
    provider_ref: str | None = None,
    window: timedelta | None = None,
) -> str:
    """Refund ``amount`` (minor units of the payment's currency) of a confirmed seat's payment,
    up to what is left of it; returns the refund's id. The money comes back from the merchant's
    payable and the platform's fee in proportion (``domain.refunds``), journalled now; a refund
    to the wallet is done at once, one to the original method is owed at the provider (or, from
    ``RefundSource.PROVIDER``, already made there as ``provider_ref``). Callers check who may
    refund; this decides whether the money allows it, and, given the refund ``window`` of a
    refund people asked for, whether the order is still within it (``refund_window_closed``).
    A refund shrinks the seat's frozen referral commission (``ledger.commissions``)."""
    if amount <= 0:
        raise InvalidInput(
            "A refund is a positive amount in minor units.",
            extra={"errors": [{"field": "amount", "message": "must be at least 1"}]},
        )
    reason = " ".join(reason.split())[:MAX_REASON]
    if not reason:
        raise InvalidInput(
            "Say why the seat is refunded.",
            extra={"errors": [{"field": "reason", "message": "must not be empty"}]},
        )
    payment = tx.one_as(EarnedPayment, EARNED_OF_SEAT, {"seat_id": seat_id})
    if payment is None:
        raise Conflict(
            "Only a confirmed seat whose payment its merchant has earned can be refunded; "
            "a seat whose team has not succeeded yet gets its money back on its own.",
            code="seat_not_refundable",
        )
    if window is not None:
        refuse_closed_refund(tx, seat_id, window, now)
    return _refund_payment(
        tx, payment, amount, reason, requested_by, now, source, provider_ref, window
    )


# Refunds decided here (not made at a provider), which go to the wallet when the payer chose it.
_ASKED_HERE = frozenset(
    {
        RefundSource.REQUEST,
        RefundSource.REWARD,
        RefundSource.LOTTERY,
        RefundSource.PICKUP,
        RefundSource.LADDER,
    }
)


def _refund_payment(
    tx: RawTx,
    payment: EarnedPayment,
    amount: int,
    reason: str,
    requested_by: str | None,
    now: datetime,
    source: RefundSource,
    provider_ref: str | None,
    window: timedelta | None = None,
) -> str:
    total = tx.scalar(TAKE_BACK, {"id": payment.id, "amount": amount, "now": tx.instant(now)})
    if total is None:
        left = int(tx.scalar(LEFT_TO_REFUND, {"id": payment.id}) or 0)
        raise InvalidInput(
            f"At most {left} minor units of {payment.currency} are left to refund of this "
            f"seat's {payment.amount}.",
            code="refund_exceeds_paid",
            extra={"errors": [{"field": "amount", "message": f"at most {max(left, 0)}"}]},
        )
    fee = int(tx.scalar(FEE_EARNED, {"journal_id": f"{payment.id}:{JournalKind.EARN.value}"}))
    split = split_refund(payment.amount, fee, int(total) - amount, amount)
    # A refund made at the provider went back the way the money came, whatever the payer chose.
    to_wallet = source in _ASKED_HERE and (
        payment.provider == WALLET or payment.refund_to == RefundTo.WALLET
    )
    done_now = to_wallet or source is RefundSource.PROVIDER
    refund = RefundMoney(
        id=new_id("rfd"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        user_id=payment.user_id,
        provider=payment.provider,
        provider_ref=payment.provider_ref,
        amount=amount,
        currency=payment.currency,
        merchant_part=split.merchant,
        fee_part=split.fee,
    )
    at = tx.instant(now)
    tx.execute(
        INSERT_REFUND,
        {
            "id": refund.id,
            "payment_id": payment.id,
            "seat_id": payment.seat_id,
            "merchant_id": payment.merchant_id,
            "provider": payment.provider,
            "amount": amount,
            "currency": payment.currency,
            "merchant_part": split.merchant,
            "fee_part": split.fee,
            "reason": reason,
            "status": (RefundStatus.SUCCEEDED if done_now else RefundStatus.PENDING).value,
            "source": source.value,
            "destination": (RefundTo.WALLET if to_wallet else RefundTo.ORIGINAL).value,
            "requested_by": requested_by,
            "provider_ref": provider_ref,
            "next_attempt_at": None if done_now else at,
            "now": at,
            "decided_at": at if done_now else None,
        },
    )
    release_for_refund(tx, payment.seat_id, split.merchant, now)
    claw_back(tx, payment.seat_id, payment.amount, int(total), now, window=window)
    if source is not RefundSource.REWARD:
        _end_voucher_given_back(tx, payment, refund.id, now)
    record_refund_owed(tx, refund, now)
    if to_wallet:
        record_refund_to_wallet(tx, refund, now)
    elif source is RefundSource.PROVIDER:
        record_refund_paid(tx, refund, now)
    if done_now:
        _tell_payer(tx, refund)
    return refund.id


# A seat's unused voucher, once nothing is left to refund of its payment: the order was given
# back whole, so it is refunded with it and can no longer be redeemed.
END_VOUCHER_GIVEN_BACK = Sql(
    """
    UPDATE vouchers SET status = :refunded, ended_at = :now, updated_at = :now,
        refund_id = :refund_id
    WHERE seat_id = :seat_id AND status = :issued
    RETURNING id, user_id
""",
    refunded=VoucherStatus.REFUNDED,
    issued=VoucherStatus.ISSUED,
)


def _end_voucher_given_back(
    tx: RawTx, payment: EarnedPayment, refund_id: str, now: datetime
) -> None:
    """End the seat's unused voucher as refunded once its payment has nothing left to refund
    (this refund took the last of it); what of its money still waited is released. A leader's
    reward is not such a refund: the leader keeps the voucher of the seat it paid for."""
    if int(tx.scalar(LEFT_TO_REFUND, {"id": payment.id}) or 0) > 0:
        return
    ended = tx.one(
        END_VOUCHER_GIVEN_BACK,
        {"seat_id": payment.seat_id, "refund_id": refund_id, "now": tx.instant(now)},
    )
    if ended is None:
        return  # none, used, or ended already (a voucher's own refund or expiry is this one)
    voucher_id, user_id = str(ended[0]), str(ended[1])
    release_waiting(tx, VoucherMoney(voucher_id, payment.seat_id, payment.merchant_id), now)
    record_event(
        tx,
        f"voucher.{VoucherStatus.REFUNDED.value}",
        voucher_id,
        user_id=user_id,
        amount=payment.amount,  # its order's whole payment, given back
        currency=payment.currency,
        refund_id=refund_id,
    )


def _tell_payer(tx: RawTx, refund: RefundMoney, news: str = "payment.returned") -> None:
    """An outbox event that becomes a notification to the payer: the money went back to them
    (``payment.returned``), or came back from their bank (``refund.returned``)."""
    record_event(
        tx,
        news,
        refund.payment_id,
        user_id=refund.user_id,
        amount=refund.amount,
        currency=refund.currency,
        refund_id=refund.id,
    )


# ---------------------------------------------------------------------------- history

# A refund's history: each provider call and its outcome (``refund``), the provider's news of it
# (``news``), its giving up (``give_up``) and why, and each operator's act.
record_refund_attempt = History("refund_attempts", "refund_id").record


# ---------------------------------------------------------------------------- the worker's side


@dataclass(frozen=True, slots=True)
class DueRefund:
    id: str
    payment_id: str
    provider: str
    provider_ref: str  # the payment's at its provider
    amount: int
    currency: str
    attempts: int

    @property
    def idempotency_key(self) -> str:
        return self.id


# Due refunds are found through the partial index ix_refunds_due, whose predicate the status
# word repeats as written (see kit/rawsql.py).
DUE_REFUNDS = Sql("""
    SELECT r.id, r.payment_id, r.provider, COALESCE(p.provider_ref, '') AS provider_ref,
           r.amount, r.currency, r.attempts
    FROM refunds r JOIN payments p ON p.id = r.payment_id
    WHERE r.status = 'pending' AND r.next_attempt_at <= :now
    ORDER BY r.next_attempt_at LIMIT :limit
""")
DUE_REFUNDS_LOCKED = Sql(
    DUE_REFUNDS.text.replace("LIMIT :limit", "LIMIT :limit FOR UPDATE OF r SKIP LOCKED")
)
# Each claimed call is counted before it is made (see claim_due_refunds).
LEASE_REFUNDS = Sql(
    "UPDATE refunds SET next_attempt_at = :until, attempts = attempts + 1 WHERE id IN_LIST(:ids)"
)
REFUND_CALL = Sql("SELECT attempts, call_deadline FROM refunds WHERE id = :id")
# A failed call, tried again at ``next`` or (``next`` NULL) given up into the operators' queue;
# a refund the provider's news finished or queued while its call was under way stays so.
CALL_FAILED = Sql(
    """
    UPDATE refunds
    SET next_attempt_at = :next, last_error = :error,
        last_outcome = :outcome, call_deadline = :deadline,
        queued_at = CASE WHEN :queue THEN :now ELSE queued_at END,
        resolved_at = CASE WHEN :queue THEN NULL ELSE resolved_at END,
        resolution = CASE WHEN :queue THEN NULL ELSE resolution END,
        resolved_by = CASE WHEN :queue THEN NULL ELSE resolved_by END
    WHERE id = :id AND status = :pending AND (queued_at IS NULL OR resolved_at IS NOT NULL)
    RETURNING id
""",
    pending=RefundStatus.PENDING,
)


@dataclass(frozen=True, slots=True)
class _RefundCall:
    attempts: int
    call_deadline: object  # as the driver stores it; read with ``tx.read_optional_instant``


def claim_due_refunds(
    tx: RawTx, now: datetime, limit: int, lease: timedelta, limits: CallLimits
) -> list[DueRefund]:
    """Take up to ``limit`` refunds owed at their providers, leasing them so that no other
    worker takes them meanwhile. Each is counted as an attempt now, before its call
    (``DueRefund.attempts`` is the count before it): a worker that stops during a call leaves
    it counted, and its lease's end hands it on. One whose every attempt was taken so goes to
    the operators' queue here, never called again."""
    sql = DUE_REFUNDS if tx.sqlite else DUE_REFUNDS_LOCKED
    due = tx.all_as(DueRefund, sql, {"now": tx.instant(now), "limit": limit})
    for refund in due:
        if refund.attempts >= limits.max_attempts:
            retry_refund_later(tx, refund, LOST_CALL, now, limits)
    due = [r for r in due if r.attempts < limits.max_attempts]
    if due:
        tx.execute(LEASE_REFUNDS, {"ids": [r.id for r in due], "until": tx.instant(now + lease)})
    return due


def finish_refund(
    tx: RawTx, refund_id: str, provider_ref: str | None, now: datetime, *, called: bool = False
) -> bool:
    """The provider made the refund (its news, or with ``called`` the worker's call that
    asked for it): record it (once) and tell the payer."""
    done = tx.one(
        FINISH_CALLED_REFUND if called else FINISH_REFUND,
        {"id": refund_id, "provider_ref": provider_ref, "now": tx.instant(now)},
    )
    if called:
        said = None if done is not None else "its news had come first"
        record_refund_attempt(tx, refund_id, "refund", "done", now, detail=said)
    elif done is not None:
        record_refund_attempt(tx, refund_id, "news", "done", now, detail=provider_ref)
    if done is None:
        return False
    refund = tx.one_as(RefundMoney, REFUND_MONEY, {"id": refund_id})
    assert refund is not None  # it just changed in this transaction
    record_refund_paid(tx, refund, now)
    _tell_payer(tx, refund)
    return True


def retry_refund_later(
    tx: RawTx,
    due: DueRefund,
    error: str,
    now: datetime,
    limits: CallLimits,
    *,
    refused: bool = False,
) -> bool:
    """The provider call failed: try again after an exponential backoff, capped at an hour,
    unless the provider refused it for good, or its attempts (``limits.max_attempts``) or its
    time (``limits.deadline_after`` from its first failure) ran out. Then it is asked no more
    and waits in the operators' queue, still owed to the payer, and every operator is told.
    Returns whether it went to the queue."""
    state = tx.one_as(_RefundCall, REFUND_CALL, {"id": due.id})
    assert state is not None  # refunds are never deleted
    deadline = tx.read_optional_instant(state.call_deadline) or now + limits.deadline_after
    # The call that failed was counted when it was claimed.
    why = _why_given_up(refused, now >= deadline, state.attempts >= limits.max_attempts)
    queue = why is not None
    delay = min(FIRST_BACKOFF * 2 ** min(due.attempts, 20), MAX_BACKOFF)
    outcome = (RefundOutcome.REFUSED if refused else RefundOutcome.FAILED).value
    failed = tx.one(
        CALL_FAILED,
        {
            "id": due.id,
            "next": None if queue else tx.instant(now + delay),
            "error": error[:500],
            "outcome": outcome,
            "deadline": tx.instant(deadline),
            "queue": queue,
            "now": tx.instant(now),
        },
    )
    record_refund_attempt(tx, due.id, "refund", outcome, now, detail=error)
    if failed is None:
        return False  # its news arrived while the call failed: made, or in the queue
    if why is not None:
        record_refund_attempt(tx, due.id, "give_up", why, now)
        _tell_operators(tx, due.id, due.payment_id, due.amount, due.currency)
    return queue


def _why_given_up(refused: bool, past_deadline: bool, last_attempt: bool) -> str | None:
    """Why a failed call's refund stops being asked for (its history's ``give_up`` line), or
    None while it is tried again."""
    if refused:
        return "refused"
    if past_deadline:
        return "deadline"
    if last_attempt:
        return "attempts"
    return None


def _tell_operators(tx: RawTx, refund_id: str, payment_id: str, amount: int, currency: str) -> None:
    """An outbox event that becomes a notification to every operator (after commit)."""
    record_event(
        tx,
        "refund.queued",
        refund_id,
        operator_ids=operator_ids(tx),
        payment_id=payment_id,
        amount=amount,
        currency=currency,
    )


# ---------------------------------------------------------------------------- the operators' side


class QueuedRefund(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def queued_at(self) -> object: ...
    @property
    def resolved_at(self) -> object: ...
    @property
    def last_outcome(self) -> str | None: ...


def waits_for_operators(refund: QueuedRefund) -> bool:
    """Whether the refund is in the operators' queue: queued, and no operator acted yet."""
    return refund.queued_at is not None and refund.resolved_at is None


def refund_actions(refund: QueuedRefund) -> list[str]:
    """The actions that fit a refund now: none unless it waits in the queue; the wallet only
    when the provider said it did not make the refund (an unanswered call may have)."""
    if refund.status != RefundStatus.PENDING or not waits_for_operators(refund):
        return []
    if refund.last_outcome == RefundOutcome.RETURNED:
        return [RefundQueueAction.WALLET.value]  # a retry would find the failed refund again
    actions = [RefundQueueAction.RETRY.value]
    if refund.last_outcome == RefundOutcome.REFUSED:
        actions.append(RefundQueueAction.WALLET.value)
    return actions


RETRY_QUEUED = Sql(
    """
    UPDATE refunds
    SET attempts = 0, call_deadline = NULL, next_attempt_at = :now, resolved_at = :now,
        resolution = :retry, resolved_by = :actor_id
    WHERE id = :id AND status = :pending AND queued_at IS NOT NULL AND resolved_at IS NULL
      AND (last_outcome IS NULL OR last_outcome <> :returned)
    RETURNING id
""",
    retry=RefundQueueAction.RETRY,
    pending=RefundStatus.PENDING,
    returned=RefundOutcome.RETURNED,
)
TO_WALLET = Sql(
    """
    UPDATE refunds
    SET status = :succeeded, destination = :wallet, decided_at = :now, resolved_at = :now,
        resolution = :wallet_resolution, resolved_by = :actor_id, next_attempt_at = NULL
    WHERE id = :id AND status = :pending AND queued_at IS NOT NULL AND resolved_at IS NULL
      AND last_outcome IN (:refused, :returned)
    RETURNING id
""",
    succeeded=RefundStatus.SUCCEEDED,
    wallet=RefundTo.WALLET,
    wallet_resolution=RefundQueueAction.WALLET,
    pending=RefundStatus.PENDING,
    refused=RefundOutcome.REFUSED,
    returned=RefundOutcome.RETURNED,
)
QUEUED_REFUND = Sql("""
    SELECT status, queued_at, resolved_at, last_outcome FROM refunds WHERE id = :id
""")


@dataclass(frozen=True, slots=True)
class _Queued:
    status: str
    queued_at: object
    resolved_at: object
    last_outcome: str | None


def act_on_queued_refund(
    tx: RawTx, refund_id: str, action: RefundQueueAction, actor_id: str, now: datetime
) -> None:
    """An operator's action on a refund in the queue, at most once: the first action takes it
    out of the queue (a conditional write), so two operators, or a repeat, cannot both act.
    ``retry`` owes the call again under the same key (the provider answers with what an
    unanswered call did); ``wallet`` pays the payer from the wallet at once, and only when the
    provider said it did not make the refund."""
    found = tx.one_as(_Queued, QUEUED_REFUND, {"id": refund_id})
    if found is None:
        raise NotFound(f"No refund {refund_id}.", code="refund_not_found")
    fitting = refund_actions(found)
    if not fitting:
        raise Conflict(
            "This refund is not waiting in the operators' queue.", code="refund_not_queued"
        )
    if action.value not in fitting and found.last_outcome == RefundOutcome.RETURNED:
        raise Conflict(
            "The provider says this refund did not reach the payer; asked again under its key "
            "it would only find the failed refund. Pay it into the payer's wallet.",
            code="refund_came_back",
        )
    if action.value not in fitting:
        raise Conflict(
            "The provider has not said that this refund failed: its answers were lost, so it "
            "may have been made. Retry it: under its key the provider answers with what it did.",
            code="refund_outcome_unknown",
        )
    sql = RETRY_QUEUED if action is RefundQueueAction.RETRY else TO_WALLET
    if tx.one(sql, {"id": refund_id, "now": tx.instant(now), "actor_id": actor_id}) is None:
        raise Conflict(
            "This refund is not waiting in the operators' queue.", code="refund_not_queued"
        )
    record_refund_attempt(
        tx, refund_id, f"operator_{action.value}", "accepted", now, actor_id=actor_id
    )
    if action is RefundQueueAction.WALLET:
        refund = tx.one_as(RefundMoney, REFUND_MONEY, {"id": refund_id})
        assert refund is not None  # it just changed in this transaction
        record_refund_to_wallet(tx, refund, now)
        _tell_payer(tx, refund)


# ---------------------------------------------------------------------------- provider news

REFUND_BY_ID = Sql("SELECT id FROM refunds WHERE id = :id AND payment_id = :payment_id")
REFUND_BY_REF = Sql("SELECT id FROM refunds WHERE provider = :provider AND provider_ref = :ref")
# What the payment may have given back at the provider in all: a refund of the whole payment
# when its team failed, and our refunds after success the way the money came (made, or owed
# and perhaps made). Not those paid into the payer's wallet: the provider never saw them, and
# its total would otherwise look smaller than ours and its own refund be lost. Nor those whose
# money came back (owed again): the provider takes them out of its total.
GIVEN_BACK = Sql(
    """
    SELECT CASE WHEN p.status = :refunded THEN p.amount ELSE 0 END
           + COALESCE((SELECT SUM(r.amount) FROM refunds r
                       WHERE r.payment_id = p.id AND r.destination = :original
                         AND r.status <> :failed
                         AND NOT (r.status = :pending AND COALESCE(r.last_outcome, '') = :returned)
                      ), 0)
    FROM payments p WHERE p.id = :id
""",
    refunded=PaymentStatus.REFUNDED,
    original=RefundTo.ORIGINAL,
    failed=RefundStatus.FAILED,
    pending=RefundStatus.PENDING,
    returned=RefundOutcome.RETURNED,
)
# Refunds still owed at the provider, made by a refund of the whole payment there: they are
# finished (and leave the operators' queue, where one may wait). Those whose money came back
# (owed again, waiting for the wallet) are paid by it too: they keep that outcome, and their
# journal is ``refund_repaid`` (``_finish_made_in_whole_refund``).
MADE_IN_WHOLE_REFUND = Sql(
    """
    UPDATE refunds
    SET status = :succeeded, decided_at = :now, next_attempt_at = NULL, last_error = NULL,
        resolved_at = CASE WHEN queued_at IS NOT NULL THEN COALESCE(resolved_at, :now) END
    WHERE payment_id = :payment_id AND status = :pending AND destination = :original
    RETURNING id, COALESCE(last_outcome, '') = :returned
""",
    succeeded=RefundStatus.SUCCEEDED,
    pending=RefundStatus.PENDING,
    original=RefundTo.ORIGINAL,
    returned=RefundOutcome.RETURNED,
)
PAYER = Sql("SELECT user_id, provider_ref, currency FROM payments WHERE id = :id")
REFUNDED_OF = Sql("SELECT refunded_amount FROM payments WHERE id = :id")
REFUNDED_OF_LOCKED = Sql(REFUNDED_OF.text + " FOR UPDATE")
OPEN_DISPUTE = Sql(
    """
    INSERT INTO disputes (id, payment_id, seat_id, merchant_id, provider, provider_ref, amount,
        currency, reason, status, opened_at)
    VALUES (:id, :payment_id, :seat_id, :merchant_id, :provider, :provider_ref, :amount,
        :currency, :reason, :open, :now)
    ON CONFLICT (provider, provider_ref) DO NOTHING
    RETURNING id
""",
    open=DisputeStatus.OPEN,
)
DECIDE_DISPUTE = Sql(
    """
    UPDATE disputes SET status = :status, decided_at = :now
    WHERE provider = :provider AND provider_ref = :provider_ref AND status = :open
    RETURNING id, payment_id, merchant_id, amount, currency
""",
    open=DisputeStatus.OPEN,
)


@dataclass(frozen=True, slots=True)
class NoticePayment:
    """The payment a notification is about, as the inbox found it."""

    id: str
    seat_id: str | None
    provider: str
    amount: int


@dataclass(frozen=True, slots=True)
class _Payer:
    user_id: str
    provider_ref: str | None
    currency: str


@dataclass(frozen=True, slots=True)
class _Decided:
    id: str
    payment_id: str
    merchant_id: str | None
    amount: int
    currency: str


def take_notices(
    tx: RawTx, payment: NoticePayment, notices: tuple[MoneyNotice, ...], now: datetime
) -> None:
    """Apply a verified notification's news of refunds and disputes of ``payment``, each
    once: a refund we asked for is confirmed, one made in the provider's dashboard is recorded
    as a refund after success (when the payment was earned), and a dispute is opened or
    decided, with its journals."""
    for notice in notices:
        if notice.request_no == f"{payment.id}:refund":
            # The whole payment's refund after its team failed: the worker records its
            # success, payments/endings.py its failure.
            continue
        if notice.kind is NoticeKind.REFUNDED:
            _refunded(tx, payment, notice, now)
        elif notice.kind is NoticeKind.REFUND_FAILED:
            _refund_failed(tx, payment, notice, now)
        elif notice.kind is NoticeKind.DISPUTE_OPENED:
            _open_dispute(tx, payment, notice, now)
        else:
            _open_dispute(tx, payment, notice, now)  # news of the opening may have been missed
            _decide_dispute(tx, payment, notice, notice.kind is NoticeKind.DISPUTE_WON, now)


def _refunded(tx: RawTx, payment: NoticePayment, notice: MoneyNotice, now: datetime) -> None:
    if notice.request_no:
        ours = tx.scalar(REFUND_BY_ID, {"id": notice.request_no, "payment_id": payment.id})
        if ours is not None:
            if not finish_refund(tx, str(ours), notice.ref, now):
                tx.execute(NOTE_PROVIDER_REF, {"id": str(ours), "provider_ref": notice.ref})
            return
    if tx.one(REFUND_BY_REF, {"provider": payment.provider, "ref": notice.ref}) is not None:
        return  # heard of already
    earned = tx.one_as(EarnedPayment, EARNED_PAYMENT, {"id": payment.id})
    amount, total = notice.amount, notice.refunded_total
    reason = notice.reason or "refunded at the provider"
    if amount is None and total is not None:
        # Only the total is told (Alipay): what of it no refund here counts.
        amount = total - int(tx.scalar(GIVEN_BACK, {"id": payment.id}) or 0)
    elif (
        earned is not None
        and amount is not None
        and total is not None
        and total >= payment.amount
        and amount > int(tx.scalar(LEFT_TO_REFUND, {"id": payment.id}) or 0)
    ):
        # The payment was refunded in full at the provider (in its dashboard) while refunds
        # were owed here, and this refund does not fit beside them. The provider makes no
        # refund of a payment it refunded in full (Stripe answers charge_already_refunded):
        # they were made in this one, and are finished so. Only the rest of it is its own.
        made_in = _finish_made_in_whole_refund(tx, payment.id, notice.ref, now)
        uncounted = total - int(tx.scalar(GIVEN_BACK, {"id": payment.id}) or 0)
        if uncounted <= 0:
            log.info(
                "a provider's refund of the whole payment that refunds here account for",
                extra={"payment_id": payment.id, "refund": notice.ref, "made_in": made_in},
            )
            return
        if uncounted < amount:
            reason = f"{reason} ({amount} there, {amount - uncounted} of it counted in ours)"
            amount = uncounted
    if earned is None or amount is None or amount <= 0:
        log.warning(
            "a provider's refund that no refund here accounts for",
            extra={"payment_id": payment.id, "refund": notice.ref, "amount": amount},
        )
        return  # reconciliation shows it
    try:
        _refund_payment(
            tx,
            earned,
            amount,
            reason,
            None,
            now,
            RefundSource.PROVIDER,
            notice.ref,
        )
    except AppError as exc:
        log.error(
            "a provider's refund exceeds what is left of the payment",
            extra={"payment_id": payment.id, "refund": notice.ref, "error": exc.detail},
        )


def _finish_made_in_whole_refund(
    tx: RawTx, payment_id: str, provider_ref: str, now: datetime
) -> list[str]:
    """Finish the payment's refunds still owed at its provider, made in its refund of the whole
    payment ``provider_ref`` there, each with its journal and its payer told; their ids."""
    made = [
        (str(row[0]), bool(row[1]))
        for row in tx.all(MADE_IN_WHOLE_REFUND, {"payment_id": payment_id, "now": tx.instant(now)})
    ]
    for refund_id, came_back in made:
        detail = f"made in the provider's refund {provider_ref} of the whole payment"
        record_refund_attempt(tx, refund_id, "news", "done", now, detail=detail)
        refund = tx.one_as(RefundMoney, REFUND_MONEY, {"id": refund_id})
        assert refund is not None  # it just changed in this transaction
        (record_refund_repaid if came_back else record_refund_paid)(tx, refund, now)
        _tell_payer(tx, refund)
    return [refund_id for refund_id, _ in made]


# The provider's news that a refund did not reach the payer (a closed card) is news that it was
# made there and its money came back: the provider's statement shows both, and so does the
# ledger. The refund is owed to the payer again and waits for an operator; a retry under its
# key would only find the failed refund again, so the operator may only pay it into the wallet.
REFUND_CAME_BACK = Sql(
    """
    UPDATE refunds
    SET status = :pending, decided_at = NULL, next_attempt_at = NULL, last_outcome = :returned,
        last_error = :error, queued_at = :now, resolved_at = NULL, resolution = NULL,
        resolved_by = NULL
    WHERE id = :id AND status = :succeeded AND destination = :original
      AND COALESCE(last_outcome, '') <> :returned
    RETURNING id
""",
    pending=RefundStatus.PENDING,
    succeeded=RefundStatus.SUCCEEDED,
    returned=RefundOutcome.RETURNED,
    original=RefundTo.ORIGINAL,
)


def _refund_failed(tx: RawTx, payment: NoticePayment, notice: MoneyNotice, now: datetime) -> None:
    ours = None
    if notice.request_no:
        ours = tx.scalar(REFUND_BY_ID, {"id": notice.request_no, "payment_id": payment.id})
    if ours is None:
        ours = tx.scalar(REFUND_BY_REF, {"provider": payment.provider, "ref": notice.ref})
    if ours is None:
        log.warning(
            "a provider's failed refund that no refund here accounts for",
            extra={"payment_id": payment.id, "refund": notice.ref},
        )
        return  # one made in the dashboard that failed: nothing of it was recorded
    refund_id, at = str(ours), tx.instant(now)
    made = tx.one(FINISH_REFUND, {"id": refund_id, "provider_ref": notice.ref, "now": at})
    refund = tx.one_as(RefundMoney, REFUND_MONEY, {"id": refund_id})
    assert refund is not None  # found above
    if made is not None:
        record_refund_paid(tx, refund, now)  # its answer had not reached us yet
    else:
        tx.execute(NOTE_PROVIDER_REF, {"id": refund_id, "provider_ref": notice.ref})
    error = f"the provider says the refund {notice.ref} did not reach the payer"
    if notice.reason:
        error = f"{error}: {notice.reason}"[:500]
    if tx.one(REFUND_CAME_BACK, {"id": refund_id, "now": at, "error": error}) is None:
        return  # heard of already, or paid into the wallet meanwhile
    record_refund_attempt(tx, refund_id, "news", RefundOutcome.RETURNED.value, now, detail=error)
    record_refund_returned(tx, refund, now)
    _tell_operators(tx, refund.id, refund.payment_id, refund.amount, refund.currency)
    # The payer was told the money went back to them; it did not stay there.
    _tell_payer(tx, refund, "refund.returned")


def _open_dispute(tx: RawTx, payment: NoticePayment, notice: MoneyNotice, now: datetime) -> None:
    amount = notice.amount or payment.amount
    earned = tx.one_as(EarnedPayment, EARNED_PAYMENT, {"id": payment.id})
    payer = tx.one_as(_Payer, PAYER, {"id": payment.id})
    assert payer is not None  # the inbox found the payment
    dispute_id = tx.scalar(
        OPEN_DISPUTE,
        {
            "id": new_id("dsp"),
            "payment_id": payment.id,
            "seat_id": payment.seat_id,
            "merchant_id": earned.merchant_id if earned else None,
            "provider": payment.provider,
            "provider_ref": notice.ref,
            "amount": amount,
            "currency": payer.currency,
            "reason": (notice.reason or "")[:200] or None,
            "now": tx.instant(now),
        },
    )
    if dispute_id is None:
        return  # heard of already
    record_dispute_opened(
        tx,
        DisputeMoney(
            id=str(dispute_id),
            payment_id=payment.id,
            merchant_id=earned.merchant_id if earned else None,
            user_id=payer.user_id,
            provider=payment.provider,
            provider_ref=payer.provider_ref,
            amount=amount,
            currency=payer.currency,
        ),
        now,
    )
    record_event(tx, "dispute.opened", payment.id, dispute_id=str(dispute_id), amount=amount)


def _decide_dispute(
    tx: RawTx, payment: NoticePayment, notice: MoneyNotice, won: bool, now: datetime
) -> None:
    status = DisputeStatus.WON if won else DisputeStatus.LOST
    # The payment first, as a refund and a commission's freezing take it (PostgreSQL): what a
    # lost dispute takes from the commission is then counted with every refund and freeze.
    refunded = int(
        tx.scalar(REFUNDED_OF if tx.sqlite else REFUNDED_OF_LOCKED, {"id": payment.id}) or 0
    )
    decided = tx.one_as(
        _Decided,
        DECIDE_DISPUTE,
        {
            "status": status.value,
            "provider": payment.provider,
            "provider_ref": notice.ref,
            "now": tx.instant(now),
        },
    )
    if decided is None:
        return  # decided already
    payer = tx.one_as(_Payer, PAYER, {"id": payment.id})
    assert payer is not None
    record_dispute_decided(
        tx,
        DisputeMoney(
            id=decided.id,
            payment_id=decided.payment_id,
            merchant_id=decided.merchant_id,
            user_id=payer.user_id,
            provider=payment.provider,
            provider_ref=payer.provider_ref,
            amount=decided.amount,
            currency=decided.currency,
        ),
        won,
        now,
    )
    record_event(tx, f"dispute.{status.value}", payment.id, dispute_id=decided.id)
    if not won and payment.seat_id is not None:
        # What the bank kept is not paid on: the sharer's frozen commission shrinks as for a
        # refund (one released already stays paid; the merchant bears it, as for a refund
        # made in the provider's dashboard then).
        claw_back(tx, payment.seat_id, payment.amount, refunded, now, window=None)


def seat_merchant(tx: RawTx, seat_id: str) -> str:
    """The merchant whose deal the seat is in (to check who may refund it)."""
    merchant_id = tx.scalar(SEAT_MERCHANT, {"id": seat_id})
    if merchant_id is None:
        raise NotFound(f"No seat {seat_id}.", code="seat_not_found")
    return str(merchant_id)
