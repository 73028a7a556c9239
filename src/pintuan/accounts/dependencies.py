"""Who is calling: a bearer API token or a web session cookie, resolved once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pintuan.accounts import service
from pintuan.domain.apps import is_app_access_token
from pintuan.domain.roles import Principal
from pintuan.errors import Forbidden, Unauthenticated
from pintuan.services import Services, ServicesDep

SESSION_COOKIE = "pintuan_session"


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(
                "Send the API token as 'Authorization: Bearer <token>'.", code="invalid_token"
            )
        if is_app_access_token(secret.strip()):
            raise Forbidden(
                "This route is for people: an app's access token cannot call it. "
                "Use a user's API token or the app routes under /v1/partner.",
                code="user_token_required",
            )
        use = await services.db.run_raw(service.use_api_token, secret.strip(), write=False)
        if use is None:
            raise Unauthenticated(
                "This API token is unknown, revoked or expired; create a new one.",
                code="invalid_token",
            )
        if use.touch_due:
            await services.db.run_raw(service.touch_api_token, use.token_id)
        return use.principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await principal_of_session_cookie(services, cookie)
    return None


async def principal_of_session_cookie(services: Services, secret: str) -> Principal | None:
    """Who a session cookie acts for; its last use is written at most once a minute."""
    use = await services.db.read(service.use_web_session, secret)
    if use is None:
        return None
    if use.touch_due:
        await services.db.run(service.touch_web_session, use.session_id)
    return use.principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthenticated("Log in or send an API token to do this.")
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
