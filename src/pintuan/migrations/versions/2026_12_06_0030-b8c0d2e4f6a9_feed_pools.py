"""feed pools: a pool logged once for all the slates drawn from it

Revision ID: b8c0d2e4f6a9
Revises: a7b9c1d3e5f8
Create Date: 2026-12-06 00:30:00

The slates of one second that ask the same thing share their pool; each slate wrote it again
(about 1.5 KB of the 6.5 KB a slate costs). Now the pool is written once, in ``feed_pools``, and
a slate names it in ``feed_impressions.pool_id`` (its ``pool`` then empty). Slates logged before
keep their own pools, and the readers take both. Going back down writes each named pool back
into its slates, then drops the column and the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "b8c0d2e4f6a9"
down_revision: str | None = "a7b9c1d3e5f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_pools",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_pools")),
    )
    op.create_index(op.f("ix_feed_pools_created_at"), "feed_pools", ["created_at"], unique=False)
    op.add_column("feed_impressions", sa.Column("pool_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.execute(
        "UPDATE feed_impressions SET pool = "
        "(SELECT p.entries FROM feed_pools p WHERE p.id = feed_impressions.pool_id) "
        "WHERE pool_id IS NOT NULL"
    )
    with op.batch_alter_table("feed_impressions") as batch:
        batch.drop_column("pool_id")
    op.drop_index(op.f("ix_feed_pools_created_at"), table_name="feed_pools")
    op.drop_table("feed_pools")
