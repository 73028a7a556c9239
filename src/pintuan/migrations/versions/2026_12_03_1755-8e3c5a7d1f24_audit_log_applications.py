"""audit log, merchant applications: who stopped or approved what and why; requests to sell

Revision ID: 8e3c5a7d1f24
Revises: 7d2c9e4b1f08
Create Date: 2026-12-03 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "8e3c5a7d1f24"
down_revision: str | None = "7d2c9e4b1f08"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_merchant_id_id", ["merchant_id", "id"], unique=False)
        batch_op.create_index("ix_audit_log_target_id_id", ["target_id", "id"], unique=False)

    op.create_table(
        "merchant_applications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("applicant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("pitch", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_merchant_applications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["applicant_id"], ["users.id"], name=op.f("fk_merchant_applications_applicant_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_merchant_applications_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_applications_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_applications")),
    )
    with op.batch_alter_table("merchant_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_merchant_applications_applicant_id"), ["applicant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_merchant_applications_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("merchant_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchant_applications_status"))
        batch_op.drop_index(batch_op.f("ix_merchant_applications_applicant_id"))

    op.drop_table("merchant_applications")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_target_id_id")
        batch_op.drop_index("ix_audit_log_merchant_id_id")

    op.drop_table("audit_log")
