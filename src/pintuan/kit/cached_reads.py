"""Answering anonymous reads from the read cache, with HTTP's own caching on top.

An anonymous answer is the same for everyone who asks, so it is kept (``pintuan.kit.readcache``)
and carries an ``ETag``: a client that sends it back in ``If-None-Match`` gets ``304 Not
Modified`` while the content is unchanged. ``Cache-Control: no-cache`` lets browsers and proxies
keep it but makes them ask every time, so the one-second freshness promise holds past this
server too. ``Vary`` names what would change the answer: a caller with credentials is never
served from here (and their answers keep ``no-store``). The next hits of the same path and query
are answered before routing (``pintuan.kit.frontcache``), by the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pintuan.kit.frontcache import remember
from pintuan.kit.http import url_path
from pintuan.kit.readcache import Cached, ReadCache, etag_of, if_none_match

ANONYMOUS_CACHE_CONTROL = "no-cache"
API_VARY = "Authorization, Cookie"


def not_modified(etag: str, headers: dict[str, str]) -> Response:
    """The 304 for a client that already holds ``etag``."""
    return Response(status_code=304, headers={**headers, "etag": etag})


async def anonymous_json(
    request: Request,
    cache: ReadCache,
    build: Callable[[], Awaitable[tuple[Any, Iterable[str]]]],
    key: Hashable | None = None,
) -> Response:
    """The JSON answer ``build()`` gives (the model to send, the tags it depends on), kept for
    every anonymous caller of this path and query (or ``key``)."""

    scope = request.scope

    async def render() -> tuple[bytes, str, Iterable[str]]:
        model, tags = await build()
        if isinstance(model, BaseModel):
            # pydantic's own encoder: the same JSON as FastAPI's, a tenth of the time.
            body = model.model_dump_json(by_alias=True).encode()
        else:
            body = bytes(JSONResponse(jsonable_encoder(model)).body)
        return body, etag_of(body), tags

    key = key if key is not None else ("json", url_path(scope), scope["query_string"])
    entry = await cache.get_or_build(key, render)
    remember(request, cache, key, _json_answer)
    return _json_answer(request, entry)


def _json_answer(request: Request, entry: Cached[Any]) -> Response:
    """The answer to one anonymous caller from the kept entry: ``304`` when they hold it."""
    headers = {"cache-control": ANONYMOUS_CACHE_CONTROL, "vary": API_VARY}
    if if_none_match(request.headers.get("if-none-match"), entry.etag):
        return not_modified(entry.etag, headers)
    return Response(
        entry.value, media_type="application/json", headers={**headers, "etag": entry.etag}
    )
