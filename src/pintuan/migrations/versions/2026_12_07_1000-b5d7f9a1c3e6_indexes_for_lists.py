"""indexes for lists: the operators' queues by id, an order's disputes, an OAuth grant's tokens

Revision ID: b5d7f9a1c3e6
Revises: a3c5e7f9b1d4
Create Date: 2026-12-07 10:00:00

Read from the plans of the ORM's statements over the feature suite (SQLite, which has no
statistics to plan with): the payments and refunds queues, listed in id order, were read by
walking every payment (every refund) by id, their partial indexes being on when each was
queued; an order's disputes and a revoked grant's tokens were found by reading every dispute and
every token. The queues' partial indexes are now on the id, with the same predicate.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5d7f9a1c3e6"
down_revision: str | None = "a3c5e7f9b1d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUED = "queued_at IS NOT NULL AND resolved_at IS NULL"


def _queue_index(table: str, column: str) -> None:
    op.drop_index(f"ix_{table}_queue", table_name=table)
    op.create_index(
        f"ix_{table}_queue",
        table,
        [column],
        unique=False,
        sqlite_where=sa.text(_QUEUED),
        postgresql_where=sa.text(_QUEUED),
    )


def upgrade() -> None:
    _queue_index("payments", "id")
    _queue_index("refunds", "id")
    op.create_index("ix_disputes_seat_id", "disputes", ["seat_id"], unique=False)
    op.create_index("ix_oauth_tokens_code_id", "oauth_tokens", ["code_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_oauth_tokens_code_id", table_name="oauth_tokens")
    op.drop_index("ix_disputes_seat_id", table_name="disputes")
    _queue_index("refunds", "queued_at")
    _queue_index("payments", "queued_at")
