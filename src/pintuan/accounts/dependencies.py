"""Who is calling: a bearer API token or a web session cookie, resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from pintuan.accounts import service
from pintuan.domain.apps import is_app_access_token
from pintuan.domain.roles import Principal
from pintuan.errors import Forbidden, Unauthenticated
from pintuan.kit.rawsql import RawTx
from pintuan.services import Services, ServicesDep

SESSION_COOKIE = "pintuan_session"


def _bearer_secret(header: str) -> str:
    """The token of an ``Authorization`` header, refused when malformed or an app's."""
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
    return secret.strip()


def _unknown_token() -> Unauthenticated:
    return Unauthenticated(
        "This API token is unknown, revoked or expired; create a new one.", code="invalid_token"
    )


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    header = request.headers.get("authorization")
    if header is not None:
        secret = _bearer_secret(header)
        use = await services.db.run_raw(service.use_api_token, secret, write=False)
        if use is None:
            raise _unknown_token()
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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a hot raw write: a principal already known (a session cookie), or a bearer
    token that :meth:`__call__` looks up inside the write's own transaction, saving the lookup
    a transaction of its own."""

    principal: Principal | None = None
    secret: str | None = None

    def __call__(self, tx: RawTx) -> Principal:
        if self.principal is not None:
            return self.principal
        use = service.use_api_token(tx, self.secret or "")
        if use is None:
            raise _unknown_token()
        if use.touch_due:
            service.touch_api_token(tx, use.token_id)
        return use.principal

    async def identify(self, services: Services) -> Principal:
        """Who calls, for a request answered without a write of its own: the token looked up
        in a read, and its use recorded in a write of its own only when that is due."""
        if self.principal is not None:
            return self.principal
        use = await services.db.run_raw(service.use_api_token, self.secret or "", write=False)
        if use is None:
            raise _unknown_token()
        if use.touch_due:
            await services.db.run_raw(service.touch_api_token, use.token_id)
        return use.principal


async def require_caller(request: Request, services: ServicesDep) -> Caller:
    """:func:`require_principal`, with a bearer token's lookup left to the write's transaction
    (the token's form is checked here, as before any other work)."""
    header = request.headers.get("authorization")
    if header is not None:
        return Caller(secret=_bearer_secret(header))
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await principal_of_session_cookie(services, cookie) if cookie else None
    if principal is None:
        raise Unauthenticated("Log in or send an API token to do this.")
    return Caller(principal=principal)


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
CurrentCaller = Annotated[Caller, Depends(require_caller)]
