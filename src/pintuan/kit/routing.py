"""A router that says at once when a request's path is none of its routes'.

The application includes some forty routers, and the framework finds a request's route by asking
each included router in turn, which asks each of its routes: about 2.5 µs a route, so a path
served by a router near the end (the feed, the home page) paid about 0.75 ms before its handler
ran, and a path no route serves paid for all three hundred. A ``Router`` keeps one compiled
pattern of every path its routes (and the routers it includes) serve, and answers "no match"
with one regular-expression test when the path is not among them; when it is, the framework's own
matching runs as before, so methods (405), path parameters and the order of routes are
unchanged.

The prefix a router is included under (its own, or a parent router's) is part of its pattern;
the framework names the inclusion being matched in the request's scope. Routes are declared
before the first request (at import and in ``create_app``); a route added to a ``Router`` later
makes it build its patterns again. A router holding a route without a path pattern is never
skipped (its pattern would not say what it serves).

``PlainRoute``, a route class for the hot paths' routers, calls an endpoint that needs nothing of
the framework's parameter resolution directly (see its docstring)."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, _effective_route_context_var, _get_scope_included_router
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def _patterns(routes: list[Any]) -> list[str] | None:
    """Every path pattern of ``routes`` (without its leading ``^``), through included routers
    and their prefixes; ``None`` when some route's paths cannot be told from a pattern."""
    found: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", None)
            inner = _patterns(included.routes) if isinstance(included, APIRouter) else None
            if inner is None or not isinstance(prefix, str):
                return None
            found.extend(re.escape(prefix) + pattern for pattern in inner)
            continue
        regex = getattr(route, "path_regex", None)
        if not isinstance(regex, re.Pattern) or not regex.pattern.startswith("^"):
            return None
        # One alternation cannot name a group twice; the groups are not needed to say yes/no.
        found.append(_NAMED_GROUP.sub("(?:", regex.pattern[1:]))
    return found


class Router(APIRouter):
    """``APIRouter`` with a one-pattern test of the path before its routes are tried."""

    # Per prefix it is included under: the pattern, or None (never skip).
    _indexes: dict[str, re.Pattern[str] | None] | None = None

    def path_index(self, prefix: str = "") -> re.Pattern[str] | None:
        """The pattern of every path this router serves when included under ``prefix`` (built
        on first use)."""
        indexes = self._indexes
        if indexes is None:
            indexes = self._indexes = {}
        if prefix not in indexes:
            patterns = _patterns(self.routes)
            indexes[prefix] = (
                None
                if patterns is None
                else re.compile(
                    "^" + re.escape(prefix) + "(?:" + ("|".join(patterns) or "(?!)") + ")"
                )
            )
        return indexes[prefix]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The framework names the inclusion being matched (and so its prefix) in the scope; the
        # path is the one its routes match against (without the application's root path).
        included = _get_scope_included_router(scope)
        if included is not None and getattr(included, "original_router", None) is self:
            prefix = getattr(getattr(included, "include_context", None), "prefix", None)
            index = self.path_index(prefix) if isinstance(prefix, str) else None
            if index is not None and index.match(get_route_path(scope)) is None:
                return Match.NONE, {}
        return super().matches(scope)

    def _mark_routes_changed(self) -> None:
        # The framework's own hook when a route or router is added here: build anew.
        self._indexes = None
        super()._mark_routes_changed()


class PlainRoute(APIRoute):
    """A route whose endpoint is called directly with the request and its path parameters.

    For an endpoint that takes only the request and path parameters of plain text, and returns
    its own ``Response`` (the hot paths: the feed, the home page, a join), the framework's
    handler still resolved its parameters, opened its dependency scopes and checked the
    response: about 15 µs a request that did nothing for them. Such an endpoint is awaited as
    ``endpoint(request, **path_params)`` instead, with the rest of the route (matching, body
    limit, exception handlers, OpenAPI) unchanged. A route that needs anything more (a
    dependency of its own or of a router it is included in, a query, header, cookie or body
    parameter, a path parameter with a type or constraint) is handled by the framework as
    before, so a router may use this class for all its routes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        context = _effective_route_context_var.get()
        dependant = (
            context.dependant
            if context is not None and context.original_route is self
            else self.dependant
        )
        names = _plain_path_params(dependant)
        call = dependant.call
        if (
            names is None
            or call is None
            or not inspect.iscoroutinefunction(call)
            or not _returns_response(call)
        ):
            return super().get_route_handler()
        request_name = dependant.request_param_name

        async def handler(request: Request) -> Response:
            arguments = {name: request.path_params[name] for name in names}
            if request_name is not None:
                arguments[request_name] = request
            response = await call(**arguments)
            if not isinstance(response, Response):
                raise TypeError(f"{call.__qualname__} must return a Response as a plain route")
            return response

        return handler


def _plain_path_params(dependant: Dependant) -> list[str] | None:
    """The names of ``dependant``'s path parameters when it takes nothing else than those (as
    plain text) and the request; otherwise None."""
    if (
        dependant.dependencies
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    ):
        return None
    names = []
    for param in dependant.path_params:
        if param.field_info.annotation is not str or param.field_info.metadata:
            return None
        names.append(param.name)
    return names


def _returns_response(call: Callable[..., Any]) -> bool:
    """Whether ``call`` says it returns a ``Response`` (anything else is the framework's to
    serialise)."""
    try:
        returned = typing.get_type_hints(call).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)
