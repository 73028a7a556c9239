"""The referral commissions' table: one per seat whose order a share brought."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Commission(Base):
    """A sharer's commission on one seat (``domain/commissions.py``). ``amount`` is what it was
    when frozen; ``clawed_back`` is how much of it refunds took back since."""

    __tablename__ = "commissions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"), unique=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    deal_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    sharer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    share_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    # What the seat had paid (less refunds) when the commission was frozen, and the deal's rate.
    base: Mapped[int] = mapped_column(BigInteger)
    rate_bps: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    clawed_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(12))
    # Counts its journals, whose ids are ``<commission id>:<kind>:<move>``.
    moves: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('frozen', 'released', 'clawed_back')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("clawed_back BETWEEN 0 AND amount", name="clawed_back"),
        Index("ix_commissions_sharer_id", "sharer_id", "id"),
        Index("ix_commissions_merchant_id", "merchant_id", "id"),
        Index(
            "ix_commissions_frozen",
            "id",
            sqlite_where=text("status = 'frozen'"),
            postgresql_where=text("status = 'frozen'"),
        ),
    )
