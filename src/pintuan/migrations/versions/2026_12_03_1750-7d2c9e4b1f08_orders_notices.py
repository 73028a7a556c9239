"""orders and notices: find a payer's payments, count a shopper's unread notifications

Revision ID: 7d2c9e4b1f08
Revises: 7d2c5e8f1a94
Create Date: 2026-12-03 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2c9e4b1f08"
down_revision: str | None = "7d2c5e8f1a94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A friend's orders list the seats they paid for: payments are found by their payer.
    op.create_index("ix_payments_user_id", "payments", ["user_id"])
    # The header's unread badge counts on every page a signed-in shopper opens.
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["user_id"],
        sqlite_where=sa.text("read_at IS NULL"),
        postgresql_where=sa.text("read_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index("ix_payments_user_id", table_name="payments")
