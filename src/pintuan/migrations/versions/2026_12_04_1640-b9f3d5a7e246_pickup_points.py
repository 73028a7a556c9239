"""pickup points: community team leaders' points, pickup deals, and one pickup per seat

Revision ID: b9f3d5a7e246
Revises: a8e2c4f6d135
Create Date: 2026-12-04 16:40:00

A shopper applies to lead a pickup point (``pickup_points``), which operators approve. A deal of
goods may be a pickup deal (``deals.pickup_commission_bps`` and ``deals.pickup_unclaimed_days``,
both set or both null): each seat's shopper chooses a point, and the seat gets a ``pickups`` row
with a code to show there. The leader marks the goods arrived and hands them over by the code,
earning the deal's commission; orders not collected in time are refunded (see
domain/pickups.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "b9f3d5a7e246"
down_revision: str | None = "a8e2c4f6d135"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status IN ('waiting', 'arrived')")


def _sources(sources: str) -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_source"), type_="check")
        batch.create_check_constraint("source", f"source IN ({sources})")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("pickup_commission_bps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pickup_unclaimed_days", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            "pickup_terms",
            "(pickup_commission_bps IS NULL) = (pickup_unclaimed_days IS NULL) AND "
            "(pickup_commission_bps IS NULL OR (pickup_commission_bps BETWEEN 0 AND 3000 "
            "AND pickup_unclaimed_days BETWEEN 1 AND 30))",
        )
    op.create_table(
        "pickup_points",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("leader_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("opening_hours", sa.String(length=200), nullable=False),
        sa.Column("capacity_per_day", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'suspended')",
            name=op.f("ck_pickup_points_status"),
        ),
        sa.CheckConstraint(
            "capacity_per_day BETWEEN 1 AND 10000",
            name=op.f("ck_pickup_points_capacity_per_day"),
        ),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["users.id"], name=op.f("fk_pickup_points_leader_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickup_points")),
    )
    op.create_index("ix_pickup_points_leader_id_id", "pickup_points", ["leader_id", "id"])
    op.create_index("ix_pickup_points_status_id", "pickup_points", ["status", "id"])
    op.create_table(
        "pickups",
        sa.Column("seat_id", sa.String(length=40), nullable=False),
        sa.Column("pickup_point_id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("arrived_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("claim_due_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("handed_over_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("handed_over_by", sa.String(length=40), nullable=True),
        sa.Column("commission_base", sa.BigInteger(), nullable=False),
        sa.Column("commission_amount", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("ended_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'arrived', 'handed_over', 'refunded', 'cancelled')",
            name=op.f("ck_pickups_status"),
        ),
        sa.CheckConstraint(
            "status <> 'handed_over' OR (handed_over_at IS NOT NULL AND handed_over_by IS NOT "
            "NULL AND arrived_at IS NOT NULL)",
            name=op.f("ck_pickups_handed_over_has_who"),
        ),
        sa.CheckConstraint(
            "commission_amount >= 0 AND commission_amount <= commission_base",
            name=op.f("ck_pickups_commission_within_base"),
        ),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_pickups_seat_id_seats")),
        sa.ForeignKeyConstraint(
            ["pickup_point_id"],
            ["pickup_points.id"],
            name=op.f("fk_pickups_pickup_point_id_pickup_points"),
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_pickups_deal_id_deals")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_pickups_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_pickups_user_id_users")),
        sa.PrimaryKeyConstraint("seat_id", name=op.f("pk_pickups")),
        sa.UniqueConstraint("code", name=op.f("uq_pickups_code")),
    )
    op.create_index("ix_pickups_point_day", "pickups", ["pickup_point_id", "day", "seat_id"])
    op.create_index("ix_pickups_user_id_seat_id", "pickups", ["user_id", "seat_id"])
    op.create_index(
        "ix_pickups_open_claim_due_at",
        "pickups",
        ["claim_due_at"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )

    # An order nobody collected is refunded with its own source (payments/refunds.py).
    _sources("'request', 'provider', 'reward', 'lottery', 'pickup'")


def downgrade() -> None:
    op.execute("UPDATE refunds SET source = 'request' WHERE source = 'pickup'")
    _sources("'request', 'provider', 'reward', 'lottery'")
    op.drop_index("ix_pickups_open_claim_due_at", table_name="pickups")
    op.drop_index("ix_pickups_user_id_seat_id", table_name="pickups")
    op.drop_index("ix_pickups_point_day", table_name="pickups")
    op.drop_table("pickups")
    op.drop_index("ix_pickup_points_status_id", table_name="pickup_points")
    op.drop_index("ix_pickup_points_leader_id_id", table_name="pickup_points")
    op.drop_table("pickup_points")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_pickup_terms"), type_="check")
        batch.drop_column("pickup_unclaimed_days")
        batch.drop_column("pickup_commission_bps")
