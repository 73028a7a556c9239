"""Coupons held by shoppers (``domain/coupons.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16))
    # The seat that earned it (a lottery seat not drawn): one coupon per such seat.
    source_seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The seat it was last applied to (its price is ``amount`` lower); free again once that
    # seat ended without a sale. None: never applied.
    seat_id: Mapped[str | None] = mapped_column(ForeignKey("seats.id"), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("source IN ('lottery')", name="source"),
        CheckConstraint("(seat_id IS NULL) = (applied_at IS NULL)", name="applied"),
        Index("ix_coupons_owner_id_id", "owner_id", "id"),
    )
