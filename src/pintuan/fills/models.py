"""Budgets that pay for the missing seats of teams filled at their window's end
(``domain/autofill.py``): one per payer (a merchant, or the platform) and currency."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class FillBudget(Base):
    __tablename__ = "fill_budgets"

    # A merchant's id, or "platform".
    payer: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    # Moved only by the conditional write of a fill (teams/service.py), never past the limit.
    used_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    filled_seats: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("limit_amount >= 0", name="limit_not_negative"),
        CheckConstraint("used_amount >= 0 AND used_amount <= limit_amount", name="within_limit"),
        CheckConstraint("filled_seats >= 0", name="filled_seats_not_negative"),
    )
