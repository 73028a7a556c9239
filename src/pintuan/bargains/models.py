"""Bargains: a deal's bargain terms, the bargains shoppers open, and their helpers' cuts (see
``domain/bargains.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime

_OPEN = text("status = 'open'")
_BOUGHT = text("seat_id IS NOT NULL")


class BargainTerms(Base):
    """A deal's bargain terms: the floor, the cuts it takes to reach it, the hours it stays open."""

    __tablename__ = "bargain_terms"

    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), primary_key=True)
    floor_amount: Mapped[int] = mapped_column(BigInteger)
    helpers: Mapped[int] = mapped_column(Integer)
    hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("floor_amount >= 1", name="floor_amount"),
        CheckConstraint("helpers BETWEEN 2 AND 100", name="helpers"),
        CheckConstraint("hours BETWEEN 1 AND 168", name="hours"),
    )


class Bargain(Base):
    """One shopper's bargain on a deal: the price its helpers' cuts have reached so far."""

    __tablename__ = "bargains"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))
    start_amount: Mapped[int] = mapped_column(BigInteger)
    floor_amount: Mapped[int] = mapped_column(BigInteger)
    helpers_needed: Mapped[int] = mapped_column(Integer)
    # Hex of 32 random bytes: the cut schedule is derived from it; never shown.
    seed: Mapped[str] = mapped_column(String(64))
    cuts: Mapped[int] = mapped_column(Integer, default=0)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The owner's purchase: its seat, and the price it was taken at.
    seat_id: Mapped[str | None] = mapped_column(ForeignKey("seats.id"), nullable=True)
    bought_price_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('open', 'bought', 'expired')", name="status"),
        CheckConstraint(
            "floor_amount >= 1 AND start_amount - floor_amount >= helpers_needed",
            name="floor_below_start",
        ),
        CheckConstraint("cuts BETWEEN 0 AND helpers_needed", name="cuts_within_helpers"),
        CheckConstraint(
            "price_amount BETWEEN floor_amount AND start_amount", name="price_within_range"
        ),
        CheckConstraint("(seat_id IS NULL) = (bought_price_amount IS NULL)", name="seat_has_price"),
        # One open bargain per shopper per deal.
        Index(
            "uq_bargains_open_deal_owner",
            "deal_id",
            "owner_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index("ix_bargains_owner_id_id", "owner_id", "id"),
        Index("ix_bargains_deal_id", "deal_id"),
        # Whether a seat was bought by a bargain (a coupon may not go on it).
        Index(
            "ix_bargains_seat_id",
            "seat_id",
            sqlite_where=_BOUGHT,
            postgresql_where=_BOUGHT,
        ),
        # The worker's sweep finds open bargains past their deadline.
        Index(
            "ix_bargains_open_expires_at",
            "expires_at",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )


class BargainCut(Base):
    """One helper's cut of a bargain: its position in the schedule and the amount it took.

    Unique per bargain by position, by helper, by device and by network address (both stored as
    keyed hashes only), so a second cut from any of them rolls its whole transaction back."""

    __tablename__ = "bargain_cuts"

    bargain_id: Mapped[str] = mapped_column(ForeignKey("bargains.id"))
    position: Mapped[int] = mapped_column(Integer)
    helper_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    device_hash: Mapped[str] = mapped_column(String(64))
    address_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("bargain_id", "position"),
        UniqueConstraint("bargain_id", "helper_id"),
        UniqueConstraint("bargain_id", "device_hash"),
        UniqueConstraint("bargain_id", "address_hash"),
        CheckConstraint("position >= 1", name="position"),
        CheckConstraint("amount >= 1", name="amount"),
        # The anti-abuse limits count a helper's and an address's cuts of the last day.
        Index("ix_bargain_cuts_helper_id_created_at", "helper_id", "created_at"),
        Index("ix_bargain_cuts_address_hash_created_at", "address_hash", "created_at"),
    )
