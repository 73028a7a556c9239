"""The first-party visitor id, and linking it to the account that uses it.

Opening a share sets ``pt_vid``: 128 random bits, HttpOnly, SameSite=Lax, for a year. Nothing
else is in it. When a request carries both ``pt_vid`` and a signed-in credential (session
cookie or API token), :class:`VisitorLinkMiddleware` records once that the visitor is that
user, so visits made before signing in count for the orders made after. A second cookie,
``pt_vl``, a keyed hash of the pair, says the link is already recorded: later requests skip
the lookup, and a different account on the same browser is linked again.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pintuan.accounts import service as accounts
from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.config import Environment, Settings
from pintuan.domain.traffic import is_visitor_id, new_visitor_id
from pintuan.kit.cookies import set_cookie
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.secrets import same_secret
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.shares import service

VISITOR_COOKIE = "pt_vid"
_VISITOR_COOKIE_NAME = VISITOR_COOKIE.encode()
LINKED_COOKIE = "pt_vl"
VISITOR_COOKIE_AGE = timedelta(days=365)


def visitor_id_of(request: Request) -> tuple[str, bool]:
    """The request's visitor id, and whether it is new (and must be set as a cookie)."""
    found = request.cookies.get(VISITOR_COOKIE)
    if is_visitor_id(found):
        assert found is not None
        return found, False
    return new_visitor_id(), True


def set_visitor_cookie(response: Response, visitor_id: str, settings: Settings) -> None:
    set_cookie(
        response,
        VISITOR_COOKIE,
        visitor_id,
        max_age=int(VISITOR_COOKIE_AGE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.env is Environment.PROD,
        path="/",
    )


def _credential(headers: dict[bytes, bytes], cookies: dict[str, str]) -> tuple[str, str] | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return "token", secret.strip()
    session = cookies.get(SESSION_COOKIE)
    return ("session", session) if session else None


def link_marker(secret_key: str, visitor_id: str, credential: str) -> str:
    message = f"{visitor_id}:{hashlib.sha256(credential.encode()).hexdigest()}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


class VisitorLinkMiddleware:
    """Links ``pt_vid`` to the signed-in user the first time both arrive together."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie_header = b""
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie_header = value  # the last one, as the dictionary below keeps it
        if _VISITOR_COOKIE_NAME not in cookie_header:  # most requests: no visitor id to link
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cookies = cookie_parser(cookie_header.decode("latin-1"))
        visitor = cookies.get(VISITOR_COOKIE)
        credential = _credential(headers, cookies) if visitor is not None else None
        if visitor is None or credential is None or not is_visitor_id(visitor):
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        marker = link_marker(services.settings.secret_key, visitor, credential[1])
        if same_secret(cookies.get(LINKED_COOKIE, ""), marker):
            await self.app(scope, receive, send)
            return
        linked = await services.db.run(_link, visitor, credential)
        if not linked:
            await self.app(scope, receive, send)
            return
        secure = "; Secure" if services.settings.env is Environment.PROD else ""
        cookie = (
            f"{LINKED_COOKIE}={marker}; Max-Age={int(VISITOR_COOKIE_AGE.total_seconds())}; "
            f"Path=/; HttpOnly; SameSite=Lax{secure}"
        )

        async def send_with_marker(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"set-cookie", cookie.encode("latin-1")),
                ]
            await send(message)

        await self.app(scope, receive, send_with_marker)


def _link(session: Session, visitor_id: str, credential: tuple[str, str]) -> bool:
    kind, secret = credential
    principal = (
        accounts.principal_for_api_token(raw_tx(session), secret)
        if kind == "token"
        else accounts.principal_for_web_session(session, secret)
    )
    if principal is None:
        return False
    service.link_visitor(session, visitor_id, principal.user_id, utc_now())
    return True
