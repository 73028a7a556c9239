"""suspension and offboarding: suspended merchants' deals, moderated deals, disabled users,
token expiry and last-used times

Revision ID: 9b4d2e7c1a63
Revises: c41e9b7d2a60
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "9b4d2e7c1a63"
down_revision: str | None = "c41e9b7d2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tokens made before expiry existed get the default lifetime from the upgrade on, rather than
# dying at once.
EXISTING_TOKEN_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("merchant_suspended", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_constraint(op.f("ck_deals_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deals_status"), "status IN ('draft', 'live', 'paused', 'ended', 'moderated')"
        )
    op.execute(
        "UPDATE deals SET merchant_suspended = "
        "(SELECT m.status = 'suspended' FROM merchants m WHERE m.id = deals.merchant_id)"
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_used_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_used_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True)
        )
    tokens = sa.table("api_tokens", sa.column("expires_at", pintuan.kit.orm.UtcDateTime()))
    op.execute(
        tokens.update().values(expires_at=datetime.now(UTC) + timedelta(days=EXISTING_TOKEN_DAYS))
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at",
            existing_type=pintuan.kit.orm.UtcDateTime(timezone=True),
            nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
    op.execute("UPDATE deals SET status = 'paused' WHERE status = 'moderated'")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deals_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deals_status"), "status IN ('draft', 'live', 'paused', 'ended')"
        )
        batch_op.drop_column("merchant_suspended")
