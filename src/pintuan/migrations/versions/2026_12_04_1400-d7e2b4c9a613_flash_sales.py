"""flash sales: a deal that opens at its start and sells one unit to each shopper

Revision ID: d7e2b4c9a613
Revises: c5f1a8d3e902
Create Date: 2026-12-04 14:00:00

A flash sale (秒杀) is a deal with ``flash_sale`` set: its page counts down to ``starts_at``, and
its per-user limit is 1 (checked here as well as by the service).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7e2b4c9a613"
down_revision: str | None = "c5f1a8d3e902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(
            sa.Column("flash_sale", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_check_constraint("flash_sale_one_each", "NOT flash_sale OR per_user_limit = 1")


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_flash_sale_one_each"), type_="check")
        batch.drop_column("flash_sale")
