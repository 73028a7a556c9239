"""indexes for two statements that read a whole table

Revision ID: d0e2f4a6b8c1
Revises: c9d1e3f5a7b0
Create Date: 2026-12-07 02:00:00

Read from SQLite's plan of every raw statement (a test now does so): telling the operators of a
payment that ended badly read every user to find them (``ix_users_role_id`` also serves the
operators' user directory filtered by role), and a coupon's check that its seat was not bought
by a bargain read every bargain (``ix_bargains_seat_id``, only the bargains that bought).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d0e2f4a6b8c1"
down_revision: str | None = "c9d1e3f5a7b0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BOUGHT = sa.text("seat_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_users_role_id", "users", ["role", "id"])
    op.create_index(
        "ix_bargains_seat_id",
        "bargains",
        ["seat_id"],
        sqlite_where=_BOUGHT,
        postgresql_where=_BOUGHT,
    )


def downgrade() -> None:
    op.drop_index("ix_bargains_seat_id", table_name="bargains")
    op.drop_index("ix_users_role_id", table_name="users")
