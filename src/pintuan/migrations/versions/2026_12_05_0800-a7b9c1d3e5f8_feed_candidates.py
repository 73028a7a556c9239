"""feed candidates: each candidate's fixed part logged once, not with every slate

Revision ID: a7b9c1d3e5f8
Revises: f6a8b0c2d4e7
Create Date: 2026-12-05 08:00:00

A slate's pool now names its candidates by id, with only their ``time_left`` and ``distance``;
the rest of each candidate is in ``feed_candidates``. Slates logged before keep their pools as
they were, and the readers take both. Going back down drops the table: the slates logged in the
new format are then skipped by evaluation and learning, as logs of another version.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7b9c1d3e5f8"
down_revision: str | None = "f6a8b0c2d4e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_candidates",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("vertical", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_candidates")),
    )


def downgrade() -> None:
    op.drop_table("feed_candidates")
