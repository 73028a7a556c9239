"""A plain route calls its endpoint directly with the request and its path's text; a route that
needs more of the framework (a dependency, its own or its router's, a typed or constrained path
parameter, a query parameter, a model to serialise) is the framework's, as before."""

from __future__ import annotations

from typing import Annotated, Any

import fastapi.routing
import pytest
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from pintuan.kit.routing import PlainRoute, Router

CALLS: list[str] = []
RESOLVED: list[str] = []  # the framework's resolutions of a route's parameters


def noted() -> None:
    CALLS.append("dependency")


def make_app() -> FastAPI:
    router = Router(route_class=PlainRoute)

    @router.get("/plain/{name}")
    async def plain(name: str, request: Request) -> Response:
        return JSONResponse({"name": name, "q": request.query_params.get("q")})

    @router.post("/plain/{name}/refused", status_code=201)
    async def refused(name: str, request: Request) -> Response:
        raise HTTPException(status_code=409, detail=f"{name} refused")

    @router.get("/typed/{n}")
    async def typed(n: int, request: Request) -> Response:
        return JSONResponse({"n": n})

    @router.get("/constrained/{name}")
    async def constrained(name: Annotated[str, Path(max_length=3)], request: Request) -> Response:
        return JSONResponse({"name": name})

    @router.get("/query")
    async def query(limit: int = 5) -> Response:
        return JSONResponse({"limit": limit})

    @router.get("/model/{name}")
    async def model(name: str) -> dict[str, str]:
        return {"name": name}

    @router.get("/depends", dependencies=[Depends(noted)])
    async def depends(request: Request) -> Response:
        return JSONResponse({"ok": True})

    guarded = Router(route_class=PlainRoute)

    @guarded.get("/guarded")
    async def guarded_endpoint(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = FastAPI()
    app.include_router(router)
    app.include_router(guarded, dependencies=[Depends(noted)])
    return app


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    CALLS.clear()
    RESOLVED.clear()
    original = getattr(fastapi.routing, "solve_dependencies")  # noqa: B009 - not exported

    async def counting(*args: Any, **kwargs: Any) -> Any:
        RESOLVED.append("solved")
        return await original(*args, **kwargs)

    # Every framework handler resolves its parameters here; a plain route never does.
    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return TestClient(make_app())


def test_a_plain_endpoint_is_called_with_its_path_and_request(client: TestClient) -> None:
    response = client.get("/plain/ab%20c?q=1")
    assert (response.status_code, response.json()) == (200, {"name": "ab c", "q": "1"})
    refused = client.post("/plain/x/refused")
    assert (refused.status_code, refused.json()) == (409, {"detail": "x refused"})
    assert RESOLVED == []


def test_a_route_that_needs_the_framework_keeps_it(client: TestClient) -> None:
    assert client.get("/typed/7").json() == {"n": 7}
    assert client.get("/typed/seven").status_code == 422
    assert client.get("/constrained/abcd").status_code == 422
    assert client.get("/query?limit=9").json() == {"limit": 9}
    assert client.get("/model/a").json() == {"name": "a"}
    assert len(RESOLVED) == 5
    assert client.get("/depends").json() == {"ok": True}
    assert client.get("/guarded").json() == {"ok": True}  # its router's dependency
    assert CALLS == ["dependency", "dependency"]


def test_the_documentation_of_a_plain_route_is_unchanged(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/plain/{name}"]["get"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [("name", "path")]
