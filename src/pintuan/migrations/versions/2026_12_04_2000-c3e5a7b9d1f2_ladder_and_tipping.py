"""ladder teams and tipping points

Revision ID: c3e5a7b9d1f2
Revises: b9f3d5a7e246
Create Date: 2026-12-04 20:00:00

A ladder deal (``deals.ladder``) prices its teams by the tier they reach: a team fills up to its
top tier (``teams.team_size``), succeeds at its window's end with ``teams.min_size`` paid seats,
and its members get the difference to the tier reached back (``teams.ladder_price``, refunds of
source 'ladder', one per seat). A deal with a tipping point (``deals.tipping_point``) sells only
if that many seats of full, paid teams are reached by its end (``deals.tipped_at``); such a deal
may have teams of one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "c3e5a7b9d1f2"
down_revision: str | None = "b9f3d5a7e246"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("ladder_refunds_due")
_LADDER = sa.text("source = 'ladder'")


def _sources(sources: str) -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_source"), type_="check")
        batch.create_check_constraint("source", f"source IN ({sources})")


def _team_size(rule: str) -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_team_size"), type_="check")
        batch.create_check_constraint("team_size", rule)


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("ladder", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("tipping_point", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tipped_at", UtcDateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            "tipping_point", "tipping_point IS NULL OR tipping_point >= 1"
        )
        batch.create_check_constraint("tipped", "tipped_at IS NULL OR tipping_point IS NOT NULL")
    _team_size("team_size BETWEEN 2 AND 100 OR (team_size = 1 AND tipping_point IS NOT NULL)")
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("min_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ladder_price", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("ladder_refunds_due", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_check_constraint(
            "min_size", "min_size IS NULL OR min_size BETWEEN 1 AND team_size"
        )
    op.create_index(
        "ix_teams_ladder_refunds_due",
        "teams",
        ["id"],
        sqlite_where=_DUE,
        postgresql_where=_DUE,
    )
    _sources("'request', 'provider', 'reward', 'lottery', 'pickup', 'ladder'")
    op.create_index(
        "uq_refunds_ladder_seat_id",
        "refunds",
        ["seat_id"],
        unique=True,
        sqlite_where=_LADDER,
        postgresql_where=_LADDER,
    )


def downgrade() -> None:
    op.drop_index("uq_refunds_ladder_seat_id", table_name="refunds")
    _sources("'request', 'provider', 'reward', 'lottery', 'pickup'")
    op.drop_index("ix_teams_ladder_refunds_due", table_name="teams")
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint(op.f("ck_teams_min_size"), type_="check")
        batch.drop_column("ladder_refunds_due")
        batch.drop_column("ladder_price")
        batch.drop_column("min_size")
    _team_size("team_size BETWEEN 2 AND 100")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_tipped"), type_="check")
        batch.drop_constraint(op.f("ck_deals_tipping_point"), type_="check")
        batch.drop_column("tipped_at")
        batch.drop_column("tipping_point")
        batch.drop_column("ladder")
