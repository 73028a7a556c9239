"""The journal of a team filled by the platform's budget (``domain/autofill.py``): written in the
transaction that ends the team, keyed ``<team id>:fill_subsidy`` so that it can never be written
twice. A fill by the merchant's own budget moves no money and has no journal."""

from __future__ import annotations

from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.kit.rawsql import RawTx
from pintuan.ledger.service import NewJournal, post


def fill_journal_id(team_id: str) -> str:
    return f"{team_id}:{JournalKind.FILL_SUBSIDY.value}"


def record_fill_subsidy(
    tx: RawTx, team_id: str, merchant_id: str, amount: int, currency: str, now: datetime
) -> None:
    """The platform pays ``merchant_id`` ``amount`` for a team's filled seats."""
    post(
        tx,
        [
            NewJournal(
                id=fill_journal_id(team_id),
                kind=JournalKind.FILL_SUBSIDY,
                status=JournalStatus.POSTED,
                currency=currency,
                amount=amount,
                entries=rules.fill_subsidy(merchant_id, amount),
                merchant_id=merchant_id,
            )
        ],
        now,
    )
