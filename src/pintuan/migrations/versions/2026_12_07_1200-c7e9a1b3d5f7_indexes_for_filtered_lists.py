"""indexes for filtered lists: merchants and apps of one status, the operators' withdrawals

Revision ID: c7e9a1b3d5f7
Revises: b5d7f9a1c3e6
Create Date: 2026-12-07 12:00:00

Read from the plans of every statement the routes send (the access matrix's walk, SQLite): the
public directory of approved merchants, the operators' applications and their apps to review
were found by walking every merchant (every app) newest first until a page of that status was
found, and the operators' withdrawals by walking every payout, merchants' settlements included.
Each is now found through an index of its own, a page at a time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7e9a1b3d5f7"
down_revision: str | None = "b5d7f9a1c3e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITHDRAWAL = "user_id IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_merchants_status_id", "merchants", ["status", "id"], unique=False)
    op.create_index("ix_apps_status_id", "apps", ["status", "id"], unique=False)
    for name, columns in (
        ("ix_payouts_withdrawals", ["id"]),
        ("ix_payouts_withdrawals_status", ["status", "id"]),
    ):
        op.create_index(
            name,
            "payouts",
            columns,
            unique=False,
            sqlite_where=sa.text(_WITHDRAWAL),
            postgresql_where=sa.text(_WITHDRAWAL),
        )


def downgrade() -> None:
    op.drop_index("ix_payouts_withdrawals_status", table_name="payouts")
    op.drop_index("ix_payouts_withdrawals", table_name="payouts")
    op.drop_index("ix_apps_status_id", table_name="apps")
    op.drop_index("ix_merchants_status_id", table_name="merchants")
