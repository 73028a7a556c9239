"""The address book and the shipment of each seat of goods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Address(Base):
    """One address in a shopper's book; only the fields of its country's format are filled."""

    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(String(2))
    recipient: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(32))
    postcode: Mapped[str] = mapped_column(String(16), default="")
    region: Mapped[str] = mapped_column(String(80), default="")
    city: Mapped[str] = mapped_column(String(80), default="")
    district: Mapped[str] = mapped_column(String(80), default="")
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str] = mapped_column(String(200), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_addresses_user_id_id", "user_id", "id"),
        # At most one default address per shopper.
        Index(
            "uq_addresses_user_id_default",
            "user_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )


class Shipment(Base):
    """Where one seat's parcel goes and how far it got (see ``domain/fulfilment.py``)."""

    __tablename__ = "shipments"

    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[str] = mapped_column(String(16))
    # A copy of the chosen address: later edits in the book never change an order.
    address: Mapped[dict[str, str]] = mapped_column(JSON)
    address_at: Mapped[datetime] = mapped_column(UtcDateTime())
    carrier: Mapped[str | None] = mapped_column(String(60), nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(40), nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    shipped_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # When the worker confirms receipt if the shopper has not.
    receive_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    received_by: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('addressed', 'shipped', 'received')", name="status"),
        CheckConstraint(
            "status = 'addressed' OR (carrier IS NOT NULL AND tracking_number IS NOT NULL "
            "AND shipped_at IS NOT NULL AND receive_due_at IS NOT NULL)",
            name="shipped_has_tracking",
        ),
        CheckConstraint(
            "status <> 'received' OR (received_at IS NOT NULL AND received_by IS NOT NULL)",
            name="received_has_time",
        ),
        CheckConstraint(
            "received_by IS NULL OR received_by IN ('shopper', 'auto')", name="received_by"
        ),
        Index("ix_shipments_merchant_id_status", "merchant_id", "status"),
        # The worker's sweep finds shipped parcels whose waiting time for receipt has run out.
        Index(
            "ix_shipments_shipped_receive_due_at",
            "receive_due_at",
            sqlite_where=text("status = 'shipped'"),
            postgresql_where=text("status = 'shipped'"),
        ),
    )
