"""Refunds of a confirmed seat after its team succeeded, and disputes (chargebacks).

A refund after success is its own row, so a payment may have several, each partial, up to what
was paid (``payments.refunded_amount`` counts them and is the guard). A dispute is what a
provider tells us when the payer contests a payment with their bank: ``open → won | lost``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    provider: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # How the amount comes back: from the merchant's payable and from the platform's fee.
    merchant_part: Mapped[int] = mapped_column(BigInteger)
    fee_part: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    # pending: owed at the provider; succeeded: the money is on its way back to the payer.
    status: Mapped[str] = mapped_column(String(10))
    # request: asked through Pintuan; provider: made in the provider's own dashboard; reward: a
    # leader's reward.
    source: Mapped[str] = mapped_column(String(10))
    # Where the money goes: the provider (original) or the payer's wallet at once.
    destination: Mapped[str] = mapped_column(String(10))
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # The provider's id of the refund, once known.
    provider_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When a refund owed at its provider is given up at the latest (set at its first failure).
    call_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # How its latest provider call came out: failed (no answer, or a busy provider), refused
    # (the provider's own word that it did not make it), or returned (made, then its money came
    # back: owed again).
    last_outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Given up and waiting for an operator (still pending: the payer is still owed), until an
    # operator retries it or pays it into the payer's wallet (``resolution``).
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(10), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint(
            "last_outcome IS NULL OR last_outcome IN ('failed', 'refused', 'returned')",
            name="last_outcome",
        ),
        CheckConstraint(
            "resolution IS NULL OR resolution IN ('retry', 'wallet')", name="resolution"
        ),
        CheckConstraint(
            "source IN ('request', 'provider', 'reward', 'lottery', 'pickup', 'ladder')",
            name="source",
        ),
        CheckConstraint("destination IN ('original', 'wallet')", name="destination"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "merchant_part >= 0 AND fee_part >= 0 AND merchant_part + fee_part = amount",
            name="parts",
        ),
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_refunds_payment_id", "payment_id"),
        Index("ix_refunds_seat_id", "seat_id"),
        # A leader is rewarded once per seat, whichever worker got there first.
        Index(
            "uq_refunds_reward_seat_id",
            "seat_id",
            unique=True,
            sqlite_where=text("source = 'reward'"),
            postgresql_where=text("source = 'reward'"),
        ),
        # A lottery's loser is refunded once.
        Index(
            "uq_refunds_lottery_seat_id",
            "seat_id",
            unique=True,
            sqlite_where=text("source = 'lottery'"),
            postgresql_where=text("source = 'lottery'"),
        ),
        # A ladder team's member gets the difference to the tier reached once.
        Index(
            "uq_refunds_ladder_seat_id",
            "seat_id",
            unique=True,
            sqlite_where=text("source = 'ladder'"),
            postgresql_where=text("source = 'ladder'"),
        ),
        Index(
            "ix_refunds_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # The operators' queue of refunds, in the id order it is listed in.
        Index(
            "ix_refunds_queue",
            "id",
            sqlite_where=text("queued_at IS NOT NULL AND resolved_at IS NULL"),
            postgresql_where=text("queued_at IS NOT NULL AND resolved_at IS NULL"),
        ),
    )


class RefundAttempt(Base):
    """One provider call made for a refund after success, one piece of the provider's news of
    it, or one operator's act: the history the refunds queue shows."""

    __tablename__ = "refund_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    refund_id: Mapped[str] = mapped_column(ForeignKey("refunds.id"))
    # refund (a call), news (the provider's), give_up, operator_retry, operator_wallet
    action: Mapped[str] = mapped_column(String(40))
    # done, failed, refused, returned; for give_up why (refused, attempts, deadline); accepted
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # None: the worker
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_refund_attempts_refund_id", "refund_id", "id"),)


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    seat_id: Mapped[str | None] = mapped_column(ForeignKey("seats.id"), nullable=True)
    # The merchant that earned the payment (None: no merchant did, the platform bears it).
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str] = mapped_column(String(120))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('open', 'won', 'lost')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_disputes_payment_id", "payment_id"),
        Index("ix_disputes_merchant_id", "merchant_id"),
        Index("ix_disputes_seat_id", "seat_id"),  # an order's disputes
    )
