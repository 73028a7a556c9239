"""leader rewards: a deal may pay the leader of each successful team part of their seat back

Revision ID: e4a9c2f7b105
Revises: d7e2b4c9a613
Create Date: 2026-12-04 14:10:00

The deal says how much (``leader_reward_kind``: fixed, percent or free, with its value); a team
that succeeds is marked ``leader_reward_due`` until the worker paid it, as a refund after success
of ``source = 'reward'``, one per seat.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4a9c2f7b105"
down_revision: str | None = "d7e2b4c9a613"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("leader_reward_due")
_REWARD = sa.text("source = 'reward'")


def _sources(sources: str) -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_source"), type_="check")
        batch.create_check_constraint("source", f"source IN ({sources})")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("leader_reward_kind", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("leader_reward_value", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(
            "leader_reward_kind",
            "leader_reward_kind IS NULL OR leader_reward_kind IN ('fixed', 'percent', 'free')",
        )
    with op.batch_alter_table("teams") as batch:
        batch.add_column(
            sa.Column("leader_reward_due", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_teams_leader_reward_due",
        "teams",
        ["id"],
        sqlite_where=_DUE,
        postgresql_where=_DUE,
    )
    _sources("'request', 'provider', 'reward'")
    op.create_index(
        "uq_refunds_reward_seat_id",
        "refunds",
        ["seat_id"],
        unique=True,
        sqlite_where=_REWARD,
        postgresql_where=_REWARD,
    )


def downgrade() -> None:
    op.drop_index("uq_refunds_reward_seat_id", table_name="refunds")
    _sources("'request', 'provider'")
    op.drop_index("ix_teams_leader_reward_due", table_name="teams")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("leader_reward_due")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_leader_reward_kind"), type_="check")
        batch.drop_column("leader_reward_value")
        batch.drop_column("leader_reward_kind")
