"""The ``pintuan`` command, run as a user would, against a fresh SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from pintuan.config import get_settings
from pintuan.deals.models import Deal
from pintuan.kit.db import Database


def test_demo_loads_once_and_prints_the_logins(run_cli) -> None:  # type: ignore[no-untyped-def]
    first = run_cli("demo")
    second = run_cli("demo")

    assert first.exit_code == 0, first.output
    assert "Demo loaded" in first.output
    assert "operator@example.com" in first.output
    assert "nothing changed" in second.output


def test_demo_deals_get_two_pictures_drawn_at_demo_time(  # type: ignore[no-untyped-def]
    run_cli, tmp_path: Path
) -> None:
    run_cli("demo")

    settings = get_settings()
    urls = Database(settings.database_url).run_sync(
        lambda s: list(s.scalars(select(Deal.image_urls)))
    )
    assert urls
    assert all(len(deal_urls) == 2 for deal_urls in urls)
    kept = {p.name for p in (tmp_path / "media").iterdir()}
    for deal_urls in urls:
        for url in deal_urls:
            assert url.removeprefix("/media/") in kept
            assert url.removeprefix("/media/").replace("-large", "-thumb") in kept


def test_a_user_created_with_a_piped_password_gets_a_token(run_cli) -> None:  # type: ignore[no-untyped-def]
    run_cli("demo")

    created = run_cli(
        "users",
        "create",
        "new@example.com",
        "--role",
        "merchant",
        "--merchant",
        "jade-garden",
        "--name",
        "New",
        stdin="a piped password\n",
    )
    token = run_cli("tokens", "create", "new@example.com")

    assert created.exit_code == 0, created.output
    assert "Password:" not in created.output
    assert token.exit_code == 0
    assert token.stdout.strip().startswith("pt_")
    assert len(token.stdout.strip().splitlines()) == 1


def test_errors_are_clear_and_exit_non_zero(run_cli) -> None:  # type: ignore[no-untyped-def]
    unknown_merchant = run_cli(
        "users",
        "create",
        "x@example.com",
        "--role",
        "merchant",
        "--merchant",
        "nope",
        stdin="a piped password\n",
    )
    unknown_user = run_cli("tokens", "create", "nobody@example.com")
    short_password = run_cli("users", "create", "y@example.com", stdin="short\n")

    assert unknown_merchant.exit_code == 1
    assert "nope" in unknown_merchant.output
    assert unknown_user.exit_code == 1
    assert "nobody@example.com" in unknown_user.output
    assert short_password.exit_code == 1


def test_the_demo_is_refused_in_production(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PINTUAN_ENV", "prod")
    monkeypatch.setenv("PINTUAN_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("PINTUAN_SANDBOX_ENABLED", "false")
    get_settings.cache_clear()

    result = run_cli("demo")

    assert result.exit_code == 1
    assert "refused" in result.output


def test_audit_passes_on_sound_data_and_fails_on_a_breach(run_cli, tmp_sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    run_cli("demo")
    clean = run_cli("audit")
    engine = create_engine(tmp_sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE deals SET committed = 3 WHERE id = (SELECT min(id) FROM deals)"))
    engine.dispose()
    broken = run_cli("audit")

    assert clean.exit_code == 0, clean.output
    assert "Audit passed" in clean.output
    assert broken.exit_code == 1
    assert "2 deal stock" in broken.output


def test_the_demo_loads_in_a_process_of_its_own(tmp_sqlite_url: str, tmp_path: Path) -> None:
    """As ``make run`` runs it: a fresh interpreter imports only what the command imports, so
    a table another feature's foreign key names must still be mapped."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PINTUAN_DATABASE_URL": tmp_sqlite_url,
        "PINTUAN_MEDIA_DIR": str(tmp_path / "media"),
        "PINTUAN_ENV": "test",
        "PINTUAN_PASSWORD_TIME_COST": "1",
        "PINTUAN_PASSWORD_MEMORY_KIB": "1024",
    }
    for command in ("migrate", "demo"):
        done = subprocess.run(  # noqa: S603 - the project's own command, fixed arguments
            [str(Path(sys.executable).parent / "pintuan"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert "pintuan-demo" in done.stdout  # the logins it prints


@pytest.mark.parametrize("command", [("audit",), ("ledger", "check")])
def test_the_audit_and_the_ledger_check_leave_the_write_lock_to_the_server(  # type: ignore[no-untyped-def]
    run_cli, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the check, stopped halfway to see whether a server's join could write meanwhile
    from pintuan.audit import ledger, service

    path = make_url(get_settings().database_url).database
    assert path
    seen: list[bool] = []

    def could_write() -> bool:
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # database is locked
                return False
            other.execute("ROLLBACK")
            return True

    checked = {"audit": (service, "audit_database"), "ledger": (ledger, "check_ledger")}
    module, name = checked[command[0]]
    real = getattr(module, name)

    def watched(session: Any) -> Any:
        seen.append(could_write())
        return real(session)

    monkeypatch.setattr(module, name, watched)
    # when the operator runs it
    done = run_cli(*command)
    # then it ran, and the write lock stayed free all along
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    assert seen == [True]
