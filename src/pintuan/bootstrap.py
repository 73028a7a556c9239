"""Builds the application's services: the one place where adapters are chosen and wired in."""

from __future__ import annotations

from datetime import timedelta

from pintuan.config import Settings
from pintuan.domain.payments import PaymentProvider, PaymentStyle
from pintuan.kit.db import Database
from pintuan.kit.passwords import Passwords
from pintuan.kit.readcache import ReadCache
from pintuan.kit.redislink import RedisLink
from pintuan.kit.time import clock
from pintuan.media.stores import media_store_for
from pintuan.payments.providers.alipay import AlipayProvider
from pintuan.payments.providers.sandbox import SandboxProvider
from pintuan.payments.providers.stripe import StripeProvider
from pintuan.payments.providers.wechatpay import WeChatPayProvider
from pintuan.services import Services


def build_services(settings: Settings, db: Database | None = None) -> Services:
    db = db or Database(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        request_wait_ms=settings.sqlite_request_wait_ms,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
        replica_url=settings.database_replica_url,
        replica_max_lag_seconds=settings.replica_max_lag_seconds,
        replica_sample_seconds=settings.replica_sample_seconds,
    )
    clock.offset = timedelta(seconds=settings.clock_offset_seconds)
    providers: dict[str, PaymentProvider] = {}
    if settings.sandbox_enabled:
        providers["sandbox"] = SandboxProvider(
            db,
            secret=settings.sandbox_secret(),
            style=PaymentStyle(settings.sandbox_style),
            base_url=settings.base_url,
        )
    if settings.alipay_app_id:
        providers["alipay"] = AlipayProvider.from_settings(settings)
    if settings.wechatpay_mch_id:
        providers["wechatpay"] = WeChatPayProvider.from_settings(settings)
    if settings.stripe_secret_key is not None:
        webhook_secret = settings.stripe_webhook_secret
        providers["stripe"] = StripeProvider(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            webhook_secret=webhook_secret.get_secret_value() if webhook_secret else None,
            publishable_key=settings.stripe_publishable_key,
            api_base=settings.stripe_api_base,
        )
    return Services(
        settings=settings,
        db=db,
        passwords=Passwords(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            concurrency=settings.password_hash_concurrency,
            wait_seconds=settings.password_hash_wait_seconds,
        ),
        providers=providers,
        media=media_store_for(settings),
        reads=ReadCache(settings.read_cache_seconds, settings.read_cache_entries),
        redis=RedisLink(settings.redis_url) if settings.redis_url else None,
    )
