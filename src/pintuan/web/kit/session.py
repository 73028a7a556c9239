"""Who is looking at a page: the session cookie that ``POST /v1/sessions`` (or the log-in page)
issues, resolved once per request. Pages never accept bearer tokens: a page is for a browser."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from pintuan.accounts.dependencies import SESSION_COOKIE, principal_of_session_cookie
from pintuan.config import Environment, Settings
from pintuan.domain.roles import Principal
from pintuan.errors import Forbidden, Unauthenticated
from pintuan.web.kit.services import services_of

_UNKNOWN = object()


class LoginRequired(Unauthenticated):
    """A page that needs a signed-in viewer; pages answer it with a redirect to ``/login``."""

    code = "login_required"

    def __init__(self, next_url: str) -> None:
        super().__init__("Log in to see this page.")
        self.next_url = safe_next(next_url)

    @property
    def login_url(self) -> str:
        return "/login?next=" + quote(self.next_url, safe="/")


def safe_next(url: str | None, default: str = "/") -> str:
    """A place on this site to go back to; anything else (``//evil``, ``https:…``) gives
    ``default``."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


# A path and query the request's URL gives back as they are (no character Starlette escapes in
# a path, or that splitting a URL drops or splits at).
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/_.~%!$&'()*+,;=:@-]*")
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9/_.~%!$&'()*+,;=:@?-]*")


def here(request: Request) -> str:
    """This request's path and query, to come back to after logging in."""
    scope = request.scope
    path: str = scope["path"]
    query_string: bytes = scope.get("query_string", b"")
    if _PLAIN_PATH.fullmatch(path) and _PLAIN_QUERY.fullmatch(query_string):
        # What ``request.url`` gives (tests/unit/test_here.py), without building the URL.
        return path + ("?" + query_string.decode("ascii") if query_string else "")
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def page_principal(request: Request) -> Principal | None:
    """The signed-in viewer, or None. Looked up once per request, however often it is asked."""
    cached = getattr(request.state, "page_principal", _UNKNOWN)
    if cached is not _UNKNOWN:
        assert cached is None or isinstance(cached, Principal)
        return cached
    secret = request.cookies.get(SESSION_COOKIE)
    principal = await principal_of_session_cookie(services_of(request), secret) if secret else None
    request.state.page_principal = principal
    return principal


def forget_page_principal(request: Request, principal: Principal | None = None) -> None:
    """After logging in or out, or changing the account, within this request."""
    request.state.page_principal = principal


async def require_login(request: Request) -> Principal:
    """The signed-in viewer; anybody else is sent to ``/login?next=<this page>``."""
    principal = await page_principal(request)
    if principal is None:
        raise LoginRequired(here(request))
    return principal


async def require_staff(request: Request, merchant_id: str) -> Principal:
    """The signed-in viewer if they may manage ``merchant_id`` (its staff, or an operator).

    As a dependency it reads ``merchant_id`` from the route's path."""
    principal = await require_login(request)
    if not principal.can_manage(merchant_id):
        raise Forbidden(
            f"Only staff of merchant {merchant_id} may see this page.", code="not_merchant_staff"
        )
    return principal


async def require_operator(request: Request) -> Principal:
    """The signed-in viewer if they are a platform operator."""
    principal = await require_login(request)
    if not principal.is_operator:
        raise Forbidden("Only platform operators may see this page.", code="operator_only")
    return principal


def set_session_cookie(response: Response, secret: str, settings: Settings) -> None:
    """The browser session cookie, exactly as ``POST /v1/sessions`` sets it."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(timedelta(days=settings.session_days).total_seconds()),
        httponly=True,
        secure=settings.env is Environment.PROD,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


PagePrincipal = Annotated[Principal | None, Depends(page_principal)]
LoggedIn = Annotated[Principal, Depends(require_login)]
StaffOfMerchant = Annotated[Principal, Depends(require_staff)]
Operator = Annotated[Principal, Depends(require_operator)]
