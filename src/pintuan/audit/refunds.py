"""The audit of refunds after success and of disputes: each refund and dispute has exactly the
journals its status says, of its amount and split; a payment's refunds add up to what it counts
as refunded and never exceed what was paid; and no such journal names a refund or dispute that
does not exist.

Checked from the refund and dispute rows against the journals written beside them; an empty
list of breaches is a pass (the breaches go into the ledger check's report).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind
from pintuan.ledger.models import Entry, Journal
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Dispute, Refund

# The journal kinds a payment may have many of, each keyed by its refund's or dispute's id.
AFTER_SUCCESS = (
    JournalKind.REFUND_OWED.value,
    JournalKind.REFUND_PAID.value,
    JournalKind.REFUND_WALLET.value,
    JournalKind.REFUND_RETURNED.value,
    JournalKind.REFUND_REPAID.value,
    JournalKind.DISPUTE_OPENED.value,
    JournalKind.DISPUTE_WON.value,
    JournalKind.DISPUTE_LOST.value,
)
_OWED, _PAID = JournalKind.REFUND_OWED.value, JournalKind.REFUND_PAID.value
_WALLET, _RETURNED = JournalKind.REFUND_WALLET.value, JournalKind.REFUND_RETURNED.value
_REPAID = JournalKind.REFUND_REPAID.value
# The journals each status may have: a refund paid whose money came back (returned) is owed
# again, then paid into the wallet by an operator, or by the provider in a refund of the whole
# payment made in its dashboard.
_REFUND_JOURNALS: dict[tuple[str, str], tuple[set[str], ...]] = {
    ("pending", "original"): ({_OWED}, {_OWED, _PAID, _RETURNED}),
    ("succeeded", "original"): ({_OWED, _PAID}, {_OWED, _PAID, _RETURNED, _REPAID}),
    ("succeeded", "wallet"): ({_OWED, _WALLET}, {_OWED, _PAID, _RETURNED, _WALLET}),
}
_DISPUTE_JOURNALS = {
    "open": {JournalKind.DISPUTE_OPENED.value},
    "won": {JournalKind.DISPUTE_OPENED.value, JournalKind.DISPUTE_WON.value},
    "lost": {JournalKind.DISPUTE_OPENED.value, JournalKind.DISPUTE_LOST.value},
}


class Report(Protocol):
    def add(self, detail: str) -> None: ...


def taken_back(session: Session) -> dict[tuple[str, str], int]:
    """Per (merchant, currency): what refunds after success and lost disputes took back from
    what shoppers paid for the merchant's successful seats."""
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for merchant_id, currency, total in session.execute(
        select(Refund.merchant_id, Refund.currency, func.sum(Refund.amount))
        .where(Refund.status.in_(("pending", "succeeded")))
        .group_by(Refund.merchant_id, Refund.currency)
    ):
        taken[(merchant_id, currency)] += int(total)
    for disputed_merchant, currency, total in session.execute(
        select(Dispute.merchant_id, Dispute.currency, func.sum(Dispute.amount))
        .where(Dispute.status == "lost", Dispute.merchant_id.is_not(None))
        .group_by(Dispute.merchant_id, Dispute.currency)
    ):
        taken[(str(disputed_merchant), currency)] += int(total)
    return taken


def check_refunds_and_disputes(session: Session, report: Report) -> None:
    """Add every breach of the rules of refunds after success and disputes to ``report``."""
    journals: dict[str, dict[str, int]] = defaultdict(dict)
    for journal_id, kind, amount in session.execute(
        select(Journal.id, Journal.kind, Journal.amount).where(
            Journal.kind.in_(AFTER_SUCCESS), Journal.status == "posted"
        )
    ):
        journals[journal_id.split(":", 1)[0]][kind] = int(amount)
    parts = _refund_parts(session)
    refunded: dict[str, int] = defaultdict(int)
    for refund in session.scalars(select(Refund)):
        have = journals.pop(refund.id, {})
        allowed = _REFUND_JOURNALS.get((refund.status, refund.destination), (set(),))
        returned = refund.last_outcome == "returned"
        if set(have) not in allowed or (_RETURNED in have) != returned:
            report.add(
                f"refund {refund.id} is {refund.status} to {refund.destination} "
                f"({refund.last_outcome or 'no failure'}) but has journals {sorted(have)}, "
                f"expected {' or '.join(str(sorted(kinds)) for kinds in allowed)}"
            )
        for kind, amount in have.items():
            if amount != refund.amount:
                report.add(f"refund {refund.id}: {kind} of {amount}, refunded {refund.amount}")
        split = parts.get(refund.id)
        if split is not None and split != (refund.merchant_part, refund.fee_part):
            report.add(
                f"refund {refund.id} takes {split} from the merchant and the fee, its record "
                f"says {(refund.merchant_part, refund.fee_part)}"
            )
        if refund.status != "failed":
            refunded[refund.payment_id] += refund.amount
    for payment_id, amount, counted in session.execute(
        select(Payment.id, Payment.amount, Payment.refunded_amount).where(
            (Payment.refunded_amount != 0) | Payment.id.in_(list(refunded))
        )
    ):
        if counted != refunded.get(payment_id, 0) or counted > amount:
            report.add(
                f"payment {payment_id} of {amount} counts {counted} refunded after success, "
                f"its refunds add up to {refunded.get(payment_id, 0)}"
            )
    for dispute in session.scalars(select(Dispute)):
        have = journals.pop(dispute.id, {})
        expected = _DISPUTE_JOURNALS[dispute.status]
        if set(have) != expected:
            report.add(
                f"dispute {dispute.id} is {dispute.status} but has journals {sorted(have)}, "
                f"expected {sorted(expected)}"
            )
        for kind, amount in have.items():
            if amount != dispute.amount:
                report.add(f"dispute {dispute.id}: {kind} of {amount}, disputed {dispute.amount}")
    for subject in journals:
        report.add(f"journals name refund or dispute {subject}, which does not exist")


def refunds_in_limbo(session: Session, before: datetime) -> list[str]:
    """Refunds after success still owed at their provider since before ``before`` (granted,
    or last sent back to the provider by an operator, then), and not waiting for an operator."""
    return [
        f"refund {refund_id} of {amount} {currency} is still owed at its provider "
        f"({last_error or 'not tried yet'})"
        for refund_id, amount, currency, last_error in session.execute(
            select(Refund.id, Refund.amount, Refund.currency, Refund.last_error).where(
                Refund.status == "pending",
                Refund.created_at < before,
                or_(Refund.resolved_at.is_(None), Refund.resolved_at < before),
                or_(Refund.queued_at.is_(None), Refund.resolved_at.is_not(None)),
            )
        )
    ]


def _refund_parts(session: Session) -> dict[str, tuple[int, int]]:
    """What each refund's owed journal took back from the merchant and from the fee."""
    parts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for journal_id, account, amount in session.execute(
        select(Journal.id, Entry.account, Entry.amount)
        .join(Entry, Entry.journal_id == Journal.id)
        .where(Journal.kind == JournalKind.REFUND_OWED.value, Journal.status == "posted")
    ):
        split = parts[journal_id.split(":", 1)[0]]
        if account.startswith("merchant_payable:"):
            split[0] += int(amount)
        elif account == rules.PLATFORM_FEES:
            split[1] += int(amount)
    return {refund_id: (m, f) for refund_id, (m, f) in parts.items()}
