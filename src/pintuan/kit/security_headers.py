"""Response headers that keep private answers out of caches, pages out of other sites' frames
and scripts, cookies and, in prod, browsers on HTTPS: all in one pass over an answer's headers.

What the headers say is the caller's (the pages' policy is ``web.kit.security``'s); this module
only applies them, once per answer, in one middleware layer.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Two years, as the HSTS preload list asks; subdomains too, so no sibling serves plain HTTP.
HSTS = "max-age=63072000; includeSubDomains"
Header = tuple[bytes, bytes]
_CSP = b"content-security-policy"
_NO_STORE: Header = (b"cache-control", b"no-store")
_HSTS: Header = (b"strict-transport-security", HSTS.encode())


def secure_cookie(cookie: bytes) -> bytes:
    """A ``Set-Cookie`` value marked ``Secure`` (once)."""
    parts = [p.strip().lower() for p in cookie.split(b";")]
    return cookie if b"secure" in parts else cookie + b"; Secure"


class SecurityHeadersMiddleware:
    """Pure ASGI, one layer for every security header of an answer:

    * ``every_response`` on every answer and ``html_headers`` on HTML ones, each unless the
      answer set it itself (the content security policy never on ``policy_exempt_paths``);
    * ``Cache-Control: no-store`` on answers a shared cache must not keep: to a caller with
      credentials (``Authorization`` or the session cookie), unless the answer already says how
      to cache it (a public image, say), and on any answer that sets a cookie, whatever it said;
    * with ``hsts``, ``Strict-Transport-Security``; with ``secure_cookies``, every cookie set by
      any route marked ``Secure``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        session_cookie: str,
        hsts: bool,
        secure_cookies: bool = False,
        every_response: Iterable[Header] = (),
        html_headers: Iterable[Header] = (),
        policy_exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.session_cookie = session_cookie.encode() + b"="
        self.hsts = hsts
        self.secure_cookies = secure_cookies
        self.every_response = tuple(every_response)
        self.html_headers = tuple(html_headers)
        self.exempt_html_headers = tuple(h for h in self.html_headers if h[0] != _CSP)
        self.policy_exempt_paths = frozenset(policy_exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentials = False
        for name, value in scope["headers"]:
            if name == b"authorization" or (name == b"cookie" and self.session_cookie in value):
                credentials = True
                break

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.headers_for(
                    scope["path"], message.get("headers", ()), credentials
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def headers_for(self, path: str, given: Iterable[Header], credentials: bool) -> list[Header]:
        """The answer's headers with the security headers added, read and written in one pass."""
        headers = list(given)
        names = set()
        html = sets_cookie = False
        for name, value in headers:
            name = name.lower()
            names.add(name)
            if name == b"content-type":
                html = value.startswith(b"text/html")
            elif name == b"set-cookie":
                sets_cookie = True
        added = [header for header in self.every_response if header[0] not in names]
        if html:
            page = (
                self.exempt_html_headers if path in self.policy_exempt_paths else self.html_headers
            )
            added += [header for header in page if header[0] not in names]
        if sets_cookie or (credentials and b"cache-control" not in names):
            if b"cache-control" in names:
                headers = [h for h in headers if h[0].lower() != b"cache-control"]
            added.append(_NO_STORE)
        if self.hsts:
            if b"strict-transport-security" in names:
                headers = [h for h in headers if h[0].lower() != b"strict-transport-security"]
            added.append(_HSTS)
        if self.secure_cookies and sets_cookie:
            headers = [
                (name, secure_cookie(value) if name.lower() == b"set-cookie" else value)
                for name, value in headers
            ]
        headers += added
        return headers
