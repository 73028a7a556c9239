"""the join in one round trip on PostgreSQL: the function pintuan_join_team

Revision ID: 9c4f2b7e5d31
Revises: c5e8a2f47b13
Create Date: 2026-12-03 21:10:00

PostgreSQL only (SQLite runs the join on the event loop, where a statement costs no round trip).
The function runs DESIGN.md's join as ``teams/service.py`` does, statement for statement and in
the same lock order (deal, team, counter, seat), so that a join costs one round trip instead of
one per statement. A refusal raises SQLSTATE ``PJ409`` with the step's name as its message and,
where the refusal's wording needs it, the row's state as JSON in its detail; the exception undoes
the steps before it. ``teams/join_postgres.py`` calls it and turns a refusal into the same
problem as the generic path's. The status words are written out here: a function's body is
fixed when it is created (the tests run both paths over the same cases, so a renamed status
word shows there).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9c4f2b7e5d31"
down_revision: str | None = "c5e8a2f47b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOIN_TEAM = """
CREATE FUNCTION pintuan_join_team(
    p_team_id varchar, p_user_id varchar, p_seat_id varchar, p_now timestamptz,
    p_hold_expires_at timestamptz, p_payload json,
    OUT joined_deal_id varchar, OUT joined_price bigint, OUT joined_currency varchar,
    OUT joined_status varchar
) LANGUAGE plpgsql AS $$
DECLARE
    terms record;
    state json;
BEGIN
    -- 1. take stock
    UPDATE deals SET committed = committed + 1
    WHERE id = (SELECT t.deal_id FROM teams t WHERE t.id = p_team_id)
      AND status = 'live' AND committed < stock
      AND starts_at <= p_now AND ends_at > p_now AND NOT merchant_suspended
    RETURNING id, group_price_amount, currency, per_user_limit, new_shoppers_only INTO terms;
    IF NOT FOUND THEN
        SELECT json_build_object(
            'status', d.status, 'stock', d.stock, 'committed', d.committed,
            'starts_at', d.starts_at, 'ends_at', d.ends_at,
            'merchant_suspended', d.merchant_suspended, 'allow_solo', d.allow_solo)
        INTO state
        FROM teams t JOIN deals d ON d.id = t.deal_id WHERE t.id = p_team_id;
        IF state IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'no_team';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'deal', DETAIL = state::text;
    END IF;
    -- 2. take a place
    UPDATE teams SET taken = taken + 1
    WHERE id = p_team_id AND status = 'forming' AND taken < team_size AND expires_at > p_now
      AND NOT solo;
    IF NOT FOUND THEN
        SELECT json_build_object(
            'status', t.status, 'team_size', t.team_size, 'taken', t.taken,
            'expires_at', t.expires_at, 'solo', t.solo)
        INTO state FROM teams t WHERE t.id = p_team_id;
        RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'team', DETAIL = state::text;
    END IF;
    IF terms.new_shoppers_only AND EXISTS (
        SELECT 1 FROM seats WHERE user_id = p_user_id AND status = 'confirmed'
    ) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'not_new_shopper';
    END IF;
    -- 3. count the shopper
    INSERT INTO deal_shopper_counts AS c (deal_id, user_id, count)
    VALUES (terms.id, p_user_id, 1)
    ON CONFLICT (deal_id, user_id) DO UPDATE SET count = c.count + 1
    WHERE c.count < terms.per_user_limit;
    IF NOT FOUND THEN
        IF EXISTS (
            SELECT 1 FROM seats WHERE team_id = p_team_id AND user_id = p_user_id
              AND status IN ('held', 'paid', 'confirmed')
        ) THEN
            RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'already_member';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'PJ409', MESSAGE = 'limit',
            DETAIL = terms.per_user_limit::text;
    END IF;
    -- 4. the seat (a free one is paid as it is taken) and its outbox event
    joined_deal_id := terms.id;
    joined_price := terms.group_price_amount;
    joined_currency := terms.currency;
    joined_status := CASE WHEN joined_price = 0 THEN 'paid' ELSE 'held' END;
    INSERT INTO seats (id, team_id, deal_id, user_id, status, is_leader, price_amount, currency,
                       hold_expires_at, paid_at, created_at)
    VALUES (p_seat_id, p_team_id, terms.id, p_user_id, joined_status, false, joined_price,
            terms.currency,
            CASE WHEN joined_price = 0 THEN NULL ELSE p_hold_expires_at END,
            CASE WHEN joined_price = 0 THEN p_now END, p_now);
    INSERT INTO outbox_events (type, subject_id, payload, created_at)
    VALUES ('seat.' || joined_status, p_seat_id, p_payload, p_now);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(JOIN_TEAM)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION pintuan_join_team(varchar, varchar, varchar, timestamptz, "
            "timestamptz, json)"
        )
