"""fulfilment: the shoppers' address books and the shipment of each seat of goods

Revision ID: 7d2c5e8f1a94
Revises: 7d2c5e9a4b18
Create Date: 2026-12-03 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "7d2c5e8f1a94"
down_revision: str | None = "7d2c5e9a4b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("postcode", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=80), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("district", sa.String(length=80), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_addresses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.create_index("ix_addresses_user_id_id", ["user_id", "id"], unique=False)
        batch_op.create_index(
            "uq_addresses_user_id_default",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.create_table(
        "shipments",
        sa.Column("seat_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("address_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=True),
        sa.Column("tracking_number", sa.String(length=40), nullable=True),
        sa.Column("shipped_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("shipped_by", sa.String(length=40), nullable=True),
        sa.Column("receive_due_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_by", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "received_by IS NULL OR received_by IN ('shopper', 'auto')",
            name=op.f("ck_shipments_received_by"),
        ),
        sa.CheckConstraint(
            "status <> 'received' OR (received_at IS NOT NULL AND received_by IS NOT NULL)",
            name=op.f("ck_shipments_received_has_time"),
        ),
        sa.CheckConstraint(
            "status = 'addressed' OR (carrier IS NOT NULL AND tracking_number IS NOT NULL AND shipped_at IS NOT NULL AND receive_due_at IS NOT NULL)",
            name=op.f("ck_shipments_shipped_has_tracking"),
        ),
        sa.CheckConstraint(
            "status IN ('addressed', 'shipped', 'received')", name=op.f("ck_shipments_status")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_shipments_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_shipments_seat_id_seats")),
        sa.ForeignKeyConstraint(
            ["shipped_by"], ["users.id"], name=op.f("fk_shipments_shipped_by_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_shipments_user_id_users")),
        sa.PrimaryKeyConstraint("seat_id", name=op.f("pk_shipments")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_shipments_merchant_id_status", ["merchant_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_shipments_shipped_receive_due_at",
            ["receive_due_at"],
            unique=False,
            sqlite_where=sa.text("status = 'shipped'"),
            postgresql_where=sa.text("status = 'shipped'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_shipments_shipped_receive_due_at",
            sqlite_where=sa.text("status = 'shipped'"),
            postgresql_where=sa.text("status = 'shipped'"),
        )
        batch_op.drop_index("ix_shipments_merchant_id_status")

    op.drop_table("shipments")
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_addresses_user_id_default",
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )
        batch_op.drop_index("ix_addresses_user_id_id")

    op.drop_table("addresses")
