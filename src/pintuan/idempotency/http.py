"""Run a POST's unit of work under its ``Idempotency-Key``, if the client sent one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import PROBLEM_JSON, AppError, InvalidInput
from pintuan.idempotency import service
from pintuan.idempotency.service import StoredResponse
from pintuan.kit.http import client_address
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
    """Run ``work`` in one transaction and answer with its result as JSON.

    With an ``Idempotency-Key`` header the answer, success or refusal, is stored with the effect
    and replayed for repeats of the same request.
    """
    db = services.db
    key = request.headers.get(HEADER)
    if key is None:
        result = await db.run(work)
        return Response(result.model_dump_json(), status_code=status_code, media_type=JSON)
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID.",
            code="invalid_idempotency_key",
        )
    scope = caller_scope(request, principal)
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    ttl = timedelta(hours=services.settings.idempotency_ttl_hours)
    stored = await db.run(service.claim_key, scope, key, fingerprint, ttl)
    if stored is not None:
        return _replay(stored)

    def work_and_store(session: Session) -> StoredResponse:
        answer = StoredResponse(status_code, work(session).model_dump_json(), JSON)
        service.store_response(session, scope, key, answer)
        return answer

    try:
        answer = await db.run(work_and_store)
    except AppError as refusal:
        answer = StoredResponse(
            refusal.status, json.dumps(refusal.problem(request.url.path)), PROBLEM_JSON
        )
        await db.run(service.store_response, scope, key, answer)
        raise
    except BaseException:
        await db.run(service.release_key, scope, key)
        raise
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


def _replay(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"},
    )
