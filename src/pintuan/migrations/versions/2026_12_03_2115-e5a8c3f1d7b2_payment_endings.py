"""payment endings: deadlines, the provider's end of a hold, end reasons, the operators' queue
and each payment's history of attempts

Revision ID: e5a8c3f1d7b2
Revises: 9c4f2b7e5d31
Create Date: 2026-12-03 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "e5a8c3f1d7b2"
down_revision: str | None = "9c4f2b7e5d31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "'requires_action', 'authorized', 'captured', 'voided', 'charged', 'refunded', 'failed'"
_QUEUED = "queued_at IS NOT NULL AND resolved_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_deadline", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("capture_before", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("taken_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("queued_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.String(length=20), nullable=True))
        batch_op.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({_STATUSES}, 'expired')")
        batch_op.create_check_constraint(
            "end_reason",
            "end_reason IS NULL OR end_reason IN ('capture_failed', 'hold_expired', "
            "'amount_mismatch', 'refund_failed', 'void_failed', 'no_news')",
        )
        batch_op.create_check_constraint(
            "taken_amount_positive", "taken_amount IS NULL OR taken_amount > 0"
        )
        batch_op.create_index(
            "ix_payments_queue",
            ["queued_at"],
            unique=False,
            sqlite_where=sa.text(_QUEUED),
            postgresql_where=sa.text(_QUEUED),
        )
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_attempts_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
    )
    op.create_index(
        "ix_payment_attempts_payment_id", "payment_attempts", ["payment_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_payment_id", table_name="payment_attempts")
    op.drop_table("payment_attempts")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_queue")
        batch_op.drop_constraint(op.f("ck_payments_taken_amount_positive"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_end_reason"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({_STATUSES})")
        for column in (
            "resolution",
            "resolved_at",
            "queued_at",
            "end_reason",
            "taken_amount",
            "capture_before",
            "call_deadline",
        ):
            batch_op.drop_column(column)
