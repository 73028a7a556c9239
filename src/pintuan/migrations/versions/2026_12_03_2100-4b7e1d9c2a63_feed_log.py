"""feed log: slates served with the pool and propensities, rewards, policies' learnt state

Revision ID: 4b7e1d9c2a63
Revises: 6a2d9e4b7c18
Create Date: 2026-12-03 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "4b7e1d9c2a63"
down_revision: str | None = "6a2d9e4b7c18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_impressions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("served_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("viewer", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(40), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("viewer_features", sa.JSON(), nullable=False),
        sa.Column("pool", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_impressions")),
    )
    op.create_index(
        op.f("ix_feed_impressions_served_at"), "feed_impressions", ["served_at"], unique=False
    )
    op.create_table(
        "feed_placements",
        sa.Column("impression_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("item_id", sa.String(40), nullable=False),
        sa.Column("vertical", sa.String(16), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["impression_id"],
            ["feed_impressions.id"],
            name=op.f("fk_feed_placements_impression_id_feed_impressions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("impression_id", "position", name=op.f("pk_feed_placements")),
    )
    op.create_table(
        "feed_rewards",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("impression_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("learnt_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["impression_id"],
            ["feed_impressions.id"],
            name=op.f("fk_feed_rewards_impression_id_feed_impressions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_rewards")),
    )
    op.create_index(
        "ux_feed_rewards_once",
        "feed_rewards",
        ["impression_id", "position", "event"],
        unique=True,
    )
    op.create_table(
        "feed_models",
        sa.Column("policy", sa.String(40), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("policy", name=op.f("pk_feed_models")),
    )


def downgrade() -> None:
    op.drop_table("feed_models")
    op.drop_index("ux_feed_rewards_once", table_name="feed_rewards")
    op.drop_table("feed_rewards")
    op.drop_table("feed_placements")
    op.drop_index(op.f("ix_feed_impressions_served_at"), table_name="feed_impressions")
    op.drop_table("feed_impressions")
