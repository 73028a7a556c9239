"""Abuse limits that sit below every feature: the request body limit and per-client buckets.

The body limit is pure ASGI: a declared ``Content-Length`` over the limit is refused before the
application runs, and a body without one (chunked) is counted as it streams and cut off at the
limit, so an oversized body is never read whole. Either way the answer is 413 ``body_too_large``.

:class:`ClientBuckets` are token buckets kept in this process. They suit limits that protect
this process's own resources (the CPU that draws posters): with several processes a client gets
that budget from each, and each process is still protected. Limits that must hold across
processes count in the database instead (``accounts.service``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pintuan.config import Settings
from pintuan.errors import PROBLEM_JSON, AppError
from pintuan.kit.http import TrustedProxies

WEBHOOK_PATH_PREFIX = "/v1/webhooks/"
# Picture uploads (the API's and the console's) end so; they may carry a picture up to the
# media limit, plus room for the multipart envelope and the form's other fields.
UPLOAD_PATH_SUFFIX = "/images"
_MULTIPART_ROOM = 64 * 1024


def install_request_limits(app: FastAPI, settings: Settings) -> None:
    """Install the body limit and tell ``client_address`` which proxies to believe."""
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_webhook_bytes=settings.max_webhook_body_bytes,
        max_upload_bytes=max(settings.max_body_bytes, settings.media_max_bytes + _MULTIPART_ROOM),
    )


class _BodyTooLarge(Exception):
    """Raised into the application from ``receive`` once the body passes the limit."""


def body_too_large(limit: int) -> AppError:
    return AppError(
        f"The request body is larger than {limit} bytes, the most this endpoint accepts.",
        code="body_too_large",
        status=413,
        title="Request body too large",
        extra={"max_bytes": limit},
    )


class BodyLimitMiddleware:
    """Refuses request bodies over the limit (smaller for provider webhooks) with 413."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        max_webhook_bytes: int,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_webhook_bytes = max_webhook_bytes
        self.max_upload_bytes = max_upload_bytes or max_bytes

    def limit_for(self, path: str) -> int:
        if path.startswith(WEBHOOK_PATH_PREFIX):
            return self.max_webhook_bytes
        return self.max_upload_bytes if path.endswith(UPLOAD_PATH_SUFFIX) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _declared_body(scope)
        if declared is None and not chunked:  # no body at all (most GETs): nothing to count
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if declared is not None and declared > limit:
            await _refuse(send, scope["path"], limit)
            return
        received = 0
        overflowed = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # Whatever the application made of a cut-off body, the refusal below answers.
            if overflowed:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not overflowed:
                raise
        if overflowed and not started:
            await _refuse(send, scope["path"], limit)


def _declared_body(scope: Scope) -> tuple[int | None, bool]:
    """The body's declared length (None when absent or unreadable) and whether it comes in
    chunks (``Transfer-Encoding``); with neither, a request has no body (RFC 9112, 6.3)."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                chunked = True  # unreadable: count what arrives
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


async def _refuse(send: Send, path: str, limit: int) -> None:
    body = json.dumps(body_too_large(limit).problem(path)).encode()
    headers: list[Any] = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read, so the connection cannot be reused.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientBuckets:
    """A token bucket per client in this process: ``per_minute`` tokens a minute, at most
    ``per_minute`` saved up. The least recently seen clients are forgotten past ``max_clients``
    (a forgotten client starts again with a full bucket)."""

    def __init__(self, per_minute: int, *, max_clients: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> int:
        """Take a token for ``client``: 0 when granted, else the seconds until one is due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - seen) * self.rate)
            granted = tokens >= 1
            self._buckets[client] = (tokens - 1 if granted else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return 0 if granted else max(1, math.ceil((1 - tokens) / self.rate))
