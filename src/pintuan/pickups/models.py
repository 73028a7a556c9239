"""Pickup points and the pickups of pickup deals' seats (see ``domain/pickups.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class PickupPoint(Base):
    """A place where a team leader hands pickup deals' goods to their shoppers."""

    __tablename__ = "pickup_points"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    leader_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(500))
    opening_hours: Mapped[str] = mapped_column(String(200))
    capacity_per_day: Mapped[int] = mapped_column(Integer)
    # The leader's zone when they applied: a point's day is a calendar day there.
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    decided_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'suspended')", name="status"
        ),
        CheckConstraint("capacity_per_day BETWEEN 1 AND 10000", name="capacity_per_day"),
        Index("ix_pickup_points_leader_id_id", "leader_id", "id"),
        Index("ix_pickup_points_status_id", "status", "id"),
    )


class Pickup(Base):
    """One seat's pickup at the point its shopper chose, with the code they show there."""

    __tablename__ = "pickups"

    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"), primary_key=True)
    pickup_point_id: Mapped[str] = mapped_column(ForeignKey("pickup_points.id"))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    code: Mapped[str] = mapped_column(String(10), unique=True)
    status: Mapped[str] = mapped_column(String(12))
    # The calendar day at the point on which the order chose it (YYYY-MM-DD).
    day: Mapped[str] = mapped_column(String(10))
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    claim_due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    handed_over_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    handed_over_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # What the seat's payment kept when it was handed over, and the leader's commission on it
    # (frozen as a ``commissions`` row of kind ``pickup``; before commissions froze, paid at once
    # by the journal ``<seat id>:pickup_commission``); 0 when none was earned.
    commission_base: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'arrived', 'handed_over', 'refunded', 'cancelled')",
            name="status",
        ),
        CheckConstraint(
            "status <> 'handed_over' OR (handed_over_at IS NOT NULL AND handed_over_by IS NOT "
            "NULL AND arrived_at IS NOT NULL)",
            name="handed_over_has_who",
        ),
        CheckConstraint(
            "commission_amount >= 0 AND commission_amount <= commission_base",
            name="commission_within_base",
        ),
        Index("ix_pickups_point_day", "pickup_point_id", "day", "seat_id"),
        Index("ix_pickups_user_id_seat_id", "user_id", "seat_id"),
        # The worker's sweep finds open pickups whose claim is due.
        Index(
            "ix_pickups_open_claim_due_at",
            "claim_due_at",
            sqlite_where=text("status IN ('waiting', 'arrived')"),
            postgresql_where=text("status IN ('waiting', 'arrived')"),
        ),
    )
