"""refund attempts: each refund after success keeps the history of its provider calls, the
provider's news of it and the operators' acts, as each payment does

Revision ID: a3c5e7f9b1d4
Revises: f2a4b6c8d0e3
Create Date: 2026-12-07 09:00:00

An operator deciding what to do with a refund in the queue saw only its last error and how
many calls were made; now each call, each piece of news and each act is a row of its own, shown
with the refund in the API and on the console's refunds queue. Refunds made before keep no
history (nothing of their calls was kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "a3c5e7f9b1d4"
down_revision: str | None = "f2a4b6c8d0e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refund_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_refund_attempts_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_attempts")),
    )
    op.create_index(
        "ix_refund_attempts_refund_id", "refund_attempts", ["refund_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_refund_attempts_refund_id", table_name="refund_attempts")
    op.drop_table("refund_attempts")
