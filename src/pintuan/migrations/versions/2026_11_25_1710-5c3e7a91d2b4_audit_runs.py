"""audit runs: the results of each invariant audit, for the operator console

Revision ID: 5c3e7a91d2b4
Revises: a1e5d9c20b7f
Create Date: 2026-11-25 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "5c3e7a91d2b4"
down_revision: str | None = "a1e5d9c20b7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("ran_by", sa.String(length=40), nullable=True),
        sa.Column("started_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("breach_count", sa.Integer(), nullable=False),
        sa.Column("breaches", sa.JSON(), nullable=False),
        sa.CheckConstraint("breach_count >= 0", name=op.f("ck_audit_runs_breach_count")),
        sa.CheckConstraint("source IN ('console', 'cli')", name=op.f("ck_audit_runs_source")),
        sa.ForeignKeyConstraint(
            ["ran_by"], ["users.id"], name=op.f("fk_audit_runs_ran_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_runs")),
    )


def downgrade() -> None:
    op.drop_table("audit_runs")
