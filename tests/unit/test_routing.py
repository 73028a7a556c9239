"""The application's routers say "no match" with one pattern test when a path is none of
theirs, and otherwise match exactly as the framework does: methods, parameters, order."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.kit.routing import Router


def _app() -> FastAPI:
    inner = Router()

    @inner.get("/things/{thing_id}/parts")
    async def parts(thing_id: str) -> dict[str, str]:
        return {"parts_of": thing_id}

    outer = Router(prefix="/v1")

    @outer.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    @outer.post("/things")
    async def new_thing() -> dict[str, str]:
        return {"made": "yes"}

    outer.include_router(inner)
    later = Router()

    @later.get("/{anything}")
    async def anything(anything: str) -> dict[str, str]:
        return {"caught": anything}

    app = FastAPI()
    app.include_router(outer)
    app.include_router(later)
    return app


def test_paths_match_as_before_through_nested_routers() -> None:
    client = TestClient(_app())
    assert client.get("/v1/things/t1").json() == {"thing": "t1"}
    assert client.get("/v1/things/t1/parts").json() == {"parts_of": "t1"}
    assert client.post("/v1/things").json() == {"made": "yes"}
    # A path of the first router with another method is still 405, not the catch-all's.
    assert client.delete("/v1/things/t1").status_code == 405
    assert client.get("/elsewhere").json() == {"caught": "elsewhere"}
    assert client.get("/v1/nothing/here/at/all").status_code == 404


def test_a_path_none_of_its_routes_serve_is_refused_by_the_pattern_alone() -> None:
    router = Router()

    @router.get("/v1/feed")
    async def feed() -> None:
        return None

    index = router.path_index()
    assert index is not None
    assert index.match("/v1/feed") is not None
    assert index.match("/v1/feedback") is None
    scope = {"type": "http", "method": "GET", "path": "/v1/teams", "root_path": ""}
    assert router.matches(scope) == (Match.NONE, {})


def test_a_route_added_later_is_in_the_pattern() -> None:
    router = Router()

    @router.get("/a")
    async def a() -> None:
        return None

    assert router.path_index() is not None
    assert router.path_index().match("/b") is None  # type: ignore[union-attr]

    @router.get("/b")
    async def b() -> None:
        return None

    assert router.path_index().match("/b") is not None  # type: ignore[union-attr]


def test_a_router_included_under_a_prefix_matches_under_it() -> None:
    inner = Router()

    @inner.get("/x")
    async def x() -> dict[str, str]:
        return {"x": "yes"}

    outer = Router()
    outer.include_router(inner, prefix="/under")
    app = FastAPI()
    app.include_router(outer)
    client = TestClient(app)
    assert client.get("/under/x").json() == {"x": "yes"}
    assert client.get("/x").status_code == 404
    index = inner.path_index("/under")
    assert index is not None
    assert index.match("/under/x") is not None
    assert index.match("/x") is None


def test_every_router_of_the_application_has_a_pattern(settings: Settings) -> None:
    """A router of plain ``APIRouter`` (or one included under a prefix) would be asked route by
    route for every request that reaches it: about 2.5 µs a route."""
    app = create_app(settings)
    included = [route for route in app.router.routes if hasattr(route, "original_router")]
    assert len(included) > 30
    for route in included:
        router = route.original_router
        assert isinstance(router, Router), router
        assert router.path_index() is not None, router
