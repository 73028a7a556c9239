"""Where every provider call a payment is owed is decided: a capture, a void, a refund, a poll.

A payment's ``pending_action`` is the call its provider is owed next; the worker makes it after
commit (``claim_due_actions`` and ``finish_action`` in payments/service.py). It is set in one
place, :func:`owe_provider_action`, by these decisions:

* a checkout opened: should its notification never come, its provider is asked (poll);
* a team succeeded: each hold of its confirmed seats is captured; its charges earn at once;
* seats ended, or a payment came too late for its seat: the money goes back the way
  ``domain.payments.money_back`` says (a hold voided, a charge refunded, or the payer's wallet
  credited at once, with no provider call).

They run inside the engine's own transactions (the raw path) and record the matching journals
(through the ledger) and events in the same transaction. This module imports nothing of teams,
so that teams can owe money back wherever a seat ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pintuan.domain.payments import (
    MoneyBack,
    PaymentPurpose,
    PaymentStatus,
    ProviderAction,
    money_back,
)
from pintuan.domain.teams import SeatStatus
from pintuan.events.service import record_events
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger import service as ledger
from pintuan.ledger.service import PAYMENT_MONEY_COLUMNS, PaymentMoney

# A checkout whose notification has not come is asked about after this, then with backoff.
FIRST_POLL = timedelta(minutes=2)

# The state a payment is in when each call can be owed: a hold is captured or voided, a
# charge refunded, a checkout still waiting for its payer polled.
_OWED_FROM = {
    ProviderAction.CAPTURE: PaymentStatus.AUTHORIZED,
    ProviderAction.VOID: PaymentStatus.AUTHORIZED,
    ProviderAction.REFUND: PaymentStatus.CHARGED,
    ProviderAction.POLL: PaymentStatus.REQUIRES_ACTION,
}

# Guarded by the state it expects and by owing nothing yet, so a payment that moved on or
# already owes a call is left as it is; only the rows returned were changed. ``{which}`` says
# which payments: the ids given, or (``OWE_CAPTURES``) the holds of a team's confirmed seats.
# A call owed anew starts with its own attempts, deadline and error: one that failed before (a
# void given up, owed again when the team fails) is not spent by the earlier one's.
_OWE = """
    UPDATE payments SET pending_action = :action, next_attempt_at = :due, attempts = 0,
        call_deadline = NULL, last_error = NULL, updated_at = :now
    WHERE {which} AND status = :status AND pending_action IS NULL
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
"""
OWE = Sql(_OWE.format(which="id IN_LIST(:ids)"))


def owe_provider_action(
    tx: RawTx,
    action: ProviderAction,
    payment_ids: Sequence[str],
    now: datetime,
    *,
    due: datetime | None = None,
) -> list[PaymentMoney]:
    """Owe ``action`` to the provider of each payment, first tried at ``due`` (default: now).
    The one write of a payment's owed call; returns the payments it changed."""
    if not payment_ids:
        return []
    return tx.all_as(PaymentMoney, OWE, _owing(tx, action, now, due, ids=list(payment_ids)))


def _owing(
    tx: RawTx, action: ProviderAction, now: datetime, due: datetime | None, **which: object
) -> dict[str, object]:
    """The parameters of an ``_OWE`` statement: ``action`` owed from ``due`` (default: now), of
    the payments ``which`` names."""
    return {
        **which,
        "action": action.value,
        "status": _OWED_FROM[action].value,
        "due": tx.instant(now if due is None else due),
        "now": tx.instant(now),
    }


def owe_poll(tx: RawTx, payment_id: str, now: datetime) -> None:
    """A checkout opened: should the provider's notification never come, the worker asks."""
    owe_provider_action(tx, ProviderAction.POLL, [payment_id], now, due=now + FIRST_POLL)


# ---------------------------------------------------------------------------- capture

# The holds of a team's confirmed seats, owed their capture in the same statement that finds
# them (the seats are confirmed first, in the same transaction). A hold with an end is not its
# seat's money: a second payment of a paid seat owed back whose void failed for good waits
# with the operators (``void_failed``), and is never captured.
OWE_CAPTURES = Sql(
    _OWE.format(
        which="team_id = :team_id AND end_reason IS NULL AND seat_id IN "
        "(SELECT id FROM seats WHERE team_id = :team_id AND status = :confirmed)"
    ),
    confirmed=SeatStatus.CONFIRMED,
)


