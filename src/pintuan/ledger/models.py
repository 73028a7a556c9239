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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime

# A shopper's payouts (withdrawals from the wallet); the others are merchants' settlements.
_WITHDRAWAL = "user_id IS NOT NULL"


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
    # The business instant it belongs to (which statement day); ``created_at`` is the instant
    # it was recorded. Settlement goes by the first and never loses what the second brings late.
    effective_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'posted', 'voided')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_ledger_journals_payment_id", "payment_id"),
        Index("ix_ledger_journals_provider_decided", "provider", "decided_at"),
        Index("ix_ledger_journals_merchant_decided", "merchant_id", "decided_at"),
        Index("ix_ledger_journals_merchant_effective", "merchant_id", "effective_at"),
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
    # What reached the merchant's payable on this statement besides the day's own earnings and
    # payouts: entries dated an earlier, already settled day (recorded late), refunds, disputes.
    adjustments: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The end of the business day: every entry dated before it is on this or an earlier statement.
    cutoff_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("merchant_id", "day", "currency"),)


class SettlementLine(Base):
    """Which statement a journal touching a merchant's payable is on: exactly one, forever."""

    __tablename__ = "settlement_lines"

    journal_id: Mapped[str] = mapped_column(ForeignKey("ledger_journals.id"), primary_key=True)
    statement_id: Mapped[str] = mapped_column(ForeignKey("settlement_statements.id"), index=True)


class CommissionRate(Base):
    """A merchant's commission from an instant on; written by the database itself whenever a
    merchant is created or its rate changes, so the audit knows the rate in force for a fee."""

    __tablename__ = "merchant_commission_rates"

    merchant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    commission_bps: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("commission_bps BETWEEN 0 AND 10000", name="commission_bps"),)


class Payout(Base):
    """Money sent to a merchant, or withdrawn from a shopper's wallet to their own account:
    ``pending → sent → paid | failed | returned``. Its journal takes the money from the payable
    (or the wallet) when it is created; a failed or returned one is reversed."""

    __tablename__ = "payouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Exactly one payee: a merchant, or a shopper withdrawing from their wallet.
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # Where a withdrawal goes (the shopper's bank or payment account, as they typed it).
    destination: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    journal_id: Mapped[str] = mapped_column(String(60))
    return_journal_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    # The bank's reference once sent.
    reference: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sent', 'paid', 'failed', 'returned')", name="status"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(merchant_id IS NULL) <> (user_id IS NULL)", name="one_payee"),
        Index("ix_payouts_merchant_id", "merchant_id", "id"),
        Index("ix_payouts_user_id", "user_id", "id"),
        # The operators' withdrawals (a shopper's payouts, not a merchant's) newest first, of
        # any status or of one, a page at a time.
        Index(
            "ix_payouts_withdrawals",
            "id",
            sqlite_where=text(_WITHDRAWAL),
            postgresql_where=text(_WITHDRAWAL),
        ),
        Index(
            "ix_payouts_withdrawals_status",
            "status",
            "id",
            sqlite_where=text(_WITHDRAWAL),
            postgresql_where=text(_WITHDRAWAL),
        ),
    )


class ReconciliationDay(Base):
    """One provider's statement day, reconciled (the worker does each once)."""

    __tablename__ = "reconciliation_days"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    matched: Mapped[int] = mapped_column(Integer)
    findings: Mapped[int] = mapped_column(Integer)
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReconciliationFinding(Base):
    """One difference between our ledger and a provider's records, kept until an operator
    explains or fixes it: ``open → explained | fixed``."""

    __tablename__ = "reconciliation_findings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # provider, day, difference and both sides' ids: a rerun of a day finds the same once.
    key: Mapped[str] = mapped_column(String(400), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    day: Mapped[date] = mapped_column(Date)
    # missing, extra, different, or hold (an uncaptured hold one side does not know of)
    difference: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(10))
    provider_ref: Mapped[str] = mapped_column(String(120))
    ours_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    ours_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    theirs_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    theirs_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    found_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("state IN ('open', 'explained', 'fixed')", name="state"),
        CheckConstraint(
            "difference IN ('missing', 'extra', 'different', 'hold')", name="difference"
        ),
        Index("ix_reconciliation_findings_state", "state", "id"),
    )
