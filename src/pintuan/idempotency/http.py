"""Run a POST's unit of work under its ``Idempotency-Key``, if the client sent one.

The once-only machinery itself is :mod:`pintuan.idempotency.runner`, shared with the page
forms; this module reads the key from the request and answers with JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import InvalidInput
from pintuan.idempotency.runner import (
    Answer,
    KeyClaim,
    KeyRequest,
    run_once,
    run_raw_in_one,
    run_raw_once,
    run_steps_once,
)
from pintuan.kit.http import client_address, url_path
from pintuan.kit.rawsql import RawTx
from pintuan.services import Services

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def caller_scope(request: Request, principal: Principal | None) -> str:
    """Keys are per caller: per user when authenticated, else per client address."""
    return f"user:{principal.user_id}" if principal else f"addr:{client_address(request)}"


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same request" for one key: method, path and exact body."""
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


async def run_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[Session], BaseModel],
    *,
    status_code: int = 200,
    keep_answer: bool = True,
) -> Response:
    """Run ``work(session)`` in one transaction and answer with its result as JSON.

    With an ``Idempotency-Key`` header the answer, success or refusal, is stored with the effect
    and replayed for repeats of the same request. An answer holding a secret shown once is
    passed ``keep_answer=False``: a repeat is refused (``idempotency_secret_not_replayed``).
    """
    claim = await _claim(request, principal)
    answer = await run_once(
        services,
        claim,
        lambda session: work(session).model_dump_json(),
        status_code=status_code,
        keep_answer=keep_answer,
    )
    return _response(answer)


async def run_steps_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    steps: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 200,
) -> Response:
    """Run ``steps()`` (several transactions with a provider call between them) once per
    ``Idempotency-Key``, claimed before the first step, and answer with its result as JSON."""
    claim = await _claim(request, principal)

    async def answer_json() -> str:
        return (await steps()).model_dump_json()

    answer = await run_steps_once(services, claim, answer_json, status_code=status_code)
    return _response(answer)


async def run_raw_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[RawTx], BaseModel],
    *,
    status_code: int = 200,
    scope: str | None = None,
) -> Response:
    """:func:`run_write` for units of work on the raw path (see ``kit/rawsql.py``); ``scope``
    names the caller's keys when it is not a person (an app: ``app:<id>``)."""
    claim = await _claim(request, principal, scope)
    answer = await run_raw_once(
        services, claim, lambda tx: work(tx).model_dump_json(), status_code=status_code
    )
    return _response(answer)


async def run_raw_write_in_one(
    request: Request,
    services: Services,
    caller: Callable[[RawTx], Principal],
    work: Callable[[RawTx, Principal], BaseModel],
    *,
    status_code: int = 200,
) -> Response:
    """:func:`run_raw_write` for the hottest writes (the join): the caller's token lookup
    (``caller(tx)``), the key's claim, the work and its stored answer are one transaction
    (see :func:`pintuan.idempotency.runner.run_raw_in_one`)."""
    key = await _key_request(request)
    answer = await run_raw_in_one(
        services,
        caller,
        key,
        lambda tx, principal: work(tx, principal).model_dump_json(),
        status_code=status_code,
    )
    return _response(answer)


async def _key_request(request: Request) -> KeyRequest | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID.",
            code="invalid_idempotency_key",
        )
    path = url_path(request.scope)
    return KeyRequest(key, request_fingerprint(request.method, path, await request.body()), path)


async def _claim(
    request: Request, principal: Principal | None, scope: str | None = None
) -> KeyClaim | None:
    key = await _key_request(request)
    if key is None:
        return None
    return KeyClaim(
        scope or caller_scope(request, principal), key.key, key.fingerprint, key.instance
    )


def _response(answer: Answer) -> Response:
    stored = answer.response
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"} if answer.replayed else None,
    )
