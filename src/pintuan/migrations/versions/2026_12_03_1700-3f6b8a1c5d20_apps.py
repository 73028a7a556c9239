"""apps: outside apps registered on the open platform, and the shops that installed them

Revision ID: 3f6b8a1c5d20
Revises: c4e1a7d93b52
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pintuan.kit.orm

revision: str = "3f6b8a1c5d20"
down_revision: str | None = "c4e1a7d93b52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_user_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("homepage", sa.String(length=500), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("webhook_events", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'suspended')", name=op.f("ck_apps_status")
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"], ["users.id"], name=op.f("fk_apps_owner_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_apps_reviewed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
        sa.UniqueConstraint("client_id", name=op.f("uq_apps_client_id")),
    )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apps_owner_user_id"), ["owner_user_id"], unique=False)
    op.create_table(
        "app_installations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("installed_by", sa.String(length=40), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", pintuan.kit.orm.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_app_installations_app_id_apps")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_app_installations_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["installed_by"], ["users.id"], name=op.f("fk_app_installations_installed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_installations")),
        sa.UniqueConstraint(
            "app_id", "merchant_id", name=op.f("uq_app_installations_app_id_merchant_id")
        ),
    )
    with op.batch_alter_table("app_installations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_app_installations_merchant_id"), ["merchant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("app_installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_installations_merchant_id"))
    op.drop_table("app_installations")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apps_owner_user_id"))
    op.drop_table("apps")
