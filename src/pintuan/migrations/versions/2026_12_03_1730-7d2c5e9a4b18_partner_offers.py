"""partner offers: deals an app publishes (its external id, category, location, validity), and
app deep links as a growth channel

Revision ID: 7d2c5e9a4b18
Revises: 7d2c9e4b1a85
Create Date: 2026-12-03 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "7d2c5e9a4b18"
down_revision: str | None = "7d2c9e4b1a85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARING_CHANNELS = (
    "channel IN ('wechat', 'whatsapp', 'line', 'telegram', 'facebook', 'x', 'sms', 'email', "
    "'copy', 'qr', 'other')"
)
CHANNEL_TABLES = ("shares", "invites", "growth_daily", "growth_samples")


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("app_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("location_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("location_address", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("location_lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("location_lon", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("valid_from", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("valid_until", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(batch_op.f("fk_deals_app_id_apps"), "apps", ["app_id"], ["id"])
        batch_op.create_unique_constraint(
            batch_op.f("uq_deals_app_id_merchant_id_external_id"),
            ["app_id", "merchant_id", "external_id"],
        )
        batch_op.create_check_constraint("offer_of_app", "(app_id IS NULL) = (external_id IS NULL)")
        batch_op.create_check_constraint(
            "valid_until_after_from",
            "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from",
        )
    for table in CHANNEL_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "channel",
                existing_type=sa.String(length=16),
                type_=sa.String(length=48),
                existing_nullable=False,
            )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_shares_channel"), type_="check")
        batch_op.create_check_constraint("channel", f"{SHARING_CHANNELS} OR channel LIKE 'app:%'")


def downgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_shares_channel"), type_="check")
        batch_op.create_check_constraint("channel", SHARING_CHANNELS)
    for table in CHANNEL_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "channel",
                existing_type=sa.String(length=48),
                type_=sa.String(length=16),
                existing_nullable=False,
            )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deals_valid_until_after_from"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_deals_offer_of_app"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("uq_deals_app_id_merchant_id_external_id"), type_="unique"
        )
        batch_op.drop_constraint(batch_op.f("fk_deals_app_id_apps"), type_="foreignkey")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("valid_from")
        batch_op.drop_column("location_lon")
        batch_op.drop_column("location_lat")
        batch_op.drop_column("location_address")
        batch_op.drop_column("location_name")
        batch_op.drop_column("category")
        batch_op.drop_column("external_id")
        batch_op.drop_column("app_id")
