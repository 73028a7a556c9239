"""Compare our ledger with a provider's own statement for one of its days."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain.ledger import JournalKind
from pintuan.domain.payments import PaymentProvider, ProviderRecord, RecordKind
from pintuan.domain.reconciliation import Movement, Reconciliation, reconcile
from pintuan.ledger.models import Journal
from pintuan.ledger.settlement import day_bounds

# The journals that move money at a provider: charges, captured holds and top-ups bring it in,
# refunds send it back. (Refunds into a wallet never reach the provider.)
_MONEY_IN = (JournalKind.CHARGE.value, JournalKind.AUTHORIZE.value, JournalKind.TOPUP.value)
# A failed team's refund of the whole payment, refunds after success (several, partial), and
# a refund that came back (payments/endings.py and payments/refunds.py: the provider's refund
# failure).
_RECORD_OF = {
    JournalKind.REFUND.value: RecordKind.REFUND,
    JournalKind.REFUND_PAID.value: RecordKind.REFUND,
    JournalKind.REFUND_REPAID.value: RecordKind.REFUND,
    JournalKind.REFUND_REVERSED.value: RecordKind.REFUND_FAILURE,
    JournalKind.REFUND_RETURNED.value: RecordKind.REFUND_FAILURE,
}


def our_movements(
    session: Session, provider: str, start: datetime, end: datetime
) -> list[Movement]:
    rows = session.execute(
        select(Journal.id, Journal.kind, Journal.provider_ref, Journal.amount, Journal.currency)
        .where(
            Journal.provider == provider,
            Journal.status == "posted",
            Journal.kind.in_((*_MONEY_IN, *_RECORD_OF)),
            Journal.decided_at >= start,
            Journal.decided_at < end,
        )
        .order_by(Journal.id)
    ).all()
    return [
        Movement(
            provider_ref=ref or "",
            kind=_RECORD_OF.get(kind, RecordKind.PAYMENT),
            amount=amount,
            currency=currency,
            source_id=journal_id,
        )
        for journal_id, kind, ref, amount, currency in rows
    ]


def their_movements(records: list[ProviderRecord]) -> list[Movement]:
    return [Movement(r.provider_ref, r.kind, r.amount, r.currency, r.record_id) for r in records]


def reconcile_day(
    session: Session, provider: PaymentProvider, day: date, records: list[ProviderRecord]
) -> Reconciliation:
    """Our movements on the provider's statement day (in its own time zone) against its
    records for that day."""
    start, end = day_bounds(day, provider.capabilities.bill_time_zone)
    return reconcile(our_movements(session, provider.name, start, end), their_movements(records))
