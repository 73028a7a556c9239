"""Small request facts and query parameters every HTTP endpoint shares."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Query, Request
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from pintuan.errors import AppError, InvalidInput
from pintuan.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT


class TrustedProxies:
    """The proxies (addresses or networks) whose ``X-Forwarded-For`` is believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._networks = tuple(ip_network(entry, strict=False) for entry in entries)

    def trusts(self, address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)

    def client_of(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The client behind ``peer``: the peer itself unless it is a trusted proxy; then the
        nearest address in ``X-Forwarded-For`` (read from the right, the side our own proxies
        append to) that is not a trusted proxy. Addresses further left were written by the
        client and could say anything."""
        if peer is None:
            return "unknown"
        if not self._networks or not self.trusts(peer):
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                ip_address(hop)
            except ValueError:
                break
            client = hop
            if not self.trusts(hop):
                break
        return client


NO_PROXIES = TrustedProxies()


def url_path(scope: Scope) -> str:
    """The request's path as ``request.url.path`` gives it, without building the whole URL:
    the framework builds that anew for each ``Request`` object, host, query and all (on
    PostgreSQL the two a join made were about a fourteenth of its CPU)."""
    path: str = scope["path"]
    if not path.isprintable() or "?" in path or "#" in path or "\\" in path:
        return URL(scope=scope).path  # it escapes or drops these: let it say how
    return path


class RefuseNulMiddleware:
    """Refuse a path or query holding a NUL character (422): no id, code or name has one, and
    PostgreSQL cannot even compare text with it, so it would end as a 500.

    Pure ASGI rather than a dependency of every route: a dependency costs each request a pass
    through FastAPI's dependency solver, this a substring test. The refusal is answered by the
    application's own handler for :class:`AppError` (a page for a browser, problem details for
    the API), as if a route had raised it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            handler = scope["app"].exception_handlers[AppError]
            refusal = InvalidInput("The path or query holds a NUL character.")
            response = await handler(Request(scope, receive), refusal)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def client_address(request: Request) -> str:
    """The one place that decides who the client is, for every per-client limit and record:
    the socket peer, or the forwarded address when the peer is a trusted proxy
    (``PINTUAN_TRUSTED_PROXIES``, kept on the app's state by ``install_request_limits``)."""
    trusted: TrustedProxies = getattr(request.app.state, "trusted_proxies", NO_PROXIES)
    peer = request.client.host if request.client else None
    return trusted.client_of(peer, request.headers.getlist("x-forwarded-for"))


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="next_cursor from the previous page")
]
DEFAULT_PAGE = DEFAULT_LIMIT
