"""Small request facts and query parameters every HTTP endpoint shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from pintuan.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="next_cursor from the previous page")
]
DEFAULT_PAGE = DEFAULT_LIMIT
