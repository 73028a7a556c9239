"""The application's long-lived services, handed to every request, the worker and the CLI.

``pintuan.bootstrap`` builds them; this module only says what they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from pintuan.config import Settings
from pintuan.domain.media import MediaStore
from pintuan.domain.payments import PaymentProvider
from pintuan.errors import AppError, InvalidInput
from pintuan.kit.db import Database
from pintuan.kit.passwords import Passwords
from pintuan.kit.readcache import ReadCache
from pintuan.kit.redislink import RedisLink


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    passwords: Passwords
    providers: dict[str, PaymentProvider] = field(default_factory=dict)
    media: MediaStore | None = None
    # Anonymous reads, kept a second at most (see pintuan.kit.readcache).
    reads: ReadCache = field(default_factory=ReadCache)
    # Redis, when PINTUAN_REDIS_URL is set (see pintuan.kit.redislink); None: the database does all.
    redis: RedisLink | None = None

    def media_store(self) -> MediaStore:
        if self.media is None:
            raise AppError(
                "Pictures cannot be stored or served here: no media store is configured.",
                code="media_unavailable",
                status=503,
                title="Pictures unavailable",
            )
        return self.media

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


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread.
    return services_of(request)


def services_of(request: Request) -> Services:
    """The services ``create_app`` put on the application, for the hottest endpoints, which
    take no dependencies (see ``teams/api.py``), and for code that is no dependency."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
