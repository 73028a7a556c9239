"""Run a POST's unit of work under its ``Idempotency-Key``, if the client sent one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import PROBLEM_JSON, AppError, InvalidInput
from pintuan.idempotency import service
from pintuan.idempotency.service import StoredResponse
from pintuan.kit.http import client_address
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.services import Services

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
JSON = "application/json"


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
) -> Response:
    """Run ``work(session)`` in one transaction and answer with its result as JSON.

    With an ``Idempotency-Key`` header the answer, success or refusal, is stored with the effect
    and replayed for repeats of the same request.
    """

    def with_session(session: Session, store: Callable[[RawTx, str], None]) -> str:
        body = work(session).model_dump_json()
        store(raw_tx(session), body)
        return body

    return await _respond(request, services, principal, with_session, status_code, raw=False)


async def run_raw_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[RawTx], BaseModel],
    *,
    status_code: int = 200,
) -> Response:
    """:func:`run_write` for units of work on the raw path (see ``kit/rawsql.py``)."""

    def with_tx(tx: RawTx, store: Callable[[RawTx, str], None]) -> str:
        body = work(tx).model_dump_json()
        store(tx, body)
        return body

    return await _respond(request, services, principal, with_tx, status_code, raw=True)


async def _respond(
    request: Request,
    services: Services,
    principal: Principal | None,
    unit: Callable[[Any, Callable[[RawTx, str], None]], str],
    status_code: int,
    *,
    raw: bool,
) -> Response:
    db = services.db
    run = db.run_raw if raw else db.run
    key = request.headers.get(HEADER)
    if key is None:
        body = await run(unit, lambda _tx, _body: None)
        return Response(body, status_code=status_code, media_type=JSON)
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID.",
            code="invalid_idempotency_key",
        )
    scope = caller_scope(request, principal)
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    ttl = timedelta(hours=services.settings.idempotency_ttl_hours)
    stored = await db.run_raw(service.claim_key, scope, key, fingerprint, ttl)
    if stored is not None:
        return _replay(stored)

    def store(tx: RawTx, body: str) -> None:
        service.store_response(tx, scope, key, StoredResponse(status_code, body, JSON))

    try:
        body = await run(unit, store)
    except AppError as refusal:
        answer = StoredResponse(
            refusal.status, json.dumps(refusal.problem(request.url.path)), PROBLEM_JSON
        )
        await db.run_raw(service.store_response, scope, key, answer)
        raise
    except BaseException:
        await db.run_raw(service.release_key, scope, key)
        raise
    return Response(body, status_code=status_code, media_type=JSON)


def _replay(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"},
    )
