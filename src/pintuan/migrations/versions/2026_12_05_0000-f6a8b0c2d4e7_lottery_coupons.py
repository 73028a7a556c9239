"""lottery coupons: what a lottery's losers get besides their full refund

Revision ID: f6a8b0c2d4e7
Revises: e5f7a9b1c3d4
Create Date: 2026-12-05 00:00:00

A lottery deal may give each seat its draws do not pick a coupon (``deals.lottery_coupon_amount``
off one later seat at the merchant, valid ``deals.lottery_coupon_days``), kept in ``coupons``.
A coupon applied to a seat lowers its price (``seats.coupon_id``); it is on one live seat at most.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "f6a8b0c2d4e7"
down_revision: str | None = "e5f7a9b1c3d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE_COUPON = sa.text("coupon_id IS NOT NULL AND status IN ('held', 'paid', 'confirmed')")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("lottery_coupon_amount", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("lottery_coupon_days", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            "lottery_coupon",
            "(lottery_coupon_amount IS NULL) = (lottery_coupon_days IS NULL) AND "
            "(lottery_coupon_amount IS NULL OR (lottery_winners IS NOT NULL "
            "AND lottery_coupon_amount BETWEEN 1 AND group_price_amount - 1 "
            "AND lottery_coupon_days BETWEEN 1 AND 365))",
        )
    with op.batch_alter_table("seats") as batch:
        batch.add_column(sa.Column("coupon_id", sa.String(length=40), nullable=True))
    op.create_index(
        "uq_seats_coupon_id_live",
        "seats",
        ["coupon_id"],
        unique=True,
        sqlite_where=_LIVE_COUPON,
        postgresql_where=_LIVE_COUPON,
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_seat_id", sa.String(length=40), nullable=False),
        sa.Column("issued_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("seat_id", sa.String(length=40), nullable=True),
        sa.Column("applied_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_coupons_amount_positive")),
        sa.CheckConstraint("source IN ('lottery')", name=op.f("ck_coupons_source")),
        sa.CheckConstraint(
            "(seat_id IS NULL) = (applied_at IS NULL)", name=op.f("ck_coupons_applied")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_coupons_owner_id_users")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_coupons_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["source_seat_id"], ["seats.id"], name=op.f("fk_coupons_source_seat_id_seats")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_coupons_seat_id_seats")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("source_seat_id", name=op.f("uq_coupons_source_seat_id")),
    )
    op.create_index("ix_coupons_owner_id_id", "coupons", ["owner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_coupons_owner_id_id", table_name="coupons")
    op.drop_table("coupons")
    op.drop_index("uq_seats_coupon_id_live", table_name="seats")
    with op.batch_alter_table("seats") as batch:
        batch.drop_column("coupon_id")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_lottery_coupon"), type_="check")
        batch.drop_column("lottery_coupon_days")
        batch.drop_column("lottery_coupon_amount")
