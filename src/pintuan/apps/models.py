"""Outside apps registered by developers and reviewed by operators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    homepage: Mapped[str] = mapped_column(String(500))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    # What the app asks for; a grant may give less, never more.
    scopes: Mapped[list[str]] = mapped_column(JSON)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    webhook_events: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'suspended')", name="status"),
    )


class AppInstallation(Base):
    """A merchant's staff authorised an app for their shop: what it may do there, until revoked.

    Offers an app publishes become deals of these shops, and the events it hears are theirs.
    """

    __tablename__ = "app_installations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    installed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("app_id", "merchant_id"),)
