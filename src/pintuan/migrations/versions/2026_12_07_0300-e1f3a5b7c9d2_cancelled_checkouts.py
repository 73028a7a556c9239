"""cancelled checkouts: a payment's end reason for a checkout the provider cancelled

Revision ID: e1f3a5b7c9d2
Revises: d0e2f4a6b8c1
Create Date: 2026-12-07 03:00:00

A provider's notices may arrive out of order. A hold authorised and then cancelled (it lapsed
before the shopper's notice was delivered) was declined by the cancel, then brought back by the
older authorisation: the seat was paid with a hold that no longer existed, and its capture was
refused at every retry. A cancelled checkout now says so (``end_reason = 'cancelled'``), and
news of a hold on it changes nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e1f3a5b7c9d2"
down_revision: str | None = "d0e2f4a6b8c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "'capture_failed', 'hold_expired', 'amount_mismatch', 'refund_failed', 'void_failed', "
    "'no_news', 'unpaid'"
)


def _end_reasons(reasons: str) -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_end_reason"), type_="check")
        batch.create_check_constraint(
            "end_reason", f"end_reason IS NULL OR end_reason IN ({reasons})"
        )


def upgrade() -> None:
    _end_reasons(f"{_BEFORE}, 'cancelled'")


def downgrade() -> None:
    # A cancelled checkout is a declined one, as it was recorded before.
    op.execute("UPDATE payments SET end_reason = NULL WHERE end_reason = 'cancelled'")
    _end_reasons(_BEFORE)
