"""feed placements in their slates: a slate's slots as a list in its own row

Revision ID: c9d1e3f5a7b0
Revises: b8c0d2e4f6a9
Create Date: 2026-12-06 03:00:00

Every page view wrote its slate and twenty rows of ``feed_placements``, each in the table and in
its primary key's index: most of what logging a slate cost. They are only ever read by slate, so
a slate now keeps them in ``feed_impressions.placements``,
``[[position, kind, item_id, vertical, merchant_id, propensity, reason], ...]``. Going up moves
every slate's rows there (in one statement on PostgreSQL; on SQLite, whose JSON aggregate keeps
no order before 3.44, a page of slates at a time) and drops the table; going down makes the rows
again from the lists.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c9d1e3f5a7b0"
down_revision: str | None = "b8c0d2e4f6a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 2_000  # slates moved a statement on SQLite


def upgrade() -> None:
    op.add_column(
        "feed_impressions",
        sa.Column("placements", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE feed_impressions i SET placements = s.placements FROM ("
            " SELECT impression_id, json_agg(json_build_array(position, kind, item_id,"
            " vertical, merchant_id, propensity, reason) ORDER BY position) AS placements"
            " FROM feed_placements GROUP BY impression_id) s"
            " WHERE s.impression_id = i.id"
        )
    else:
        _move_in_pages(bind)
    op.drop_table("feed_placements")


def _move_in_pages(bind: sa.Connection) -> None:
    """SQLite: a page of slates at a time, each slate's rows read in position order (by the
    primary key) and written as JSON by Python, whose floats keep every digit (SQLite's JSON
    writes fifteen)."""
    after = ""
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT impression_id, position, kind, item_id, vertical, merchant_id,"
                " propensity, reason FROM feed_placements"
                " WHERE impression_id IN (SELECT DISTINCT impression_id FROM feed_placements"
                "  WHERE impression_id > :after ORDER BY impression_id LIMIT :page)"
                " ORDER BY impression_id, position"
            ),
            {"after": after, "page": _PAGE},
        ).all()
        if not rows:
            return
        slates: dict[str, list[list[object]]] = {}
        for impression_id, *entry in rows:
            slates.setdefault(impression_id, []).append(entry)
        bind.execute(
            sa.text("UPDATE feed_impressions SET placements = :placements WHERE id = :id"),
            [{"id": key, "placements": json.dumps(value)} for key, value in slates.items()],
        )
        after = rows[-1][0]


def downgrade() -> None:
    op.create_table(
        "feed_placements",
        sa.Column("impression_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("vertical", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["impression_id"],
            ["feed_impressions.id"],
            name=op.f("fk_feed_placements_impression_id_feed_impressions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("impression_id", "position", name=op.f("pk_feed_placements")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO feed_placements (impression_id, position, kind, item_id, vertical,"
            " merchant_id, propensity, reason)"
            " SELECT i.id, (e->>0)::int, e->>1, e->>2, e->>3, e->>4, (e->>5)::float8, e->>6"
            " FROM feed_impressions i, json_array_elements(i.placements) e"
        )
    else:
        op.execute(
            "INSERT INTO feed_placements (impression_id, position, kind, item_id, vertical,"
            " merchant_id, propensity, reason)"
            " SELECT i.id, json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'),"
            " json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'),"
            " json_extract(e.value, '$[4]'), json_extract(e.value, '$[5]'),"
            " json_extract(e.value, '$[6]')"
            " FROM feed_impressions i, json_each(i.placements) e"
        )
    with op.batch_alter_table("feed_impressions") as batch:
        batch.drop_column("placements")
