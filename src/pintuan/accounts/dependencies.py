"""Who is calling: a bearer API token or a web session cookie, resolved once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pintuan.accounts import service
from pintuan.domain.roles import Principal
from pintuan.errors import Unauthenticated
from pintuan.services import ServicesDep

SESSION_COOKIE = "pintuan_session"


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(
                "Send the API token as 'Authorization: Bearer <token>'.", code="invalid_token"
            )
        principal = await services.db.run_raw(
            service.principal_for_api_token, secret.strip(), write=False
        )
        if principal is None:
            raise Unauthenticated(
                "This API token is unknown or revoked; create a new one.", code="invalid_token"
            )
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await services.db.read(service.principal_for_web_session, cookie)
    return None


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthenticated("Log in or send an API token to do this.")
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
