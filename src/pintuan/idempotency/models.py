"""Stored outcomes of POST requests, by caller and ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # The request that claimed the key (a random id): only it may store or release the claim.
    holder: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # NULL while the first request is still running.
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_content_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # While running, the end of the claim's lease; once answered, the end of the answer's TTL.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
