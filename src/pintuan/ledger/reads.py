"""Reading the ledger: wallet balances and history, what a merchant is owed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.domain import ledger as rules
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.ledger.models import Entry, Journal, Wallet


def wallet_balances(session: Session, user_id: str) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Wallet.balance, Wallet.currency)
        .where(Wallet.user_id == user_id)
        .order_by(Wallet.currency)
    ).all()
    return [(balance, currency) for balance, currency in rows]


@dataclass(frozen=True, slots=True)
class WalletLine:
    journal_id: str
    kind: str
    amount: int  # + into the wallet, - out of it
    currency: str
    at: datetime


def wallet_history(session: Session, user_id: str, limit: int) -> list[WalletLine]:
    """The latest movements of the shopper's wallet, newest first."""
    rows = session.execute(
        # Wallet journals are posted as they are written, so their creation is their date.
        select(Journal.id, Journal.kind, Entry.amount, Entry.currency, Journal.created_at)
        .join(Entry, Entry.journal_id == Journal.id)
        .where(Entry.account == rules.WALLET.format(user_id=user_id), Journal.status == "posted")
        .order_by(Journal.created_at.desc(), Journal.id.desc())
        .limit(limit)
    ).all()
    # The wallet is a liability: a credit (negative entry) puts money into it.
    return [WalletLine(j, k, -amount, c, at) for j, k, amount, c, at in rows]


def merchant_balances(
    session: Session, principal: Principal, merchant_id: str
) -> list[tuple[int, str]]:
    """What the platform owes the merchant now, per currency (its staff and operators only)."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    rows = session.execute(
        select(func.sum(Entry.amount), Entry.currency)
        .join(Journal, Journal.id == Entry.journal_id)
        .where(
            Entry.account == rules.MERCHANT_PAYABLE.format(merchant_id=merchant_id),
            Journal.status == "posted",
        )
        .group_by(Entry.currency)
        .order_by(Entry.currency)
    ).all()
    return [(-int(total), currency) for total, currency in rows]
