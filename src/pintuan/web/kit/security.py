"""Security headers on every HTML response, and Secure cookies in production.

Pages load script and style only from this site (no inline script or style attribute), may not
be framed, and post forms only to this site.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"
HTML_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
)
EVERY_RESPONSE: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)
# The interactive API docs are the framework's own page, built from inline script and a CDN:
# they get every header but the policy.
POLICY_EXEMPT_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def _secure(cookie: bytes) -> bytes:
    parts = [p.strip().lower() for p in cookie.split(b";")]
    return cookie if b"secure" in parts else cookie + b"; Secure"


class SecurityHeadersMiddleware:
    """Pure ASGI, so it costs no task hop per request. With ``secure_cookies`` (production)
    every cookie set by any route is marked ``Secure``."""

    def __init__(self, app: ASGIApp, *, secure_cookies: bool = False) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                added = list(EVERY_RESPONSE)
                if content_type.startswith(b"text/html"):
                    added += [
                        header
                        for header in HTML_HEADERS
                        if scope["path"] not in POLICY_EXEMPT_PATHS
                        or header[0] != b"content-security-policy"
                    ]
                headers += [(name, value) for name, value in added if name not in names]
                if self.secure_cookies:
                    headers = [
                        (name, _secure(value) if name.lower() == b"set-cookie" else value)
                        for name, value in headers
                    ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
