"""The database's own refusal to change posted money: triggers on the ledger's tables.

Entries are never updated or deleted; a journal is never deleted, and only a pending one (a
hold) may change, and then only its status and the instant it was decided. A correction is a
reversing journal. The triggers are created by the migration that introduced them; the DDL is
kept here too so that the tests' cleanup (and a tampering test playing an attacker with database
rights) can lift and restore them explicitly.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

REFUSAL = "posted ledger rows are append-only"

SQLITE = (
    f"""CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER ledger_journals_no_delete BEFORE DELETE ON ledger_journals
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER ledger_journals_no_update BEFORE UPDATE ON ledger_journals
    WHEN OLD.status <> 'pending' OR NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind
      OR NEW.currency IS NOT OLD.currency OR NEW.amount IS NOT OLD.amount
      OR NEW.payment_id IS NOT OLD.payment_id OR NEW.merchant_id IS NOT OLD.merchant_id
      OR NEW.user_id IS NOT OLD.user_id OR NEW.provider IS NOT OLD.provider
      OR NEW.created_at IS NOT OLD.created_at OR NEW.effective_at IS NOT OLD.effective_at
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
)
SQLITE_DROP = tuple(
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "ledger_entries_no_update",
        "ledger_entries_no_delete",
        "ledger_journals_no_delete",
        "ledger_journals_no_update",
    )
)

POSTGRES = (
    f"""CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'integrity_constraint_violation';
    END
    $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION ledger_journal_decided() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'pending'
           AND (NEW.id, NEW.kind, NEW.currency, NEW.amount, NEW.payment_id, NEW.merchant_id,
                NEW.user_id, NEW.provider, NEW.created_at, NEW.effective_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.kind, OLD.currency, OLD.amount, OLD.payment_id, OLD.merchant_id,
                OLD.user_id, OLD.provider, OLD.created_at, OLD.effective_at)
        THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'integrity_constraint_violation';
    END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER ledger_journals_append_only BEFORE UPDATE OR DELETE ON ledger_journals
    FOR EACH ROW EXECUTE FUNCTION ledger_journal_decided()""",
)
POSTGRES_DROP = (
    "DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries",
    "DROP TRIGGER IF EXISTS ledger_journals_append_only ON ledger_journals",
)


def install(connection: Connection) -> None:
    """Create the append-only triggers on this database."""
    for statement in POSTGRES if connection.dialect.name == "postgresql" else SQLITE:
        connection.execute(text(statement))


def remove(connection: Connection) -> None:
    """Drop the append-only triggers (tests' cleanup and tampering only)."""
    for statement in POSTGRES_DROP if connection.dialect.name == "postgresql" else SQLITE_DROP:
        connection.execute(text(statement))
