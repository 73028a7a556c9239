"""honest auto-fill: budgets that pay for a team's missing seats at its window's end

Revision ID: e5f7a9b1c3d4
Revises: d4e6f8a0b2c5
Create Date: 2026-12-04 20:20:00

A deal may fill teams that end one or two paid seats short (``deals.auto_fill_seats``), paid by
the merchant's or the platform's budget (``deals.auto_fill_funded_by``; ``fill_budgets``, one per
payer and currency, used never past its limit). A filled team records how many seats were filled
and by whom (``teams.filled_seats``, ``teams.filled_by``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime

revision: str = "e5f7a9b1c3d4"
down_revision: str | None = "d4e6f8a0b2c5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("auto_fill_seats", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("auto_fill_funded_by", sa.String(length=10), nullable=True))
        batch.create_check_constraint(
            "auto_fill",
            "(auto_fill_seats IS NULL) = (auto_fill_funded_by IS NULL) AND "
            "(auto_fill_seats IS NULL OR (auto_fill_seats BETWEEN 1 AND 2 "
            "AND auto_fill_seats < team_size AND auto_fill_funded_by IN ('merchant', 'platform')))",
        )
    with op.batch_alter_table("teams") as batch:
        batch.add_column(
            sa.Column("filled_seats", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("filled_by", sa.String(length=10), nullable=True))
        batch.create_check_constraint(
            "filled_seats",
            "filled_seats BETWEEN 0 AND 2 AND (filled_seats = 0) = (filled_by IS NULL)",
        )
    op.create_table(
        "fill_budgets",
        sa.Column("payer", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("limit_amount", sa.BigInteger(), nullable=False),
        sa.Column("used_amount", sa.BigInteger(), nullable=False),
        sa.Column("filled_seats", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("limit_amount >= 0", name=op.f("ck_fill_budgets_limit_not_negative")),
        sa.CheckConstraint(
            "used_amount >= 0 AND used_amount <= limit_amount",
            name=op.f("ck_fill_budgets_within_limit"),
        ),
        sa.CheckConstraint(
            "filled_seats >= 0", name=op.f("ck_fill_budgets_filled_seats_not_negative")
        ),
        sa.PrimaryKeyConstraint("payer", "currency", name=op.f("pk_fill_budgets")),
    )


def downgrade() -> None:
    op.drop_table("fill_budgets")
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint(op.f("ck_teams_filled_seats"), type_="check")
        batch.drop_column("filled_by")
        batch.drop_column("filled_seats")
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint(op.f("ck_deals_auto_fill"), type_="check")
        batch.drop_column("auto_fill_funded_by")
        batch.drop_column("auto_fill_seats")
