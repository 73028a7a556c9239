"""vouchers: a local-services deal's voucher terms, and one voucher per successful seat

Revision ID: c5f1a8d3e902
Revises: b3d9e6f2a471
Create Date: 2026-12-04 13:03:16

A deal in the food, movies, travel or local-services vertical may issue vouchers (``deals.voucher``,
its terms as JSON). Each confirmed seat of its successful teams gets a voucher with a code to
redeem at the counter; unused vouchers are refunded when they expire (see domain/vouchers.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "c5f1a8d3e902"
down_revision: str | None = "b3d9e6f2a471"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seat_id", sa.String(length=40), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("settle_on", sa.String(length=10), nullable=False),
        sa.Column("refund_anytime", sa.Boolean(), nullable=False),
        sa.Column("locations", sa.JSON(), nullable=False),
        sa.Column("valid_from", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.String(length=40), nullable=True),
        sa.Column("redeemed_via", sa.String(length=10), nullable=True),
        sa.Column("redeemed_location", sa.String(length=200), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("ended_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("moves", sa.Integer(), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "redeemed_via IS NULL OR redeemed_via IN ('console', 'api', 'app')",
            name=op.f("ck_vouchers_redeemed_via"),
        ),
        sa.CheckConstraint(
            "settle_on IN ('redemption', 'success')", name=op.f("ck_vouchers_settle_on")
        ),
        sa.CheckConstraint(
            "status <> 'redeemed' OR (redeemed_at IS NOT NULL AND redeemed_by IS NOT NULL AND redeemed_via IS NOT NULL)",
            name=op.f("ck_vouchers_redeemed_has_who"),
        ),
        sa.CheckConstraint(
            "status IN ('issued', 'redeemed', 'refunded', 'expired')",
            name=op.f("ck_vouchers_status"),
        ),
        sa.CheckConstraint(
            "expires_at > valid_from", name=op.f("ck_vouchers_expires_after_valid_from")
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_vouchers_deal_id_deals")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_vouchers_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_vouchers_seat_id_seats")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_vouchers_team_id_teams")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_vouchers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("code", name=op.f("uq_vouchers_code")),
        sa.UniqueConstraint("seat_id", name=op.f("uq_vouchers_seat_id")),
    )
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vouchers_issued_expires_at",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'issued'"),
            postgresql_where=sa.text("status = 'issued'"),
        )
        batch_op.create_index("ix_vouchers_merchant_id_id", ["merchant_id", "id"], unique=False)
        batch_op.create_index("ix_vouchers_user_id_id", ["user_id", "id"], unique=False)

    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voucher", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_column("voucher")

    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.drop_index("ix_vouchers_user_id_id")
        batch_op.drop_index("ix_vouchers_merchant_id_id")
        batch_op.drop_index(
            "ix_vouchers_issued_expires_at",
            sqlite_where=sa.text("status = 'issued'"),
            postgresql_where=sa.text("status = 'issued'"),
        )

    op.drop_table("vouchers")
