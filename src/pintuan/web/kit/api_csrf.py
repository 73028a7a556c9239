"""CSRF protection for API writes that a browser authenticates with its session cookie.

A bearer token is sent only by code that holds it, so a request with ``Authorization`` needs no
more. A session cookie, though, is attached by the browser to requests that other sites make it
send; ``SameSite=Lax`` alone still lets a same-site page (another subdomain) and older browsers
through. So a ``/v1`` write that carries the session cookie and no bearer token must also show
that it comes from our own pages: the page's CSRF token in ``X-CSRF-Token`` (see
:mod:`pintuan.web.kit.csrf`), or a browser's own word that it is same-origin
(``Sec-Fetch-Site: same-origin``, or an ``Origin`` equal to ours). Otherwise it is refused with
403 ``csrf_failed`` before anything runs.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.errors import PROBLEM_JSON
from pintuan.kit.http import url_path
from pintuan.web.kit.csrf import CSRF_HEADER, CsrfFailed, token_matches
from pintuan.web.kit.services import services_of

API_PREFIX = "/v1/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writes authenticated by the credentials in their body, never by the cookie: a browser that
# holds a session may still log in as someone else, sign up, or exchange a password for a token.
CREDENTIAL_WRITES = frozenset({"/v1/sessions", "/v1/signup", "/v1/tokens"})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_same_origin(request: Request) -> bool:
    """The browser says the request comes from a page of this site."""
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    ours = {
        _origin(services_of(request).settings.base_url),
        f"{request.url.scheme}://{request.headers.get('host', '')}".lower(),
    }
    return origin.lower().rstrip("/") in ours


def needs_proof(request: Request) -> bool:
    """A ``/v1`` write authenticated by the session cookie rather than a bearer token."""
    if request.method in SAFE_METHODS or "authorization" in request.headers:
        return False
    path = url_path(request.scope)
    return (
        path.startswith(API_PREFIX)
        and path not in CREDENTIAL_WRITES
        and bool(request.cookies.get(SESSION_COOKIE))
    )


class ApiCsrfMiddleware:
    """Refuses a cookie-authenticated ``/v1`` write without a CSRF token or a same-origin sign.
    Pure ASGI: reads pass untouched at the cost of a comparison, other writes of a header
    look-up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            request = Request(scope)
            if (
                needs_proof(request)
                and not is_same_origin(request)
                and not token_matches(request, request.headers.get(CSRF_HEADER))
            ):
                await _refuse(request, scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _refuse(request: Request, scope: Scope, receive: Receive, send: Send) -> None:
    refusal = CsrfFailed(
        "A write authenticated by the session cookie must come from this site's pages: send "
        "the page's CSRF token in X-CSRF-Token, or use an API token (Authorization: Bearer)."
    )
    body = json.dumps(refusal.problem(url_path(scope))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
