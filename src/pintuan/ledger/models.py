"""The ledger's tables: journals, their entries, wallets and settlement statements."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Journal(Base):
    """One money movement. Immutable once posted; a pending one is later posted or voided.

    A payment's journals have the id ``<payment id>:<kind>``, so writing the same movement twice
    is refused by the primary key itself.
    """

    __tablename__ = "ledger_journals"

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # the gross amount moved, > 0
    payment_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When it was posted or voided (for a journal posted at once, its creation).
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'posted', 'voided')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_ledger_journals_payment_id", "payment_id"),
        Index("ix_ledger_journals_provider_decided", "provider", "decided_at"),
        Index("ix_ledger_journals_merchant_decided", "merchant_id", "decided_at"),
    )


class Entry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    journal_id: Mapped[str] = mapped_column(ForeignKey("ledger_journals.id"))
    account: Mapped[str] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # debit positive, credit negative

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_journal_id", "journal_id"),
        Index("ix_ledger_entries_account", "account", "currency"),
    )


class Wallet(Base):
    """A shopper's stored balance in one currency; the ledger's wallet account mirrors it."""

    __tablename__ = "wallets"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)


class SettlementStatement(Base):
    """What one merchant earned on one business day (in its own time zone), in one currency."""

    __tablename__ = "settlement_statements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    day: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int] = mapped_column(Integer)
    gross: Mapped[int] = mapped_column(BigInteger)
    fees: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)
    payouts: Mapped[int] = mapped_column(BigInteger)
    # What the merchant is owed at the end of the day, after everything so far.
    closing_balance: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("merchant_id", "day", "currency"),)
