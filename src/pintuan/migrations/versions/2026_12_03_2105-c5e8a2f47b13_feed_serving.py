"""feed serving: the operators' rules and live policies, the worker's cursors, lookups by viewer

Revision ID: c5e8a2f47b13
Revises: 4b7e1d9c2a63
Create Date: 2026-12-03 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "c5e8a2f47b13"
down_revision: str | None = "4b7e1d9c2a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_config",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_config")),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("key", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feed_cursors")),
    )
    op.create_index(
        "ix_feed_impressions_viewer", "feed_impressions", ["viewer", "served_at"], unique=False
    )
    op.create_index(
        "ix_feed_rewards_unlearnt",
        "feed_rewards",
        ["id"],
        unique=False,
        sqlite_where=sa.text("learnt_at IS NULL"),
        postgresql_where=sa.text("learnt_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_feed_rewards_unlearnt", table_name="feed_rewards")
    op.drop_index("ix_feed_impressions_viewer", table_name="feed_impressions")
    op.drop_table("feed_cursors")
    op.drop_table("feed_config")
