"""charge again: a confirmed seat whose money never came may be paid again until ``repay_by``

Revision ID: b3d9e6f2a471
Revises: e7a3c5d1b920
Create Date: 2026-12-04 10:00:00

An operator may ask the shopper of a confirmed seat whose hold lapsed or whose capture failed to
pay for it again (payments/endings.py, ``charge_again``). The seat keeps until when it may be;
the worker puts the payment back in the operators' queue when that passes, ``unpaid``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "b3d9e6f2a471"
down_revision: str | None = "e7a3c5d1b920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("repay_by IS NOT NULL")
_REASONS = (
    "'capture_failed', 'hold_expired', 'amount_mismatch', 'refund_failed', 'void_failed', 'no_news'"
)


def _end_reasons(reasons: str) -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_end_reason"), type_="check")
        batch.create_check_constraint(
            "end_reason", f"end_reason IS NULL OR end_reason IN ({reasons})"
        )


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no row on either engine.
    with op.batch_alter_table("seats") as batch:
        batch.add_column(sa.Column("repay_by", UtcDateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_seats_repay_by",
        "seats",
        ["repay_by"],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )
    # A payment put back in the queue because its shopper did not pay again is ``unpaid``.
    _end_reasons(f"{_REASONS}, 'unpaid'")
    # Room in the history for ``operator_charge_again``.
    with op.batch_alter_table("payment_attempts") as batch:
        batch.alter_column(
            "action", existing_type=sa.String(20), type_=sa.String(40), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_attempts") as batch:
        batch.alter_column(
            "action", existing_type=sa.String(40), type_=sa.String(20), existing_nullable=False
        )
    _end_reasons(_REASONS)
    op.drop_index("ix_seats_repay_by", table_name="seats")
    with op.batch_alter_table("seats") as batch:
        batch.drop_column("repay_by")
