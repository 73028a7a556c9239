"""referral commissions and wallet withdrawals

Revision ID: a8e2c4f6d135
Revises: f1b8d3a6c247
Create Date: 2026-12-04 16:30:00

A deal may pay ``referral_commission_bps`` of what a seat paid to the shopper whose share brought
it. Each such seat gets one ``commissions`` row, frozen until its order can no longer be
refunded, then released to the sharer's wallet (or clawed back, in whole or part, by refunds
before that). A payout is now either a merchant's (``merchant_id``) or a withdrawal from a
shopper's wallet (``user_id``, with where to send it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a8e2c4f6d135"
down_revision: str | None = "f1b8d3a6c247"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FROZEN = sa.text("status = 'frozen'")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(
            sa.Column(
                "referral_commission_bps",
                sa.Integer(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.create_check_constraint(
            "referral_commission_bps", "referral_commission_bps BETWEEN 0 AND 3000"
        )
    op.create_table(
        "commissions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seat_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("sharer_id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("share_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("clawed_back", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("moves", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('frozen', 'released', 'clawed_back')", name=op.f("ck_commissions_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_commissions_amount_positive")),
        sa.CheckConstraint(
            "clawed_back BETWEEN 0 AND amount", name=op.f("ck_commissions_clawed_back")
        ),
        sa.ForeignKeyConstraint(
            ["seat_id"], ["seats.id"], name=op.f("fk_commissions_seat_id_seats")
        ),
        sa.ForeignKeyConstraint(
            ["sharer_id"], ["users.id"], name=op.f("fk_commissions_sharer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_commissions_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commissions")),
        sa.UniqueConstraint("seat_id", name=op.f("uq_commissions_seat_id")),
    )
    op.create_index("ix_commissions_sharer_id", "commissions", ["sharer_id", "id"])
    op.create_index("ix_commissions_merchant_id", "commissions", ["merchant_id", "id"])
    op.create_index(
        "ix_commissions_frozen",
        "commissions",
        ["id"],
        sqlite_where=_FROZEN,
        postgresql_where=_FROZEN,
    )
    op.create_index("ix_share_conversions_deal_id_kind", "share_conversions", ["deal_id", "kind"])
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column("merchant_id", existing_type=sa.String(length=40), nullable=True)
        batch.add_column(sa.Column("user_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("destination", sa.String(length=200), nullable=True))
        batch.create_foreign_key(op.f("fk_payouts_user_id_users"), "users", ["user_id"], ["id"])
        batch.create_check_constraint("one_payee", "(merchant_id IS NULL) <> (user_id IS NULL)")
    op.create_index("ix_payouts_user_id", "payouts", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_payouts_user_id", table_name="payouts")
    op.execute("DELETE FROM payouts WHERE user_id IS NOT NULL")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_constraint(op.f("ck_payouts_one_payee"), type_="check")
        batch.drop_constraint(op.f("fk_payouts_user_id_users"), type_="foreignkey")
        batch.drop_column("destination")
        batch.drop_column("user_id")
        batch.alter_column("merchant_id", existing_type=sa.String(length=40), nullable=False)
    op.drop_index("ix_share_conversions_deal_id_kind", table_name="share_conversions")
    op.drop_index("ix_commissions_frozen", table_name="commissions")
    op.drop_index("ix_commissions_merchant_id", table_name="commissions")
    op.drop_index("ix_commissions_sharer_id", table_name="commissions")
    op.drop_table("commissions")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_referral_commission_bps"), type_="check")
        batch.drop_column("referral_commission_bps")
