"""pickup commissions frozen: a leader's commission waits for the order's refund window

Revision ID: d9f1b3c5e7a9
Revises: c7e9a1b3d5f7
Create Date: 2026-12-08 00:00:00

A pickup point's leader was paid their commission into the wallet the moment they handed an
order over, and a refund of that order afterwards left it with them: a commission released on
an order that was refunded. It is now a ``commissions`` row of kind ``pickup``, frozen at the
hand-over, shrunk by refunds, released when the refund window closes, as a sharer's is. A seat
may have one commission of each kind; only a sharer's names a share. Commissions paid at the
hand-over before this change keep their journals as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d9f1b3c5e7a9"
down_revision: str | None = "c7e9a1b3d5f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commissions") as batch:
        batch.add_column(
            sa.Column(
                "kind", sa.String(length=10), nullable=False, server_default=sa.text("'referral'")
            )
        )
        batch.alter_column("share_id", existing_type=sa.String(length=40), nullable=True)
        batch.drop_constraint(op.f("uq_commissions_seat_id"), type_="unique")
        batch.create_unique_constraint(op.f("uq_commissions_seat_id_kind"), ["seat_id", "kind"])
        batch.create_check_constraint("kind", "kind IN ('referral', 'pickup')")
        batch.create_check_constraint(
            "share_of_referral", "(kind = 'referral') = (share_id IS NOT NULL)"
        )


def downgrade() -> None:
    pickups = op.get_bind().execute(
        sa.text("SELECT COUNT(*) FROM commissions WHERE kind = 'pickup'")
    )
    if pickups.scalar_one():
        raise RuntimeError(
            "Pickup commissions exist: the schema before this revision cannot hold them "
            "(it paid a leader at the hand-over). Settle or remove them first."
        )
    with op.batch_alter_table("commissions") as batch:
        batch.drop_constraint(op.f("ck_commissions_share_of_referral"), type_="check")
        batch.drop_constraint(op.f("ck_commissions_kind"), type_="check")
        batch.drop_constraint(op.f("uq_commissions_seat_id_kind"), type_="unique")
        batch.create_unique_constraint(op.f("uq_commissions_seat_id"), ["seat_id"])
        batch.alter_column("share_id", existing_type=sa.String(length=40), nullable=False)
        batch.drop_column("kind")
