"""Audit runs: when the invariants were last checked, by whom, and what was found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class AuditRun(Base):
    __tablename__ = "audit_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Where it was started: the operator console or the ``pintuan audit`` command.
    source: Mapped[str] = mapped_column(String(10))
    ran_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())
    breach_count: Mapped[int] = mapped_column(Integer)
    # The first breaches found, each {"invariant": …, "detail": …}; breach_count has them all.
    breaches: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("source IN ('console', 'cli')", name="source"),
        CheckConstraint("breach_count >= 0", name="breach_count"),
    )
