"""lottery teams: a deal whose successful teams draw winners verifiably; the others are refunded

Revision ID: f1b8d3a6c247
Revises: e4a9c2f7b105
Create Date: 2026-12-04 14:20:00

The deal keeps how many win, its secret seed, the seed's published commitment and when the seed
was revealed; each seat of a lottery team whether it won; a team whether its losers still wait
for their refunds (``source = 'lottery'``). See domain/lottery.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "f1b8d3a6c247"
down_revision: str | None = "e4a9c2f7b105"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("lottery_refunds_due")
_LOTTERY = sa.text("source = 'lottery'")


def _sources(sources: str) -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_source"), type_="check")
        batch.create_check_constraint("source", f"source IN ({sources})")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("lottery_winners", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lottery_seed", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lottery_commitment", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("lottery_revealed_at", UtcDateTime(timezone=True), nullable=True)
        )
        batch.create_check_constraint(
            "lottery_winners",
            "lottery_winners IS NULL OR lottery_winners BETWEEN 1 AND team_size - 1",
        )
    with op.batch_alter_table("seats") as batch:
        batch.add_column(sa.Column("lottery_won", sa.Boolean(), nullable=True))
    with op.batch_alter_table("teams") as batch:
        batch.add_column(
            sa.Column(
                "lottery_refunds_due", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_index(
        "ix_teams_lottery_refunds_due",
        "teams",
        ["id"],
        sqlite_where=_DUE,
        postgresql_where=_DUE,
    )
    _sources("'request', 'provider', 'reward', 'lottery'")
    op.create_index(
        "uq_refunds_lottery_seat_id",
        "refunds",
        ["seat_id"],
        unique=True,
        sqlite_where=_LOTTERY,
        postgresql_where=_LOTTERY,
    )


def downgrade() -> None:
    op.drop_index("uq_refunds_lottery_seat_id", table_name="refunds")
    _sources("'request', 'provider', 'reward'")
    op.drop_index("ix_teams_lottery_refunds_due", table_name="teams")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("lottery_refunds_due")
    with op.batch_alter_table("seats") as batch:
        batch.drop_column("lottery_won")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_lottery_winners"), type_="check")
        batch.drop_column("lottery_revealed_at")
        batch.drop_column("lottery_commitment")
        batch.drop_column("lottery_seed")
        batch.drop_column("lottery_winners")
