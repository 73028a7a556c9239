"""Serving stored pictures from this site's own origin, so pages keep ``img-src 'self'``."""

from __future__ import annotations

import anyio.to_thread
from fastapi import Response

from pintuan.kit.routing import Router
from pintuan.media.service import CONTENT_TYPE, read_media
from pintuan.services import ServicesDep

router = Router(tags=["media"])

# A name is a digest of the bytes it serves, so what is served under it never changes.
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/media/{name}",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The picture"}},
)
async def media_file(name: str, services: ServicesDep) -> Response:
    """A stored picture (``<key>-large.webp`` or ``<key>-thumb.webp``), cached for a year."""
    store = services.media_store()
    body = await anyio.to_thread.run_sync(read_media, store, name)
    return Response(
        body,
        media_type=CONTENT_TYPE,
        headers={"cache-control": IMMUTABLE, "etag": f'"{name}"'},
    )
