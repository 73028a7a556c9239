"""Response headers that keep private answers out of caches and, in prod, browsers on HTTPS."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Two years, as the HSTS preload list asks; subdomains too, so no sibling serves plain HTTP.
HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Adds ``Cache-Control: no-store`` to answers a shared cache must not keep (to a caller with
    credentials, or setting a cookie) and, with ``hsts``, ``Strict-Transport-Security`` to all.

    An answer to a signed-in caller that already says how to cache it (a public image, say)
    keeps its own header; an answer that sets a cookie never may be stored.
    """

    def __init__(self, app: ASGIApp, *, session_cookie: str, hsts: bool) -> None:
        self.app = app
        self.session_cookie = session_cookie.encode() + b"="
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentials = any(
            name == b"authorization" or (name == b"cookie" and self.session_cookie in value)
            for name, value in scope["headers"]
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "set-cookie" in headers or (credentials and "cache-control" not in headers):
                    headers["cache-control"] = "no-store"
                if self.hsts:
                    headers["strict-transport-security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
