"""Refunds after a team's success and disputes: how a refund is split between the merchant and
the platform's fee, and the news of refunds and disputes that providers send.

The split, written down once:

* Amounts are integer minor units of the payment's currency; nothing is ever a fraction.
* A payment of ``paid`` earned the merchant ``paid - fee`` and the platform ``fee`` (the fee
  recorded when it was earned, whatever the merchant's rate is now).
* Refunds come back from both in proportion, counted on the running total: after refunds of
  ``R`` in all, the platform has given back ``fee_back(R) = round_half_up(fee * R / paid)`` and
  the merchant ``R - fee_back(R)``. One refund of ``amount`` after ``before`` was refunded gives
  back ``fee_back(before + amount) - fee_back(before)`` of the fee and the rest from the
  merchant.
* So the rounding remainder of one refund goes to whichever side the running total says, never
  accumulates (the fee given back is always within half a minor unit of the exact share), and a
  payment refunded in full, in any number of parts, gives back exactly ``fee`` and exactly
  ``paid - fee``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RefundStatus(StrEnum):
    PENDING = "pending"  # owed at the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundQueueAction(StrEnum):
    """What an operator may do with a refund in the queue."""

    RETRY = "retry"  # owe the provider call again, with a fresh count of attempts and time
    WALLET = "wallet"  # pay it into the payer's wallet: only on the provider's word it was not made


class RefundOutcome(StrEnum):
    """How a refund's latest provider call came out."""

    FAILED = "failed"  # no answer, or a busy provider: it may have been made
    REFUSED = "refused"  # the provider's own word that it did not make it
    # The provider's news that it did not reach the payer (a closed card), perhaps after it
    # was paid: a retry under its key would only find it again, so the payer is owed it from
    # the wallet.
    RETURNED = "returned"


class RefundProgress(StrEnum):
    """Where a refund after success stands, as its payer is told."""

    ON_ITS_WAY = "on_its_way"  # owed at the provider, being asked for
    DELAYED = "delayed"  # the provider did not make it when asked: with the operators
    SENT_BACK = "sent_back"  # made, but its money came back (a closed card): owed again
    DONE = "done"  # the provider made it
    IN_WALLET = "in_wallet"  # paid into the payer's wallet


def refund_progress(
    status: str, *, to_wallet: bool, waiting: bool, last_outcome: str | None
) -> RefundProgress:
    """A refund's progress from its row: ``to_wallet`` says it goes to the payer's wallet,
    ``waiting`` that it is in the operators' queue (queued and not resolved). Money that came
    back stays so until it is paid again, whatever the operators did with it meanwhile."""
    if status == RefundStatus.SUCCEEDED:
        return RefundProgress.IN_WALLET if to_wallet else RefundProgress.DONE
    if last_outcome == RefundOutcome.RETURNED:
        return RefundProgress.SENT_BACK
    if waiting or status == RefundStatus.FAILED:
        return RefundProgress.DELAYED
    return RefundProgress.ON_ITS_WAY


class RefundSource(StrEnum):
    REQUEST = "request"  # asked for through Pintuan by merchant staff or an operator
    PROVIDER = "provider"  # made in the provider's own dashboard; we heard of it
    REWARD = "reward"  # a deal's reward to the leader of a successful team (domain/rewards.py)
    LOTTERY = "lottery"  # a lottery team's seat that was not drawn (domain/lottery.py)
    PICKUP = "pickup"  # an order nobody collected from its pickup point (domain/pickups.py)
    LADDER = "ladder"  # a ladder team's member: the difference to the tier reached (ladder.py)


class DisputeStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class RefundSplit:
    merchant: int  # taken back from the merchant's payable
    fee: int  # taken back from the platform's fee


def fee_back(paid: int, fee: int, refunded: int) -> int:
    """The part of ``fee`` given back once ``refunded`` of ``paid`` has been refunded in all,
    rounded half up to a whole minor unit."""
    if paid <= 0 or not 0 <= fee <= paid or not 0 <= refunded <= paid:
        raise ValueError("need 0 <= fee <= paid, 0 <= refunded <= paid and paid > 0")
    return (fee * refunded * 2 + paid) // (paid * 2)


def split_refund(paid: int, fee: int, before: int, amount: int) -> RefundSplit:
    """How a refund of ``amount``, after ``before`` was refunded already, comes back from the
    merchant and from the platform's fee (see the module's docstring for the policy)."""
    if amount <= 0 or before < 0 or before + amount > paid:
        raise ValueError("a refund is positive and never takes back more than was paid")
    back = fee_back(paid, fee, before + amount) - fee_back(paid, fee, before)
    return RefundSplit(merchant=amount - back, fee=back)


class NoticeKind(StrEnum):
    """News of money that left or came back after a payment, from a provider."""

    REFUNDED = "refunded"  # a refund reached the payer (ours, or made in the dashboard)
    DISPUTE_OPENED = "dispute_opened"  # the payer contests the payment; the money is taken
    DISPUTE_WON = "dispute_won"  # decided for us: the money comes back
    DISPUTE_LOST = "dispute_lost"  # decided for the payer: the money is gone
    # A refund did not reach the payer (a closed card): never made, or its money came back.
    REFUND_FAILED = "refund_failed"


@dataclass(frozen=True, slots=True)
class MoneyNotice:
    kind: NoticeKind
    ref: str  # the provider's id of the refund or dispute
    amount: int | None  # this refund's or dispute's amount, when the notice says
    # Our idempotency key when we asked for the refund (Stripe metadata, Alipay out_biz_no,
    # WeChat out_refund_no); None for one made elsewhere.
    request_no: str | None = None
    # All that was refunded of the payment at the provider so far, ours included: Alipay says
    # only that, Stripe says it beside each refund's own amount.
    refunded_total: int | None = None
    reason: str | None = None
