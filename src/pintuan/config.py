"""Settings, read from ``PINTUAN_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
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
    # The server's event loop. The standard library's takes the requests waiting on a busy
    # server in turn; uvloop, as fast here, left some of them waiting seconds behind later ones
    # (see README, "The event loop and the collector").
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    # The CLI and the worker may block on SQLite's write lock this long; a request never blocks:
    # it waits in short steps (awaiting in between) up to sqlite_request_wait_ms, then answers 503.
    # As long as before by default: writers that queue behind a sweep or a settlement (a second
    # or so) still go through, and the server keeps answering everyone else meanwhile.
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    sqlite_request_wait_ms: int = Field(default=5000, ge=0, le=60000)
    db_pool_size: int = Field(default=10, ge=1)
    # PostgreSQL, per connection; 0 turns a timeout off. A request that hits one answers 503.
    db_statement_timeout_ms: int = Field(default=30000, ge=0)
    db_lock_timeout_ms: int = Field(default=5000, ge=0)
    # A PostgreSQL streaming replica for reads that may be a little stale (see kit/replica.py);
    # they fall back to the primary while it is further behind than max_lag (measured every
    # sample_seconds), and a caller who wrote reads the primary for max_lag seconds.
    database_replica_url: str | None = None
    replica_max_lag_seconds: float = Field(default=5.0, gt=0, le=3600)
    replica_sample_seconds: float = Field(default=1.0, gt=0, le=60)

    # argon2id cost; the defaults follow RFC 9106's second recommended option.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)

    # Log-in failures allowed before each further attempt waits (per account, per address).
    login_attempts_per_account: int = Field(default=10, ge=1)
    login_attempts_per_address: int = Field(default=50, ge=1)
    signups_per_address: int = Field(default=20, ge=1)
    rate_limit_window_seconds: int = Field(default=900, ge=1)

    # Abuse limits: request bodies, posters, share visits, password hashing, log-in delays.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_webhook_body_bytes: int = Field(default=64 * 1024, ge=1024)
    poster_renders_per_minute: int = Field(default=20, ge=1)
    share_visits_per_minute: int = Field(default=20, ge=1)
    password_hash_concurrency: int = Field(default=2, ge=1)
    password_hash_wait_seconds: float = Field(default=2.0, gt=0, le=60)
    login_delay_seconds: float = Field(default=1.0, gt=0)
    login_delay_max_seconds: float = Field(default=300.0, gt=0)
    # Addresses and networks (CIDR) of proxies whose X-Forwarded-For is believed; none by default.
    # Comma-separated (``10.0.0.0/8,127.0.0.1``) or a JSON list.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Bargains: an account younger than new_account_hours helps cut at most
    # new_account_cuts_per_day bargains in any 24 hours; one network address makes at most
    # cuts_per_address_per_day cuts in any 24 hours, all its accounts together.
    bargain_new_account_hours: int = Field(default=24, ge=0, le=8760)
    bargain_new_account_cuts_per_day: int = Field(default=1, ge=0, le=1000)
    bargain_cuts_per_address_per_day: int = Field(default=20, ge=1, le=1_000_000)

    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # How long a request holds its key before another may take it over (a crashed process).
    idempotency_lease_seconds: int = Field(default=60, ge=5, le=3600)
    session_days: int = Field(default=30, ge=1)
    # How long a new API token lives unless its creator asks for less.
    api_token_days: int = Field(default=90, ge=1, le=3650)

    seat_hold_minutes: int = Field(default=10, ge=1, le=1440)
    # A merchant's business day is settled this long after its midnight, so that what was written
    # just before midnight has committed; what still comes later is on the next statement.
    settlement_grace_minutes: int = Field(default=60, ge=0, le=1440)
    # How the sandbox provider moves money: hold then capture (card) or charge then refund.
    sandbox_style: Literal["hold", "charge"] = "hold"
    sandbox_webhook_secret: str | None = None
    sandbox_enabled: bool = True
    # Every payment ends (payments/endings.py): an owed provider call (capture, void, refund,
    # poll) is given up after this many attempts, or once its deadline passes: this long after
    # its first failure, or, for a hold, the provider's end of it less the safety margin.
    payment_max_attempts: int = Field(default=20, ge=1, le=1000)
    payment_call_deadline_hours: int = Field(default=72, ge=1, le=2160)
    payment_capture_margin_minutes: int = Field(default=60, ge=0, le=10080)
    # How long the shopper of a confirmed seat has to pay again when an operator asks them to.
    payment_repay_hours: int = Field(default=72, ge=1, le=2160)

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

    # Anonymous reads (deal and team pages, GET /v1/deals and /v1/deals/{id}) are kept this
    # long at most, per process; 0 turns the cache off. A second is the freshness promise.
    read_cache_seconds: float = Field(default=1.0, ge=0, le=1)
    read_cache_entries: int = Field(default=2000, ge=1, le=1_000_000)

    # Redis (optional): hot-deal admission, the cross-process rate limits and the idempotency
    # in-flight marker use it when set (redis://host:port/db); without it the database does all.
    redis_url: str | None = None
    # An admission reservation neither confirmed nor given back (its process died between Redis
    # and the database) is returned after this long; longer than any join transaction.
    redis_reservation_seconds: int = Field(default=60, ge=1, le=3600)
    # How often the worker rebuilds Redis's admission counters from the database.
    redis_reconcile_seconds: float = Field(default=5.0, gt=0, le=3600)

    worker_batch_size: int = Field(default=500, ge=1, le=10000)
    worker_idle_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long a worker's claim on a swept row or a one-at-a-time job lasts: a killed worker's
    # work is taken over this long after its claim (keep it above a batch's longest run).
    worker_lease_seconds: int = Field(default=60, ge=5, le=3600)
    # /readyz answers 503 worker_lagging once due work has waited longer than this.
    ready_max_lag_seconds: float = Field(default=300, gt=0)
    # When set, /metrics asks for it as a bearer token; unset, it is open (keep it internal).
    metrics_token: SecretStr | None = None
    # Shifts the application clock; for demos and browser tests, refused in prod.
    clock_offset_seconds: int = 0
    # The open platform: how many API requests one app may make per minute (all its tokens
    # together); how long its access and refresh tokens live; how long a rotated client secret
    # keeps working beside the new one; how long an authorization code may wait to be redeemed.
    app_requests_per_minute: int = Field(default=600, ge=1)
    oauth_access_token_minutes: int = Field(default=60, ge=1, le=1440)
    oauth_refresh_token_days: int = Field(default=30, ge=1, le=365)
    app_secret_overlap_hours: int = Field(default=24, ge=0, le=720)
    oauth_code_minutes: int = Field(default=5, ge=1, le=10)
    # Last-touch attribution: how long after a visit to a share an order is still credited to it.
    attribution_window_days: int = Field(default=7, ge=1, le=90)
    # Webhooks out: a request's connect and read timeouts, how long a delivery is retried
    # before it is given up (and its endpoint disabled), and how long a rotated-out signing
    # secret still signs alongside the new one.
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_hours: int = Field(default=72, ge=1, le=720)
    webhook_secret_overlap_hours: int = Field(default=24, ge=0, le=720)

    # Pictures (deal images, later partner offers): a local folder by default, or an
    # S3-compatible bucket when media_s3_bucket is set; served from this site either way.
    media_dir: Path = Path("var/media")
    # Where ``pintuan feed simulate`` writes by default and the operator console's feed lab reads.
    feed_simulation_dir: Path = Path("var/feed/simulation")
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Decoded size allowed, against decompression bombs (a tiny file that unpacks huge).
    media_max_pixels: int = Field(default=40_000_000, ge=10_000, le=200_000_000)
    media_s3_bucket: str | None = None
    media_s3_endpoint_url: str | None = None
    media_s3_region: str = "us-east-1"
    media_s3_access_key_id: str | None = None
    media_s3_secret_access_key: SecretStr | None = None
    media_s3_prefix: str = ""
    # Fulfilment: days after shipping when receipt is confirmed for a shopper who has not.
    auto_receive_days: int = Field(default=10, ge=1, le=90)
    # Vouchers: minutes after a redemption in which the counter may undo it (a mistake).
    voucher_undo_minutes: int = Field(default=10, ge=0, le=1440)
    # How long after an order is complete (a voucher redeemed, goods received, a team's success
    # for anything else) it may still be refunded; referral commissions wait for it to close.
    refund_window_days: int = Field(default=30, ge=1, le=365)
    # The aggregated feed. The policy served when operators have not chosen one (random,
    # popularity or linucb); the operators' rules' defaults (the share of slots given to a random
    # candidate, the least share of a slate each vertical gets, the most items of one merchant in
    # a slate, 0 for no cap); what each rewarded event is worth to the learning policies.
    feed_policy: Literal["random", "popularity", "linucb"] = "linucb"
    feed_exploration: float = Field(default=0.1, ge=0, le=1)
    feed_min_share: float = Field(default=0.05, ge=0, le=0.2)
    feed_merchant_cap: int = Field(default=0, ge=0, le=100)
    feed_reward_click: float = Field(default=1.0, ge=0, le=100)
    feed_reward_join: float = Field(default=3.0, ge=0, le=100)
    feed_reward_pay: float = Field(default=5.0, ge=0, le=100)
    feed_reward_team_success: float = Field(default=5.0, ge=0, le=100)
    # How many candidates a policy sees per slate (picked per vertical from the snapshot); how far
    # a viewer may be from a deal with a place to count as near, and to see it at all.
    feed_pool_size: int = Field(default=50, ge=10, le=1000)
    feed_near_km: float = Field(default=10.0, gt=0, le=1000)
    feed_radius_km: float = Field(default=100.0, gt=0, le=20000)
    # Each serving process: how often it reads new outbox events into its candidate snapshot,
    # rebuilds the snapshot whole (0: before every request, for tests and demos), reloads the
    # operators' rules and the learnt models, and writes its buffered impressions; at most this
    # many impressions wait in its buffer (more are dropped and counted, never waited for).
    feed_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    feed_snapshot_seconds: float = Field(default=120.0, ge=0, le=3600)
    feed_reload_seconds: float = Field(default=15.0, gt=0, le=3600)
    feed_flush_seconds: float = Field(default=0.5, gt=0, le=60)
    feed_buffer_size: int = Field(default=20000, ge=100, le=1_000_000)
    # Credit a join, payment or team success to the viewer's latest slate that showed the deal
    # or team this long before it; a slot shown and not rewarded after the learning window is
    # taught to the policies as worth nothing.
    feed_attribution_hours: int = Field(default=24, ge=1, le=720)
    feed_learn_after_minutes: int = Field(default=60, ge=1, le=10080)
    # Slates (with their placements, rewards and pools) served longer ago than this are
    # forgotten by the worker; longer than the attribution and learning windows.
    feed_log_days: int = Field(default=90, ge=2, le=3650)

    @property
    def env_is_named(self) -> bool:
        """Whether PINTUAN_ENV was set (environment, ``.env`` or code) rather than defaulted."""
        return "env" in self.model_fields_set

    def real_providers(self) -> list[str]:
        """The payment providers that move real money (or a real test account) when enabled."""
        configured = {
            "Stripe": self.stripe_secret_key is not None,
            "Alipay": bool(self.alipay_app_id),
            "WeChat Pay": bool(self.wechatpay_mch_id),
        }
        return [name for name, on in configured.items() if on]

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_trusted_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"PINTUAN_TRUSTED_PROXIES: {entry!r} is not an address or a network "
                    "such as 10.0.0.0/8"
                ) from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_in_prod(self) -> Settings:
        if not self.env_is_named and self.real_providers():
            # The default is dev, with the sandbox, the test helpers and a published secret:
            # a deployment that forgot PINTUAN_ENV must not take real payments that way.
            raise ValueError(
                f"{', '.join(self.real_providers())} is configured but PINTUAN_ENV is not set: "
                "set PINTUAN_ENV=prod for a deployment, or PINTUAN_ENV=dev to try the provider "
                "with the development defaults"
            )
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
        self._check_replica()
        self._check_feed_log()
        return self

    def _check_feed_log(self) -> None:
        kept = timedelta(days=self.feed_log_days)
        needed = max(
            timedelta(hours=self.feed_attribution_hours),
            timedelta(minutes=self.feed_learn_after_minutes),
        )
        if kept <= needed:
            raise ValueError(
                f"PINTUAN_FEED_LOG_DAYS ({self.feed_log_days}) must keep the feed's log longer "
                "than PINTUAN_FEED_ATTRIBUTION_HOURS and PINTUAN_FEED_LEARN_AFTER_MINUTES, which "
                "credit and teach from it"
            )

    def _check_replica(self) -> None:
        if not self.database_replica_url:
            return
        if self.is_sqlite or not self.database_replica_url.startswith("postgresql"):
            raise ValueError(
                "PINTUAN_DATABASE_REPLICA_URL needs PostgreSQL for both it and "
                "PINTUAN_DATABASE_URL (SQLite has no replicas)"
            )
        if self.replica_sample_seconds >= self.replica_max_lag_seconds:
            raise ValueError(
                "PINTUAN_REPLICA_SAMPLE_SECONDS must be shorter than "
                "PINTUAN_REPLICA_MAX_LAG_SECONDS, or the replica never looks fresh enough"
            )

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


class SettingsRefused(ValueError):
    """Settings that cannot run; the message names the variables, never their values."""


def describe_refusal(error: ValidationError) -> str:
    """What is wrong with the settings, without the input pydantic echoes (it holds secrets)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        field = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"PINTUAN_{field.upper()}: {message}" if field else message)
    return "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; a refusal says what to set and shows no value."""
    try:
        return Settings()
    except ValidationError as exc:
        # "from None": the chained error would print every value read, secrets included.
        raise SettingsRefused(describe_refusal(exc)) from None
