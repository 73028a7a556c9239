"""One voucher per confirmed seat of a successful team of a deal that issues vouchers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Voucher(Base):
    """A seat's voucher (see ``domain/vouchers.py`` for its states and its money)."""

    __tablename__ = "vouchers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"), unique=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    code: Mapped[str] = mapped_column(String(10), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    # Copies of the deal's terms when the voucher was issued: later edits never change it.
    settle_on: Mapped[str] = mapped_column(String(10))
    refund_anytime: Mapped[bool] = mapped_column(Boolean)
    locations: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A staff member's user id, or an app's id when an app redeemed it.
    redeemed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    redeemed_via: Mapped[str | None] = mapped_column(String(10), nullable=True)
    redeemed_location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    refund_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Money movements so far: each of its ledger journals is ``<id>:<kind>:<move>``.
    moves: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('issued', 'redeemed', 'refunded', 'expired')", name="status"),
        CheckConstraint("settle_on IN ('redemption', 'success')", name="settle_on"),
        CheckConstraint(
            "status <> 'redeemed' OR (redeemed_at IS NOT NULL AND redeemed_by IS NOT NULL "
            "AND redeemed_via IS NOT NULL)",
            name="redeemed_has_who",
        ),
        CheckConstraint(
            "redeemed_via IS NULL OR redeemed_via IN ('console', 'api', 'app')",
            name="redeemed_via",
        ),
        CheckConstraint("expires_at > valid_from", name="expires_after_valid_from"),
        Index("ix_vouchers_user_id_id", "user_id", "id"),
        Index("ix_vouchers_merchant_id_id", "merchant_id", "id"),
        # The worker's sweep finds unused vouchers whose validity has run out.
        Index(
            "ix_vouchers_issued_expires_at",
            "expires_at",
            sqlite_where=text("status = 'issued'"),
            postgresql_where=text("status = 'issued'"),
        ),
    )
