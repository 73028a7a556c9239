"""The feed's log: every slate served (the pool the policy saw, with features, and each slot's
placement and propensity), the rewards that followed, and what each policy has learnt.

A pool's candidates are logged in two parts (``feed.pool_log``): what fixes each one's features,
once in ``feed_candidates``, and in the pool only its id and what depends on the moment and the
viewer; a pool once in ``feed_pools`` for all the slates drawn from it. A slate's placements are
a list in its own row (``feed.slate_log``).

Nothing here names a person: viewers are pseudonyms (a keyed hash), never user ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class FeedImpression(Base):
    """One slate served to one viewer."""

    __tablename__ = "feed_impressions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    served_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    viewer: Mapped[str] = mapped_column(String(64))  # pseudonym
    policy: Mapped[str] = mapped_column(String(40))  # the policy (A/B arm) that drew the slate
    slots: Mapped[int] = mapped_column(Integer)
    # What narrowed the candidates (vertical filter, country, currency, language, location).
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The viewer's history vector (domain.feed.VIEWER_FEATURES order).
    viewer_features: Mapped[list[float]] = mapped_column(JSON)
    # The pool the policy saw, when its slates share it: its ``feed_pools`` row (and ``pool``
    # is then empty). Slates logged before feed_pools have their own pool in ``pool``.
    pool_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The candidates the policy saw: [[feed_candidates.id, time_left, distance], ...]; slates
    # logged before feed_candidates: [{"kind", "id", "vertical", "merchant_id", "features"}].
    pool: Mapped[list[Any]] = mapped_column(JSON)
    # The operators' rules in force (domain.feed.Rules as JSON), for replaying the draw.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Each slot served: [[position, kind, item_id, vertical, merchant_id, propensity, reason],
    # ...] (feed.slate_log reads it). Slates logged before had a row a slot in feed_placements,
    # moved here by the migration that made this column.
    placements: Mapped[list[Any]] = mapped_column(JSON, server_default=text("'[]'"))

    # A viewer's latest slates: their history, and the slate a join or payment is credited to.
    __table_args__ = (Index("ix_feed_impressions_viewer", "viewer", "served_at"),)


class FeedPool(Base):
    """A pool of candidates as the policy saw it, logged once for every slate drawn from it
    (the slates of one second that ask the same thing share their pool: ``feed.serving``)."""

    __tablename__ = "feed_pools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # [[feed_candidates.id, time_left, distance], ...]
    entries: Mapped[list[Any]] = mapped_column(JSON)


class FeedCandidate(Base):
    """A candidate as the slates that saw it log it, once: all but its ``time_left`` and
    ``distance`` (0 here; each slate's pool gives its own), under a digest of the rest."""

    __tablename__ = "feed_candidates"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(40))
    vertical: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[str] = mapped_column(String(40))
    # In domain.feed.CANDIDATE_FEATURES order.
    features: Mapped[list[float]] = mapped_column(JSON)


class FeedReward(Base):
    """Something a viewer did after a slate showed them an item: ``click``, ``join`` (started or
    joined a team), ``pay`` or ``team_success``; once each per slot."""

    __tablename__ = "feed_rewards"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    impression_id: Mapped[str] = mapped_column(
        ForeignKey("feed_impressions.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The worker's online learning marks what it has taught the policies.
    learnt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        Index("ux_feed_rewards_once", "impression_id", "position", "event", unique=True),
        # The worker's learning reads the rewards it has not taught yet.
        Index(
            "ix_feed_rewards_unlearnt",
            "id",
            sqlite_where=text("learnt_at IS NULL"),
            postgresql_where=text("learnt_at IS NULL"),
        ),
    )


class FeedModel(Base):
    """What a policy has learnt (its JSON state), loaded by every serving process."""

    __tablename__ = "feed_models"

    policy: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
