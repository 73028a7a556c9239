"""The application's long-lived services, built once at start-up and handed to every request,
the worker and the CLI. The one place where adapters are chosen and wired in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from pintuan.accounts.passwords import Passwords
from pintuan.config import Settings
from pintuan.errors import InvalidInput
from pintuan.kit.db import Database
from pintuan.kit.time import clock
from pintuan.payments.providers.base import PaymentProvider, PaymentStyle
from pintuan.payments.providers.sandbox import SandboxProvider


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    passwords: Passwords
    providers: dict[str, PaymentProvider] = field(default_factory=dict)

    def provider(self, name: str) -> PaymentProvider:
        found = self.providers.get(name)
        if found is None:
            raise InvalidInput(
                f"Unknown or disabled payment provider {name!r}; "
                f"available: {', '.join(sorted(self.providers)) or 'none'}.",
                code="unknown_provider",
                extra={"errors": [{"field": "provider", "message": "not available"}]},
            )
        return found

    @property
    def sandbox(self) -> SandboxProvider:
        provider = self.providers.get("sandbox")
        if not isinstance(provider, SandboxProvider):
            raise InvalidInput("The sandbox provider is disabled.", code="sandbox_disabled")
        return provider


def build_services(settings: Settings, db: Database | None = None) -> Services:
    db = db or Database(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.db_pool_size,
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
    return Services(
        settings=settings,
        db=db,
        passwords=Passwords(
            time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
        ),
        providers=providers,
    )


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
