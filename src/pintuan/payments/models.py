"""Payments of seats, and the inbox of provider notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime

PAYMENT_STATUSES = (
    "requires_action",
    "authorized",
    "captured",
    "voided",
    "charged",
    "refunded",
    "failed",
    "expired",
)
END_REASONS = (
    "capture_failed",
    "hold_expired",
    "amount_mismatch",
    "refund_failed",
    "void_failed",
    "no_news",
)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # A seat's payment, or a wallet top-up (then no seat and no team).
    purpose: Mapped[str] = mapped_column(String(10), default="seat", server_default="seat")
    seat_id: Mapped[str | None] = mapped_column(ForeignKey("seats.id"), nullable=True)
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    # Who pays: the seat's shopper, or a friend paying for them.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(20))
    style: Mapped[str] = mapped_column(String(10))
    # Why the provider's usual style was not used (a hold that would not outlast the team).
    style_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str | None] = mapped_column(String(120), nullable=True, unique=True)
    # What the payer does next at the provider (JSON: url, qr_code, client_params).
    next_action: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Where money owed back goes: the original payment method, or the payer's wallet at once.
    refund_to: Mapped[str] = mapped_column(
        String(10), default="original", server_default="original"
    )
    # Work owed to the provider (capture, void or refund) and when to try it next.
    pending_action: Mapped[str | None] = mapped_column(String(10), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Every payment ends (payments/endings.py): the owed call's deadline, the provider's end of
    # a hold, what the provider took when it was not what we asked, why the payment left its
    # usual course, and its time in the operators' queue.
    call_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    capture_before: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    taken_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # What refunds after success took back so far (pending or done); never above ``amount``.
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('requires_action', 'authorized', 'captured', 'voided', 'charged', "
            "'refunded', 'failed', 'expired')",
            name="status",
        ),
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('capture_failed', 'hold_expired', "
            "'amount_mismatch', 'refund_failed', 'void_failed', 'no_news', 'unpaid', "
            "'cancelled')",
            name="end_reason",
        ),
        CheckConstraint("taken_amount IS NULL OR taken_amount > 0", name="taken_amount_positive"),
        CheckConstraint("style IN ('hold', 'charge')", name="style"),
        CheckConstraint("purpose IN ('seat', 'topup')", name="purpose"),
        CheckConstraint(
            "(purpose = 'seat') = (seat_id IS NOT NULL AND team_id IS NOT NULL)",
            name="seat_payment_has_seat",
        ),
        CheckConstraint("refund_to IN ('original', 'wallet')", name="refund_to"),
        CheckConstraint(
            "pending_action IS NULL OR pending_action IN ('capture', 'void', 'refund', 'poll')",
            name="pending_action",
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_seat_id", "seat_id"),
        Index("ix_payments_team_id", "team_id"),
        Index("ix_payments_user_id", "user_id"),
        Index(
            "ix_payments_due",
            "next_attempt_at",
            sqlite_where=text("pending_action IS NOT NULL"),
            postgresql_where=text("pending_action IS NOT NULL"),
        ),
        # The operators' queue, in the id order it is listed in (a partial index on when each
        # was queued left SQLite reading every payment by id to spare a sort).
        Index(
            "ix_payments_queue",
            "id",
            sqlite_where=text("queued_at IS NOT NULL AND resolved_at IS NULL"),
            postgresql_where=text("queued_at IS NOT NULL AND resolved_at IS NULL"),
        ),
    )


class PaymentAttempt(Base):
    """One provider call made for a payment, or one decision about it (giving up, an operator's
    action): the history the operators' queue shows."""

    __tablename__ = "payment_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    action: Mapped[str] = mapped_column(String(40))  # capture, void, refund, poll, or an ending
    outcome: Mapped[str] = mapped_column(String(20))  # done, failed, pending, gave_up, …
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # None: the worker
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_payment_attempts_payment_id", "payment_id", "id"),)


class WebhookEvent(Base):
    """Each verified provider notification, stored once by the provider's event id."""

    __tablename__ = "webhook_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
