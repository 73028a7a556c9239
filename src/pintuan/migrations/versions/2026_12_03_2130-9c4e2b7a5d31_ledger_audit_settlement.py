"""ledger audit: append-only triggers, effective dates, statement lines, commission rates in
force, payouts with a lifecycle, reconciliation findings

Revision ID: 9c4e2b7a5d31
Revises: 9c4e2a7b5d31
Create Date: 2026-12-03 21:30:00
"""

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from pintuan.kit.orm import UtcDateTime
from pintuan.ledger import guard

revision: str = "9c4e2b7a5d31"
down_revision: str | None = "9c4e2a7b5d31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every change of a merchant's commission keeps the rate and the instant it took effect, so the
# audit can recompute each fee with the rate in force when it was taken.
_RATES_SQLITE = (
    """CREATE TRIGGER merchant_rate_on_insert AFTER INSERT ON merchants
    BEGIN
      INSERT OR REPLACE INTO merchant_commission_rates (merchant_id, effective_from, commission_bps)
      VALUES (NEW.id, NEW.created_at, NEW.commission_bps);
    END""",
    """CREATE TRIGGER merchant_rate_on_update AFTER UPDATE OF commission_bps ON merchants
    WHEN NEW.commission_bps <> OLD.commission_bps
    BEGIN
      INSERT OR REPLACE INTO merchant_commission_rates (merchant_id, effective_from, commission_bps)
      VALUES (NEW.id, NEW.updated_at, NEW.commission_bps);
    END""",
)
_RATES_POSTGRES = (
    """CREATE OR REPLACE FUNCTION merchant_rate_keep() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'INSERT' OR NEW.commission_bps <> OLD.commission_bps THEN
        INSERT INTO merchant_commission_rates (merchant_id, effective_from, commission_bps)
        VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END,
                NEW.commission_bps)
        ON CONFLICT (merchant_id, effective_from)
        DO UPDATE SET commission_bps = excluded.commission_bps;
      END IF;
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER merchant_rate_kept AFTER INSERT OR UPDATE OF commission_bps ON merchants
    FOR EACH ROW EXECUTE FUNCTION merchant_rate_keep()""",
)


