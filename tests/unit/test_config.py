"""Settings have safe dev defaults and refuse a guessable secret in production."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from pintuan.config import DEV_SECRET_KEY, Environment, Settings, SettingsRefused, get_settings


@pytest.fixture(autouse=True)
def _isolated_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PINTUAN_* variable or .env file of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("PINTUAN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_dev_settings_work_out_of_the_box_with_the_default_secret() -> None:
    # given no configuration at all / when settings are read
    settings = Settings()

    # then they are dev settings with the known dev secret and a local SQLite file
    assert settings.env is Environment.DEV
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.is_sqlite


def test_test_settings_accept_the_default_secret() -> None:
    assert Settings(env=Environment.TEST).secret_key == DEV_SECRET_KEY


def test_prod_settings_refuse_the_default_secret() -> None:
    # given production without a secret of its own
    # when settings are built
    with pytest.raises(ValidationError) as caught:
        Settings(env=Environment.PROD)

    # then the refusal says which variable to set and how
    message = str(caught.value)
    assert "PINTUAN_SECRET_KEY" in message
    assert "token_urlsafe" in message


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("", id="empty"),
        pytest.param("secret", id="secret"),
        pytest.param("changeme", id="changeme"),
        pytest.param("change-me", id="change-me"),
        pytest.param(DEV_SECRET_KEY, id="dev default (long enough but public)"),
        pytest.param("x" * 31, id="31 characters"),
        pytest.param(secrets.token_urlsafe(16), id="random but short"),
    ],
)
def test_prod_settings_refuse_a_weak_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="PINTUAN_SECRET_KEY"):
        Settings(env="prod", secret_key=secret)


def test_prod_settings_accept_a_long_random_secret() -> None:
    # given a 48-character random secret
    secret = secrets.token_urlsafe(36)
    assert len(secret) == 48

    # when production settings are built with it
    settings = Settings(env="prod", secret_key=secret, sandbox_enabled=False)

    # then they are accepted as given
    assert settings.env is Environment.PROD
    assert settings.secret_key == secret


def test_prod_settings_accept_a_secret_of_exactly_32_characters() -> None:
    secret = "k" * 32
    assert Settings(env="prod", secret_key=secret, sandbox_enabled=False).secret_key == secret


def test_prod_settings_read_from_the_environment_are_checked_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given PINTUAN_ENV=prod in the environment and no secret
    monkeypatch.setenv("PINTUAN_ENV", "prod")

    # when / then reading settings is refused
    with pytest.raises(ValidationError, match="PINTUAN_SECRET_KEY"):
        Settings()


def test_settings_read_pintuan_variables_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given production configured through the environment
    secret = secrets.token_urlsafe(36)
    monkeypatch.setenv("PINTUAN_ENV", "prod")
    monkeypatch.setenv("PINTUAN_SECRET_KEY", secret)
    monkeypatch.setenv("PINTUAN_DATABASE_URL", "postgresql://pintuan@db/pintuan")
    monkeypatch.setenv("PINTUAN_SANDBOX_ENABLED", "false")

    # when settings are read
    settings = Settings()

    # then they carry those values
    assert settings.env is Environment.PROD
    assert settings.secret_key == secret
    assert not settings.is_sqlite


@pytest.mark.parametrize("field", ["db_pool_size", "session_days", "password_time_cost"])
def test_settings_refuse_a_zero_where_at_least_one_is_needed(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({field: 0})


@pytest.mark.parametrize(
    ("database_url", "path"),
    [
        ("sqlite:///var/pintuan.db", Path("var/pintuan.db")),
        ("sqlite:////srv/pintuan/data.db", Path("/srv/pintuan/data.db")),
        ("sqlite:///var/pintuan.db?timeout=5", Path("var/pintuan.db")),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("sqlite:///", None),
        ("postgresql://pintuan@localhost/pintuan", None),
        ("postgresql+psycopg://pintuan@localhost/pintuan", None),
    ],
)
def test_sqlite_path_names_the_file_of_a_file_backed_sqlite_database(
    database_url: str, path: Path | None
) -> None:
    # given a database URL / when the SQLite file is asked for
    result = Settings(database_url=database_url).sqlite_path()

    # then it is the file, or None when there is no file
    assert result == path


def test_the_default_database_is_a_sqlite_file_under_var() -> None:
    assert Settings().sqlite_path() == Path("var/pintuan.db")


def test_prod_settings_refuse_the_sandbox_provider() -> None:
    # given production with a good secret but the sandbox left on
    with pytest.raises(ValidationError, match="PINTUAN_SANDBOX_ENABLED=false"):
        Settings(env="prod", secret_key="k" * 40)


def test_provider_secrets_are_never_shown_in_the_settings_text() -> None:
    settings = Settings(
        env="dev", stripe_secret_key="sk_test_very_secret", alipay_private_key="PEM-SECRET"
    )
    assert "sk_test_very_secret" not in repr(settings)
    assert "PEM-SECRET" not in str(settings.model_dump())


@pytest.mark.parametrize(
    "provider",
    [
        pytest.param({"stripe_secret_key": "sk_test_x"}, id="stripe"),
        pytest.param({"alipay_app_id": "2021000000000000"}, id="alipay"),
        pytest.param({"wechatpay_mch_id": "1900000000"}, id="wechatpay"),
    ],
)
def test_a_real_provider_is_refused_while_the_environment_is_not_named(
    provider: dict[str, str],
) -> None:
    # given a real provider's key but no PINTUAN_ENV
    # when settings are built
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(provider)

    # then the refusal says exactly what to set
    assert "PINTUAN_ENV=prod" in str(caught.value)
    assert "PINTUAN_ENV=dev" in str(caught.value)


def test_a_real_provider_is_accepted_when_dev_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PINTUAN_ENV", "dev")
    monkeypatch.setenv("PINTUAN_STRIPE_SECRET_KEY", "sk_test_x")
    settings = Settings()
    assert settings.env is Environment.DEV
    assert settings.env_is_named


def test_the_environment_is_named_only_when_it_was_set() -> None:
    assert not Settings().env_is_named
    assert Settings(env="dev").env_is_named


def test_a_refusal_read_through_get_settings_never_shows_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given prod with a secret that is too short, and a provider key set
    monkeypatch.setenv("PINTUAN_ENV", "prod")
    monkeypatch.setenv("PINTUAN_SECRET_KEY", "short-but-Secret-Zq9XwV")
    monkeypatch.setenv("PINTUAN_STRIPE_SECRET_KEY", "sk_live_Qp4Rr")
    get_settings.cache_clear()

    # when the application reads its settings
    with pytest.raises(SettingsRefused) as caught:
        get_settings()
    get_settings.cache_clear()

    # then the message and everything chained to it name the variable, never a value
    shown = str(caught.value) + repr(caught.value) + repr(caught.value.__cause__)
    shown += repr(caught.value.__context__) if not caught.value.__suppress_context__ else ""
    assert "PINTUAN_SECRET_KEY" in shown
    for part in ("Zq9X", "Secret", "Qp4R", "sk_live"):
        assert part not in shown


def test_the_feed_log_must_outlast_the_windows_that_read_it() -> None:
    # Crediting looks back PINTUAN_FEED_ATTRIBUTION_HOURS; a log kept less long would lose
    # rewards before they are credited.
    with pytest.raises(ValidationError, match="PINTUAN_FEED_LOG_DAYS"):
        Settings(feed_log_days=2, feed_attribution_hours=72)
    with pytest.raises(ValidationError, match="PINTUAN_FEED_LOG_DAYS"):
        Settings(feed_log_days=3, feed_attribution_hours=72)
    assert Settings(feed_log_days=4, feed_attribution_hours=72).feed_log_days == 4
    with pytest.raises(ValidationError):
        Settings(feed_log_days=1)
