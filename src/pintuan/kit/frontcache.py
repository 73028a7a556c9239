"""Kept anonymous answers served before routing: the read cache's hits without the framework.

A kept read (``pintuan.kit.readcache``) still paid, on every hit, for everything in front of
the handler: finding the route among some three hundred, and the framework's resolution of
its parameters and dependencies. On the deal list, whose nine query parameters the framework
inspects one annotation at a time, that was more than half the request.

:class:`FrontCacheMiddleware` answers a hit before the router. It knows only what a request
looks like from outside: its method, path and query, and the few headers and cookies an
anonymous answer may depend on (the host, the languages asked for, the language and time-zone
cookies). A handler that answers from the read cache *remembers* that request's front key
(:func:`remember`): which cache entry answered it, which route it was, and how an answer is made
from the entry for one request (:data:`Respond`, the handler's own code, so a front answer is
the handler's answer: its headers, ``ETag`` and ``304``, and for a page this browser's CSRF
token and new form keys). The next request with the same front key is answered from that entry
while it is fresh; otherwise it goes to its handler as before, which builds the entry again.

Only a ``GET`` carrying no credentials is ever looked up or remembered: no ``Authorization``
header and none of the credential cookies (the session's). A request the middleware passes by
is unchanged, so a signed-in viewer is never answered from here, and a write never is.
Freshness is the read cache's own (one second at most, dropped sooner by the outbox), checked
at every answer. The route is put in the request's scope as the router would, so the request's
log line and metrics name its template.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pintuan.kit.readcache import Cached, ReadCache

# The answer to one request from a kept entry: the handler's own code for its hits.
Respond = Callable[[Request, Cached[Any]], Response]

# Where the middleware leaves the index and this request's front key for :func:`remember`.
_SCOPE_KEY = "pintuan.front"

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Pointer:
    cache: ReadCache
    key: Hashable
    route: Any
    respond: Respond


class FrontIndex:
    """Which kept entry answers each front key, least recently used dropped past
    ``max_entries``. It holds pointers only: the entries, their age and their invalidation stay
    the read cache's."""

    def __init__(
        self,
        *,
        credential_cookies: Iterable[str],
        vary_cookies: Iterable[str],
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._credentials = frozenset(credential_cookies)
        self._vary_cookies = tuple(vary_cookies)
        self._no_cookies: tuple[str | None, ...] = (None,) * len(self._vary_cookies)
        self.max_entries = max_entries
        self._pointers: OrderedDict[Hashable, _Pointer] = OrderedDict()
        self.served = 0

    def __len__(self) -> int:
        return len(self._pointers)

    def key_of(self, scope: Scope) -> Hashable | None:
        """The front key of a ``GET`` without credentials (None for any other request): what
        an anonymous answer may depend on besides the route's own data."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        host = languages = cookie = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                return None
            if name == b"host":
                host = value if host is None else host
            elif name == b"accept-language":
                languages = value if languages is None else languages
            elif name == b"cookie":
                cookie = value if cookie is None else cookie
        varied = self._no_cookies
        if cookie is not None:
            cookies = cookie_parser(cookie.decode("latin-1"))
            if not self._credentials.isdisjoint(cookies):
                return None
            varied = tuple(cookies.get(name) for name in self._vary_cookies)
        return (
            scope["path"],
            scope["query_string"],
            scope.get("root_path", ""),
            scope["scheme"],
            host if host is not None else tuple(scope.get("server") or ()),
            languages,
            varied,
        )

    def remember(self, key: Hashable, pointer: _Pointer) -> None:
        pointers = self._pointers
        pointers[key] = pointer
        pointers.move_to_end(key)
        while len(pointers) > self.max_entries:
            pointers.popitem(last=False)

    def answer(self, key: Hashable, scope: Scope, receive: Receive) -> Response | None:
        """The answer kept for ``key`` while its entry is fresh, else None."""
        pointer = self._pointers.get(key)
        if pointer is None:
            return None
        entry = pointer.cache.hit(pointer.key)
        if entry is None:
            return None
        self.served += 1
        scope["route"] = pointer.route
        return pointer.respond(Request(scope, receive), entry)


def remember(request: Request, cache: ReadCache, key: Hashable, respond: Respond) -> None:
    """Let the next request like this one be answered from ``cache``'s entry under ``key``
    by ``respond``, before routing. Call it only for a request answered from that entry as
    everyone without credentials is answered; a request the middleware did not look at (one
    with credentials, a write, no middleware installed) is not remembered."""
    front = request.scope.get(_SCOPE_KEY)
    if front is not None:
        index, front_key = front
        index.remember(front_key, _Pointer(cache, key, request.scope.get("route"), respond))


class FrontCacheMiddleware:
    """Answers requests whose front key points at a fresh kept entry; passes the rest on,
    marked so that their handlers may remember them. Install it innermost, so that every
    other middleware (request log, security headers, limits) sees its answers."""

    def __init__(self, app: ASGIApp, index: FrontIndex) -> None:
        self.app = app
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self.index.key_of(scope)
        if key is not None:
            response = self.index.answer(key, scope, receive)
            if response is not None:
                await response(scope, receive, send)
                return
            scope[_SCOPE_KEY] = (self.index, key)
        await self.app(scope, receive, send)
