"""What every HTTP endpoint needs: the running app's services and a few request facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from pintuan.accounts.passwords import Passwords
from pintuan.config import Settings
from pintuan.kit.db import Database
from pintuan.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT


@dataclass(frozen=True, slots=True)
class Services:
    """Built once at start-up by ``create_app`` and shared by every request."""

    settings: Settings
    db: Database
    passwords: Passwords


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ServicesDep = Annotated[Services, Depends(get_services)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="next_cursor from the previous page")
]
DEFAULT_PAGE = DEFAULT_LIMIT
