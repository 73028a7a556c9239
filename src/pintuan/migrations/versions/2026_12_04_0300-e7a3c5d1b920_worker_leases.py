"""many workers: leases on swept seats and teams, and a lease row per one-at-a-time job

Revision ID: e7a3c5d1b920
Revises: 9c4e2b7a5d31
Create Date: 2026-12-04 03:00:00

A worker claims the seats and teams it will end by setting their ``lease_until`` (``kit.claims``);
another worker passes them over until it runs out. ``worker_leases`` holds one row per job that
must run on one worker at a time (the outbox cursors, the roll-up, housekeeping).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "e7a3c5d1b920"
down_revision: str | None = "9c4e2b7a5d31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no row on either engine.
    with op.batch_alter_table("seats") as batch:
        batch.add_column(sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True))
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(120), nullable=False),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_leases")),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("lease_until")
    with op.batch_alter_table("seats") as batch:
        batch.drop_column("lease_until")
