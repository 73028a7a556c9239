"""Shares, the visits they bring, the orders attributed to them, and who brought whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.domain.traffic import CHANNEL_LENGTH
from pintuan.kit.orm import Base, UtcDateTime

CHANNELS = (
    "wechat",
    "whatsapp",
    "line",
    "telegram",
    "facebook",
    "x",
    "sms",
    "email",
    "copy",
    "qr",
    "other",
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Share(Base):
    """A link, copy-paste token or poster one shopper made for a team or a deal, or the deep
    link of an outside app (channel ``app:<app id>``, no sharer; see ``pintuan.partners``).

    Deleting a share from the sharer's history forgets who made it (``sharer_id`` becomes
    NULL) but keeps the row, so the visits and orders it brought stay in every aggregate.
    """

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    sharer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    target: Mapped[str] = mapped_column(String(8))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("shares.id"), nullable=True)
    country: Mapped[str] = mapped_column(String(2))
    # The copy-paste token of a team share; it stops resolving when the team's window ends.
    token: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("target IN ('team', 'deal')", name="target"),
        CheckConstraint(f"{_one_of('channel', CHANNELS)} OR channel LIKE 'app:%'", name="channel"),
        CheckConstraint(
            "(target = 'team' AND team_id IS NOT NULL) OR (target = 'deal' AND team_id IS NULL)",
            name="target_matches_team",
        ),
        Index("ix_shares_sharer_id_id", "sharer_id", "id"),
        Index("ix_shares_created_at", "created_at"),
        Index("ix_shares_team_id", "team_id"),
    )


class ShareVisit(Base):
    """One opening of a share (its link, or its token resolved). Bots and the sharer's own
    visits are kept, flagged, so that what was excluded can be counted too."""

    __tablename__ = "share_visits"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    share_id: Mapped[str] = mapped_column(ForeignKey("shares.id"))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    visitor_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    via: Mapped[str] = mapped_column(String(8))
    ua_class: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    is_bot: Mapped[bool] = mapped_column(Boolean)
    is_self: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("via IN ('link', 'token')", name="via"),
        Index("ix_share_visits_visitor_id_at", "visitor_id", "at"),
        Index("ix_share_visits_user_id_at", "user_id", "at"),
        Index("ix_share_visits_share_id", "share_id"),
        Index("ix_share_visits_at", "at"),
    )


class VisitorLink(Base):
    """A visitor id seen with a signed-in user: that user's visits made before signing in."""

    __tablename__ = "visitor_links"

    visitor_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_visitor_links_user_id", "user_id"),)


class ShareConversion(Base):
    """An order step credited to a share: the order's start or join, its payment, its team's
    success. One of each kind per seat."""

    __tablename__ = "share_conversions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    share_id: Mapped[str] = mapped_column(ForeignKey("shares.id"))
    visit_id: Mapped[str] = mapped_column(ForeignKey("share_visits.id"))
    kind: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("kind IN ('start', 'join', 'pay', 'success')", name="kind"),
        UniqueConstraint("seat_id", "kind"),
        Index("ix_share_conversions_share_id", "share_id"),
        Index("ix_share_conversions_occurred_at", "occurred_at"),
        # A deal's successes, for its referral commissions (``ledger.commissions``).
        Index("ix_share_conversions_deal_id_kind", "deal_id", "kind"),
    )


class Invite(Base):
    """Who brought whom: a shopper's first order credited to another shopper's share."""

    __tablename__ = "invites"

    invitee_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    inviter_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    share_id: Mapped[str] = mapped_column(ForeignKey("shares.id"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_invites_inviter_id", "inviter_id"),)


class AttributionCursor(Base):
    """How far attribution has read the outbox: every event up to ``last_event_id`` is done."""

    __tablename__ = "attribution_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