def _day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(time_zone)
    start = datetime.combine(day, time(), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    op.add_column("ledger_journals", sa.Column("effective_at", UtcDateTime(), nullable=True))
    op.execute("UPDATE ledger_journals SET effective_at = COALESCE(decided_at, created_at)")
    op.create_index(
        "ix_ledger_journals_merchant_effective",
        "ledger_journals",
        ["merchant_id", "effective_at"],
    )

    op.add_column(
        "settlement_statements",
        sa.Column("adjustments", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("settlement_statements", sa.Column("cutoff_at", UtcDateTime(), nullable=True))
    op.create_table(
        "settlement_lines",
        sa.Column("journal_id", sa.String(60), nullable=False),
        sa.Column("statement_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["journal_id"],
            ["ledger_journals.id"],
            name=op.f("fk_settlement_lines_journal_id_ledger_journals"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["settlement_statements.id"],
            name=op.f("fk_settlement_lines_statement_id_settlement_statements"),
        ),
        sa.PrimaryKeyConstraint("journal_id", name=op.f("pk_settlement_lines")),
    )
    op.create_index(op.f("ix_settlement_lines_statement_id"), "settlement_lines", ["statement_id"])
    # Statements written before lines existed claim the journals they counted.
    statements = bind.execute(
        sa.text(
            "SELECT s.id, s.merchant_id, s.day, s.currency, m.time_zone "
            "FROM settlement_statements s JOIN merchants m ON m.id = s.merchant_id"
        )
    ).all()
    for statement_id, merchant_id, day, currency, time_zone in statements:
        if isinstance(day, str):
            day = date.fromisoformat(day)
        start, end = _day_bounds(day, time_zone)
        bind.execute(
            sa.text(
                "INSERT INTO settlement_lines (journal_id, statement_id) "
                "SELECT j.id, :statement FROM ledger_journals j WHERE j.merchant_id = :merchant "
                "AND j.currency = :currency AND j.status = 'posted' "
                "AND j.kind IN ('earn', 'payout') AND j.decided_at >= :start "
                "AND j.decided_at < :end"
            ).bindparams(
                sa.bindparam("start", type_=UtcDateTime()), sa.bindparam("end", type_=UtcDateTime())
            ),
            {
                "statement": statement_id,
                "merchant": merchant_id,
                "currency": currency,
                "start": start,
                "end": end,
            },
        )
        bind.execute(
            sa.text("UPDATE settlement_statements SET cutoff_at = :end WHERE id = :id").bindparams(
                sa.bindparam("end", type_=UtcDateTime())
            ),
            {"end": end, "id": statement_id},
        )

    op.create_table(
        "merchant_commission_rates",
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("effective_from", UtcDateTime(), nullable=False),
        sa.Column("commission_bps", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "commission_bps BETWEEN 0 AND 10000",
            name=op.f("ck_merchant_commission_rates_commission_bps"),
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "effective_from", name=op.f("pk_merchant_commission_rates")
        ),
    )
    op.execute(
        "INSERT INTO merchant_commission_rates (merchant_id, effective_from, commission_bps) "
        "SELECT id, created_at, commission_bps FROM merchants"
    )
    for statement in _RATES_POSTGRES if postgres else _RATES_SQLITE:
        op.execute(statement)

    op.create_table(
        "payouts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("journal_id", sa.String(60), nullable=False),
        sa.Column("return_journal_id", sa.String(60), nullable=True),
        sa.Column("reference", sa.String(120), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'paid', 'failed', 'returned')",
            name=op.f("ck_payouts_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payouts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
    )
    op.create_index("ix_payouts_merchant_id", "payouts", ["merchant_id", "id"])

    op.create_table(
        "reconciliation_days",
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("ran_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "day", name=op.f("pk_reconciliation_days")),
    )
    op.create_table(
        "reconciliation_findings",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("difference", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("provider_ref", sa.String(120), nullable=False),
        sa.Column("ours_id", sa.String(120), nullable=True),
        sa.Column("ours_amount", sa.BigInteger(), nullable=True),
        sa.Column("theirs_id", sa.String(120), nullable=True),
        sa.Column("theirs_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("decided_by", sa.String(40), nullable=True),
        sa.Column("found_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'explained', 'fixed')", name=op.f("ck_reconciliation_findings_state")
        ),
        sa.CheckConstraint(
            "difference IN ('missing', 'extra', 'different', 'hold')",
            name=op.f("ck_reconciliation_findings_difference"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_findings")),
        sa.UniqueConstraint("key", name=op.f("uq_reconciliation_findings_key")),
    )
    op.create_index("ix_reconciliation_findings_state", "reconciliation_findings", ["state", "id"])

    guard.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    guard.remove(bind)
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS merchant_rate_kept ON merchants")
        op.execute("DROP FUNCTION IF EXISTS merchant_rate_keep()")
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
        op.execute("DROP FUNCTION IF EXISTS ledger_journal_decided()")
    else:
        op.execute("DROP TRIGGER IF EXISTS merchant_rate_on_insert")
        op.execute("DROP TRIGGER IF EXISTS merchant_rate_on_update")
    op.drop_index("ix_reconciliation_findings_state", table_name="reconciliation_findings")
    op.drop_table("reconciliation_findings")
    op.drop_table("reconciliation_days")
    op.drop_index("ix_payouts_merchant_id", table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("merchant_commission_rates")
    op.drop_index(op.f("ix_settlement_lines_statement_id"), table_name="settlement_lines")
    op.drop_table("settlement_lines")
    with op.batch_alter_table("settlement_statements") as batch:
        batch.drop_column("cutoff_at")
        batch.drop_column("adjustments")
    op.drop_index("ix_ledger_journals_merchant_effective", table_name="ledger_journals")
    with op.batch_alter_table("ledger_journals") as batch:
        batch.drop_column("effective_at")
