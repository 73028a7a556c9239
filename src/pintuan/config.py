"""Settings, read from ``PINTUAN_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - a known default, refused in prod
_KNOWN_WEAK_SECRETS = frozenset({"", DEV_SECRET_KEY, "secret", "changeme", "change-me"})


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINTUAN_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEV
    database_url: str = "sqlite:///var/pintuan.db"
    secret_key: str = DEV_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    db_pool_size: int = Field(default=10, ge=1)

    # argon2id cost; the defaults follow RFC 9106's second recommended option.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)

    login_attempts_per_account: int = Field(default=10, ge=1)
    login_attempts_per_address: int = Field(default=50, ge=1)
    signups_per_address: int = Field(default=20, ge=1)
    rate_limit_window_seconds: int = Field(default=900, ge=1)

    idempotency_ttl_hours: int = Field(default=24, ge=1)
    session_days: int = Field(default=30, ge=1)

    seat_hold_minutes: int = Field(default=10, ge=1, le=1440)
    # How the sandbox provider moves money: hold then capture (card) or charge then refund.
    sandbox_style: Literal["hold", "charge"] = "hold"
    sandbox_webhook_secret: str | None = None
    sandbox_enabled: bool = True

    # Stripe (enabled when the secret key is set). api_base points the SDK elsewhere (tests).
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_api_base: str | None = None
    # Alipay (enabled when the app id is set); keys are PEM text.
    alipay_app_id: str | None = None
    alipay_private_key: SecretStr | None = None
    alipay_public_key: str | None = None
    alipay_gateway: str | None = None
    # WeChat Pay API v3 (enabled when the merchant id is set), in platform public-key mode.
    wechatpay_mch_id: str | None = None
    wechatpay_app_id: str | None = None
    wechatpay_private_key: SecretStr | None = None
    wechatpay_cert_serial: str | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_public_key: str | None = None
    wechatpay_public_key_id: str | None = None
    wechatpay_api_base: str | None = None

    worker_batch_size: int = Field(default=500, ge=1, le=10000)
    worker_idle_seconds: float = Field(default=1.0, gt=0, le=60)
    # /readyz answers 503 worker_lagging once due work has waited longer than this.
    ready_max_lag_seconds: float = Field(default=300, gt=0)
    # When set, /metrics asks for it as a bearer token; unset, it is open (keep it internal).
    metrics_token: SecretStr | None = None
    # Shifts the application clock; for demos and browser tests, refused in prod.
    clock_offset_seconds: int = 0
    # Last-touch attribution: how long after a visit to a share an order is still credited to it.
    attribution_window_days: int = Field(default=7, ge=1, le=90)

    @model_validator(mode="after")
    def _refuse_default_secret_in_prod(self) -> Settings:
        if self.env is Environment.PROD and (
            self.secret_key in _KNOWN_WEAK_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError(
                "PINTUAN_SECRET_KEY must be set to a random value of at least 32 characters "
                "when PINTUAN_ENV=prod (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        if self.env is Environment.PROD and self.sandbox_enabled:
            raise ValueError(
                "The sandbox payment provider cannot run when PINTUAN_ENV=prod: set "
                "PINTUAN_SANDBOX_ENABLED=false and configure a real provider"
            )
        if self.env is Environment.PROD and self.clock_offset_seconds:
            raise ValueError("PINTUAN_CLOCK_OFFSET_SECONDS cannot be set when PINTUAN_ENV=prod")
        return self

    def sandbox_secret(self) -> str:
        """The sandbox webhook signing secret: configured, or derived from the secret key."""
        if self.sandbox_webhook_secret:
            return self.sandbox_webhook_secret
        return hmac.new(self.secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite URL, else None."""
        if not self.is_sqlite:
            return None
        path = make_url(self.database_url).database
        return Path(path) if path and path != ":memory:" else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
