"""Small request facts and query parameters every HTTP endpoint shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from pintuan.errors import InvalidInput
from pintuan.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT


async def refuse_nul_characters(request: Request) -> None:
    """Refuse a path or query holding a NUL character (422): no id, code or name has one, and
    PostgreSQL cannot even compare text with it, so it would end as a 500."""
    if "\x00" in request.url.path or "%00" in request.url.query:
        raise InvalidInput("The path or query holds a NUL character.")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="next_cursor from the previous page")
]
DEFAULT_PAGE = DEFAULT_LIMIT
