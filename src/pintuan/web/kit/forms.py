"""Plain HTML forms that take effect once, through the API's idempotency keys.

A form that changes something carries a hidden ``form_key`` minted when the page was rendered
(``form_key()`` in templates). Its submission runs under that key exactly as an API request
runs under ``Idempotency-Key``: a double click or a resent form replays the first outcome
instead of starting a second team or paying twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import PROBLEM_JSON, AppError
from pintuan.idempotency import service as idempotency
from pintuan.idempotency.http import MAX_KEY_LENGTH, caller_scope, request_fingerprint
from pintuan.idempotency.service import StoredResponse
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.services import Services

FORM_KEY_FIELD = "form_key"
_JSON = "application/json"

Outcome = dict[str, Any]


async def form_fields(request: Request) -> dict[str, str]:
    """The submitted form's text fields (files are not taken by these pages)."""
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def run_form_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[Session], Mapping[str, Any]],
) -> Outcome:
    """Run ``work(session)`` in one transaction, once per ``form_key``; returns its outcome
    (a JSON-able mapping), replayed for a repeat. A refusal is replayed as the same error."""

    def unit(session: Session, store: Callable[[RawTx, str], None]) -> str:
        body = json.dumps(dict(work(session)))
        store(raw_tx(session), body)
        return body

    return await _once(request, services, principal, unit, raw=False)


async def run_raw_form_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[RawTx], Mapping[str, Any]],
) -> Outcome:
    """:func:`run_form_write` for units of work on the raw path (joins and starts)."""

    def unit(tx: RawTx, store: Callable[[RawTx, str], None]) -> str:
        body = json.dumps(dict(work(tx)))
        store(tx, body)
        return body

    return await _once(request, services, principal, unit, raw=True)


async def _once(
    request: Request,
    services: Services,
    principal: Principal | None,
    unit: Callable[[Any, Callable[[RawTx, str], None]], str],
    *,
    raw: bool,
) -> Outcome:
    db = services.db
    run = db.run_raw if raw else db.run
    form_key = (await form_fields(request)).get(FORM_KEY_FIELD, "")
    key = f"form:{form_key}"
    if not form_key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        body: str = await run(unit, lambda _tx, _body: None)
        return _outcome(body)
    scope = caller_scope(request, principal)
    fingerprint = request_fingerprint(request.method, request.url.path, b"")
    ttl = timedelta(hours=services.settings.idempotency_ttl_hours)
    stored = await db.run_raw(idempotency.claim_key, scope, key, fingerprint, ttl)
    if stored is not None:
        return _replay(stored)

    def store(tx: RawTx, answer: str) -> None:
        idempotency.store_response(tx, scope, key, StoredResponse(200, answer, _JSON))

    try:
        body = await run(unit, store)
    except AppError as refusal:
        answer = StoredResponse(
            refusal.status, json.dumps(refusal.problem(request.url.path)), PROBLEM_JSON
        )
        await db.run_raw(idempotency.store_response, scope, key, answer)
        raise
    except BaseException:
        await db.run_raw(idempotency.release_key, scope, key)
        raise
    return _outcome(body)


def _outcome(body: str) -> Outcome:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value


def _replay(stored: StoredResponse) -> Outcome:
    if stored.content_type == PROBLEM_JSON:
        problem = json.loads(stored.body)
        raise AppError(
            str(problem.get("detail", "")),
            code=str(problem.get("code", "bad_request")),
            status=stored.status,
            title=str(problem.get("title", "Bad request")),
        )
    return _outcome(stored.body)
