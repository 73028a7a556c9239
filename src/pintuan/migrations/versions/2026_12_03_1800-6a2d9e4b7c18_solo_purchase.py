"""solo purchase: deals that may be bought alone at the list price, and teams of one

Revision ID: 6a2d9e4b7c18
Revises: 8e3c5a7d1f24
Create Date: 2026-12-03 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a2d9e4b7c18"
down_revision: str | None = "8e3c5a7d1f24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Deals published before buying alone existed keep the terms their merchant set: none of
    # them sells alone until its staff tick the option (new deals offer it unless told not to).
    with op.batch_alter_table("deals") as batch:
        batch.add_column(
            sa.Column("allow_solo", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("solo", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("solo")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("allow_solo")
