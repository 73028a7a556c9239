"""refunds after success and disputes: their tables, and what a payment's refunds took back

Revision ID: 9c4e2a7b5d31
Revises: e5a8c3f1d7b2
Create Date: 2026-12-03 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "9c4e2a7b5d31"
down_revision: str | None = "e5a8c3f1d7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("refunded_amount", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("seat_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("merchant_part", sa.BigInteger(), nullable=False),
        sa.Column("fee_part", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("destination", sa.String(10), nullable=False),
        sa.Column("requested_by", sa.String(40), nullable=True),
        sa.Column("provider_ref", sa.String(120), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_refunds_status")
        ),
        sa.CheckConstraint("source IN ('request', 'provider')", name=op.f("ck_refunds_source")),
        sa.CheckConstraint(
            "destination IN ('original', 'wallet')", name=op.f("ck_refunds_destination")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint(
            "merchant_part >= 0 AND fee_part >= 0 AND merchant_part + fee_part = amount",
            name=op.f("ck_refunds_parts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_refunds_seat_id_seats")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_refunds_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_refunds_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint(
            "provider", "provider_ref", name=op.f("uq_refunds_provider_provider_ref")
        ),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"], unique=False)
    op.create_index("ix_refunds_seat_id", "refunds", ["seat_id"], unique=False)
    op.create_index(
        "ix_refunds_due",
        "refunds",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("seat_id", sa.String(40), nullable=True),
        sa.Column("merchant_id", sa.String(40), nullable=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("provider_ref", sa.String(120), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f("ck_disputes_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_disputes_amount_positive")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_disputes_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_disputes_seat_id_seats")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_disputes_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint(
            "provider", "provider_ref", name=op.f("uq_disputes_provider_provider_ref")
        ),
    )
    op.create_index("ix_disputes_payment_id", "disputes", ["payment_id"], unique=False)
    op.create_index("ix_disputes_merchant_id", "disputes", ["merchant_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_disputes_merchant_id", table_name="disputes")
    op.drop_index("ix_disputes_payment_id", table_name="disputes")
    op.drop_table("disputes")
    op.drop_index("ix_refunds_due", table_name="refunds")
    op.drop_index("ix_refunds_seat_id", table_name="refunds")
    op.drop_index("ix_refunds_payment_id", table_name="refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("refunded_amount")
