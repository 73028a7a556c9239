"""bargains: a deal's bargain terms, shoppers' bargains and their helpers' cuts

Revision ID: d4e6f8a0b2c5
Revises: c3e5a7b9d1f2
Create Date: 2026-12-04 20:10:00

A merchant gives a deal bargain terms (``bargain_terms``: floor price, helpers needed, hours
open). A shopper opens a bargain (``bargains``, one open per shopper and deal) at the list
price; each helper's cut (``bargain_cuts``, one per helper, device and address of a bargain)
lowers it by the next amount of a schedule derived from the bargain's seed, down to the floor
with the last helper; the owner buys at the price reached (see domain/bargains.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "d4e6f8a0b2c5"
down_revision: str | None = "c3e5a7b9d1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "bargain_terms",
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("floor_amount", sa.BigInteger(), nullable=False),
        sa.Column("helpers", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("floor_amount >= 1", name=op.f("ck_bargain_terms_floor_amount")),
        sa.CheckConstraint("helpers BETWEEN 2 AND 100", name=op.f("ck_bargain_terms_helpers")),
        sa.CheckConstraint("hours BETWEEN 1 AND 168", name=op.f("ck_bargain_terms_hours")),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_bargain_terms_deal_id_deals")
        ),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_bargain_terms")),
    )
    op.create_table(
        "bargains",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_amount", sa.BigInteger(), nullable=False),
        sa.Column("floor_amount", sa.BigInteger(), nullable=False),
        sa.Column("helpers_needed", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("cuts", sa.Integer(), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("expires_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("seat_id", sa.String(length=40), nullable=True),
        sa.Column("bought_price_amount", sa.BigInteger(), nullable=True),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'bought', 'expired')", name=op.f("ck_bargains_status")
        ),
        sa.CheckConstraint(
            "floor_amount >= 1 AND start_amount - floor_amount >= helpers_needed",
            name=op.f("ck_bargains_floor_below_start"),
        ),
        sa.CheckConstraint(
            "cuts BETWEEN 0 AND helpers_needed", name=op.f("ck_bargains_cuts_within_helpers")
        ),
        sa.CheckConstraint(
            "price_amount BETWEEN floor_amount AND start_amount",
            name=op.f("ck_bargains_price_within_range"),
        ),
        sa.CheckConstraint(
            "(seat_id IS NULL) = (bought_price_amount IS NULL)",
            name=op.f("ck_bargains_seat_has_price"),
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_bargains_deal_id_deals")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_bargains_owner_id_users")
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_bargains_seat_id_seats")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bargains")),
    )
    op.create_index(
        "uq_bargains_open_deal_owner",
        "bargains",
        ["deal_id", "owner_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_index("ix_bargains_owner_id_id", "bargains", ["owner_id", "id"])
    op.create_index("ix_bargains_deal_id", "bargains", ["deal_id"])
    op.create_index(
        "ix_bargains_open_expires_at",
        "bargains",
        ["expires_at"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_table(
        "bargain_cuts",
        sa.Column("bargain_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("helper_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("position >= 1", name=op.f("ck_bargain_cuts_position")),
        sa.CheckConstraint("amount >= 1", name=op.f("ck_bargain_cuts_amount")),
        sa.ForeignKeyConstraint(
            ["bargain_id"], ["bargains.id"], name=op.f("fk_bargain_cuts_bargain_id_bargains")
        ),
        sa.ForeignKeyConstraint(
            ["helper_id"], ["users.id"], name=op.f("fk_bargain_cuts_helper_id_users")
        ),
        sa.PrimaryKeyConstraint("bargain_id", "position", name=op.f("pk_bargain_cuts")),
        sa.UniqueConstraint(
            "bargain_id", "helper_id", name=op.f("uq_bargain_cuts_bargain_id_helper_id")
        ),
        sa.UniqueConstraint(
            "bargain_id", "device_hash", name=op.f("uq_bargain_cuts_bargain_id_device_hash")
        ),
        sa.UniqueConstraint(
            "bargain_id", "address_hash", name=op.f("uq_bargain_cuts_bargain_id_address_hash")
        ),
    )
    op.create_index(
        "ix_bargain_cuts_helper_id_created_at", "bargain_cuts", ["helper_id", "created_at"]
    )
    op.create_index(
        "ix_bargain_cuts_address_hash_created_at", "bargain_cuts", ["address_hash", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_bargain_cuts_address_hash_created_at", table_name="bargain_cuts")
    op.drop_index("ix_bargain_cuts_helper_id_created_at", table_name="bargain_cuts")
    op.drop_table("bargain_cuts")
    op.drop_index("ix_bargains_open_expires_at", table_name="bargains")
    op.drop_index("ix_bargains_deal_id", table_name="bargains")
    op.drop_index("ix_bargains_owner_id_id", table_name="bargains")
    op.drop_index("uq_bargains_open_deal_owner", table_name="bargains")
    op.drop_table("bargains")
    op.drop_table("bargain_terms")
