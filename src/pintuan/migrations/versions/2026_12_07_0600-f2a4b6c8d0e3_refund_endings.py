"""refund endings: a refund after success that its provider refused, or that ran out of attempts
or time, waits in the operators' queue

Revision ID: f2a4b6c8d0e3
Revises: e1f3a5b7c9d2
Create Date: 2026-12-07 06:00:00

A refund after success owed at its provider was retried with backoff for ever: a refusal
(a charge too old to refund, a trade closed) was asked again every hour, and nobody was told.
Now each refund has a deadline from its first failure and the same cap of attempts as a
payment's calls; past either, or on the provider's refusal, it stops being asked and waits for
an operator (``queued_at``), who retries it or, on the provider's word that it was not made,
pays it into the payer's wallet (``resolution``, ``resolved_by``). It stays ``pending``
meanwhile: the money is still owed to the payer. The provider's news that a refund did not
reach the payer (a closed card) was ignored too; now the refund is owed again
(``last_outcome = 'returned'``) and waits there for the wallet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "f2a4b6c8d0e3"
down_revision: str | None = "e1f3a5b7c9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUED = "queued_at IS NOT NULL AND resolved_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_deadline", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_outcome", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("queued_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_refunds_resolved_by_users"), "users", ["resolved_by"], ["id"]
        )
        batch_op.create_check_constraint(
            "last_outcome",
            "last_outcome IS NULL OR last_outcome IN ('failed', 'refused', 'returned')",
        )
        batch_op.create_check_constraint(
            "resolution", "resolution IS NULL OR resolution IN ('retry', 'wallet')"
        )
        batch_op.create_index(
            "ix_refunds_queue",
            ["queued_at"],
            unique=False,
            sqlite_where=sa.text(_QUEUED),
            postgresql_where=sa.text(_QUEUED),
        )


def downgrade() -> None:
    # A refund waiting for an operator is owed again, as it was before: due at once.
    op.execute(
        "UPDATE refunds SET next_attempt_at = queued_at "
        "WHERE status = 'pending' AND next_attempt_at IS NULL AND queued_at IS NOT NULL"
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_queue")
        batch_op.drop_constraint(op.f("ck_refunds_resolution"), type_="check")
        batch_op.drop_constraint(op.f("ck_refunds_last_outcome"), type_="check")
        batch_op.drop_constraint(op.f("fk_refunds_resolved_by_users"), type_="foreignkey")
        batch_op.drop_column("resolved_by")
        batch_op.drop_column("resolution")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("queued_at")
        batch_op.drop_column("last_outcome")
        batch_op.drop_column("call_deadline")
