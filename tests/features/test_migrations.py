"""The migrations build exactly the schema the models describe, and round-trip."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError

from pintuan.kit.migrations import downgrade, upgrade
from pintuan.models import Base
from tests.conftest import POSTGRES_URL, WORKER


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_sqlite_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield tmp_sqlite_url
        return
    if not POSTGRES_URL:
        pytest.skip("PINTUAN_TEST_POSTGRES_URL is not set (see scripts/postgres-up.sh)")
    name = f"pintuan_migrations_test_{WORKER}" if WORKER else "pintuan_migrations_test"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    # Every connection of the test is disposed of by now; an autovacuum worker may still be in
    # the new database, and FORCE may not end it without superuser rights: wait for it instead.
    deadline = time.monotonic() + 30
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            break
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    admin.dispose()


def schema_differences(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(differences)


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def test_migrations_build_the_schema_the_models_describe(empty_database: str) -> None:
    upgrade(empty_database)

    assert schema_differences(empty_database) == []
    assert table_names(empty_database) == set(Base.metadata.tables)


def test_migrations_round_trip_down_to_nothing_and_up_again(empty_database: str) -> None:
    upgrade(empty_database)

    downgrade(empty_database, "base")
    assert table_names(empty_database) == set()

    upgrade(empty_database)
    assert schema_differences(empty_database) == []


def test_going_down_from_feed_pools_writes_each_named_pool_back_into_its_slates(
    empty_database: str,
) -> None:
    upgrade(empty_database)
    engine = create_engine(empty_database)
    entries = '[["cand_a", 0.5, 0], ["cand_b", 0.25, 1]]'
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feed_pools (id, created_at, entries)"
                " VALUES ('pool_1', CURRENT_TIMESTAMP, :entries)"
            ),
            {"entries": entries},
        )
        for slate, pool_id, pool in (("imp_named", "pool_1", "[]"), ("imp_own", None, entries)):
            conn.execute(
                text(
                    "INSERT INTO feed_impressions (id, served_at, viewer, policy, slots,"
                    " filters, viewer_features, pool_id, pool, rules) VALUES (:id,"
                    " CURRENT_TIMESTAMP, 'anon_x', 'linucb', 2, '{}', '[]', :pool_id, :pool, '{}')"
                ),
                {"id": slate, "pool_id": pool_id, "pool": pool},
            )

    downgrade(empty_database, "a7b9c1d3e5f8")

    with engine.connect() as conn:
        pools = dict(conn.execute(text("SELECT id, pool FROM feed_impressions")).all())
    engine.dispose()
    assert "feed_pools" not in table_names(empty_database)
    for slate in ("imp_named", "imp_own"):
        pool = pools[slate]
        assert (pool if isinstance(pool, list) else json.loads(pool)) == json.loads(entries)


def test_placements_move_into_their_slates_and_back_out(empty_database: str) -> None:
    upgrade(empty_database, "b8c0d2e4f6a9")  # slates and a placements table
    engine = create_engine(empty_database)
    third = 1 / 3  # every digit must survive the move
    rows = [  # written out of position order; read back in it
        ("imp_b", 1, "deal", "deal_2", "food", "mer_2", third, "explore"),
        ("imp_b", 0, "team", "team_1", "goods", "mer_1", 1.0, "pinned"),
        ("imp_a", 0, "deal", "deal_3", "travel", "mer_3", 0.125, "best"),
    ]
    with engine.begin() as conn:
        for slate in ("imp_a", "imp_b", "imp_empty"):
            conn.execute(
                text(
                    "INSERT INTO feed_impressions (id, served_at, viewer, policy, slots,"
                    " filters, viewer_features, pool, rules) VALUES (:id,"
                    " CURRENT_TIMESTAMP, 'anon_x', 'linucb', 2, '{}', '[]', '[]', '{}')"
                ),
                {"id": slate},
            )
        for row in rows:
            conn.execute(
                text(
                    "INSERT INTO feed_placements (impression_id, position, kind, item_id,"
                    " vertical, merchant_id, propensity, reason) VALUES (:i, :p, :k, :item,"
                    " :v, :m, :pr, :r)"
                ),
                dict(zip(("i", "p", "k", "item", "v", "m", "pr", "r"), row, strict=True)),
            )

    upgrade(empty_database)

    with engine.connect() as conn:
        moved = {
            slate: value if isinstance(value, list) else json.loads(value)
            for slate, value in conn.execute(text("SELECT id, placements FROM feed_impressions"))
        }
    assert "feed_placements" not in table_names(empty_database)
    assert moved == {
        "imp_a": [[0, "deal", "deal_3", "travel", "mer_3", 0.125, "best"]],
        "imp_b": [
            [0, "team", "team_1", "goods", "mer_1", 1.0, "pinned"],
            [1, "deal", "deal_2", "food", "mer_2", third, "explore"],
        ],
        "imp_empty": [],
    }

    downgrade(empty_database, "b8c0d2e4f6a9")

    with engine.connect() as conn:
        back = conn.execute(
            text(
                "SELECT impression_id, position, kind, item_id, vertical, merchant_id,"
                " propensity, reason FROM feed_placements ORDER BY impression_id, position"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in back] == sorted(rows)


def test_commissions_gain_a_kind_and_going_down_refuses_to_drop_a_leaders(
    tmp_sqlite_url: str,
) -> None:
    """A sharer's commission made before pickup commissions froze is a referral one after the
    upgrade. Going back down refuses while a leader's commission exists (the schema before
    cannot hold it), and goes once there is none. (SQLite, which checks no foreign keys unless
    asked: the commissions' seats, users and merchants are left out.)"""
    upgrade(tmp_sqlite_url, "c7e9a1b3d5f7")
    engine = create_engine(tmp_sqlite_url)
    columns = (
        "id, seat_id, payment_id, deal_id, merchant_id, sharer_id, buyer_id, currency, base,"
        " rate_bps, amount, clawed_back, status, moves, created_at"
    )
    values = (
        "'st_1', 'pay_1', 'deal_1', 'mer_1', 'usr_1', 'usr_2', 'USD', 1500, 1000, 150, 0,"
        " 'frozen', 1, CURRENT_TIMESTAMP"
    )
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO commissions ({columns}, share_id) VALUES ('cm_1', {values}, 'sh_1')")  # noqa: S608
        )

    upgrade(tmp_sqlite_url)

    with engine.begin() as conn:
        assert conn.execute(text("SELECT id, kind FROM commissions")).all() == [
            ("cm_1", "referral")
        ]
        conn.execute(
            text(f"INSERT INTO commissions ({columns}, kind) VALUES ('cm_2', {values}, 'pickup')")  # noqa: S608
        )
    with pytest.raises(RuntimeError, match="Pickup commissions exist"):
        downgrade(tmp_sqlite_url, "c7e9a1b3d5f7")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM commissions WHERE kind = 'pickup'"))
    downgrade(tmp_sqlite_url, "c7e9a1b3d5f7")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, share_id FROM commissions")).all() == [
            ("cm_1", "sh_1")
        ]
    engine.dispose()
