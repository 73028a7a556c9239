"""Which app is calling, from the OAuth access token in ``Authorization: Bearer``, and whether
its grant covers the scope a route needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from pintuan.domain.apps import AppPrincipal, Scope
from pintuan.errors import Forbidden, Unauthenticated


async def current_app(request: Request) -> AppPrincipal:
    """The app a request acts as; until the OAuth server issues tokens, no request is one."""
    raise Unauthenticated(
        "Send an app access token as 'Authorization: Bearer <token>'.", code="invalid_token"
    )


def require_scope(scope: Scope) -> Callable[..., Awaitable[AppPrincipal]]:
    """A dependency that lets a request through only when its app's grant includes ``scope``."""

    async def check(app: Annotated[AppPrincipal, Depends(current_app)]) -> AppPrincipal:
        if not app.has(scope):
            raise Forbidden(
                f"This app's grant does not include the '{scope}' scope.",
                code="insufficient_scope",
            )
        return app

    return check