def owe_captures(tx: RawTx, team_id: str, now: datetime) -> None:
    """A team succeeded: every hold of its confirmed seats is captured; charges earn at once.
    Both are found in one round trip (PostgreSQL)."""
    captures = _owing(tx, ProviderAction.CAPTURE, now, None, team_id=team_id)
    _, charges = tx.together(
        (OWE_CAPTURES, captures), (ledger.CHARGES_OF_TEAM, {"team_id": team_id})
    )
    ledger.earn_team_charges(tx, charges.all_as(ledger.Earning), now)


# ---------------------------------------------------------------------------- money back

# A payment that ended outside its course (``end_reason``: a second payment whose return
# failed for good, say) is the operators', in their queue: it is not owed back a second time,
# and its journal of money owed back, written once, is not written again.
_KEEPING_MONEY = """
    SELECT {columns} FROM payments
    WHERE {which} IN_LIST(:ids) AND status IN (:authorized, :charged)
      AND pending_action IS NULL AND end_reason IS NULL AND purpose = :seat
"""
_KEEPING = {
    "authorized": PaymentStatus.AUTHORIZED,
    "charged": PaymentStatus.CHARGED,
    "seat": PaymentPurpose.SEAT,
}
# Keyed on the seats that just ended: all of their money goes back.
MONEY_OF_SEATS = Sql(
    _KEEPING_MONEY.format(which="seat_id", columns=PAYMENT_MONEY_COLUMNS), **_KEEPING
)
# Keyed on single late payments: their seat may be kept by another payment, so never by seat.
MONEY_OF_PAYMENTS = Sql(
    _KEEPING_MONEY.format(which="id", columns=PAYMENT_MONEY_COLUMNS), **_KEEPING
)
BACK_TO_WALLET = Sql(
    """
    UPDATE payments
    SET status = :refunded, pending_action = NULL, next_attempt_at = NULL, updated_at = :now
    WHERE id IN_LIST(:ids) AND status = :charged AND pending_action IS NULL
    RETURNING id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to
""",
    refunded=PaymentStatus.REFUNDED,
    charged=PaymentStatus.CHARGED,
)


def owe_back_for_seats(tx: RawTx, seat_ids: Sequence[str], now: datetime) -> None:
    """Seats ended: the money taken for them goes back (holds voided, charges refunded)."""
    if seat_ids:
        _owe_back(tx, MONEY_OF_SEATS, seat_ids, now)


def owe_back_for_payments(tx: RawTx, payment_ids: Sequence[str], now: datetime) -> None:
    """Payments that came too late (or twice) for their seat: their money goes back."""
    if payment_ids:
        _owe_back(tx, MONEY_OF_PAYMENTS, payment_ids, now)


def _owe_back(tx: RawTx, sql: Sql, ids: Sequence[str], now: datetime) -> None:
    keeping = tx.all_as(PaymentMoney, sql, {"ids": list(ids)})
    if not keeping:
        return
    way = {p.id: money_back(p.status, p.provider, p.refund_to) for p in keeping}

    def going(back: MoneyBack) -> list[str]:
        return [p.id for p in keeping if way[p.id] is back]

    owe_provider_action(tx, ProviderAction.VOID, going(MoneyBack.VOID), now)
    refunds = owe_provider_action(tx, ProviderAction.REFUND, going(MoneyBack.REFUND), now)
    wallet_ids = going(MoneyBack.TO_WALLET)
    to_wallet = (
        tx.all_as(PaymentMoney, BACK_TO_WALLET, {"ids": wallet_ids, "now": tx.instant(now)})
        if wallet_ids
        else []
    )
    # A charge is owed to its payer from now; a hold needs no journal until it is voided.
    ledger.record_owed_back(tx, [*refunds, *to_wallet], now)
    if not to_wallet:
        return
    ledger.record_returned_to_wallet(tx, to_wallet, now)
    record_events(
        tx,
        [
            (
                "payment.returned",
                p.id,
                {"user_id": p.user_id, "amount": p.amount, "currency": p.currency, "to": "wallet"},
            )
            for p in to_wallet
        ],
    )
