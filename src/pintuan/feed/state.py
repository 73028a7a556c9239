"""What the feed keeps besides its log: the operators' rules and live policies (one row that
every serving process reloads), and where the worker's readers of the outbox and of the log
have got to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime

LIVE = "live"


class FeedConfig(Base):
    """The rules operators set and the policies serving (A/B arms with traffic shares)."""

    __tablename__ = "feed_config"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # domain.feed.Rules as JSON, plus "reward_weights" (event → weight).
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"name", "kind", "params", "share"}]
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(40), nullable=True)


class FeedCursor(Base):
    """How far one of the worker's readers has got: an outbox event id (``position``), or a
    served time and impression id (``at``, ``key``)."""

    __tablename__ = "feed_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    key: Mapped[str | None] = mapped_column(String(40), nullable=True)
