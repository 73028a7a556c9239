"""The commissions' table: a sharer's on each seat whose order a share brought, and a pickup
point leader's on each seat whose order they handed over (at most one of each kind a seat)."""

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


class Commission(Base):
    """A commission on one seat (``domain/commissions.py``). ``amount`` is what it was when
    frozen; ``clawed_back`` is how much of it refunds took back since. ``sharer_id`` is whom it
    is paid to: the sharer, or for a pickup commission the point's leader."""

    __tablename__ = "commissions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"))
    kind: Mapped[str] = mapped_column(String(10), server_default=text("'referral'"))
    payment_id: Mapped[str] = mapped_column(String(40))
    deal_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    sharer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    share_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # referral only
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
        CheckConstraint("kind IN ('referral', 'pickup')", name="kind"),
        CheckConstraint("(kind = 'referral') = (share_id IS NOT NULL)", name="share_of_referral"),
        UniqueConstraint("seat_id", "kind"),
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
