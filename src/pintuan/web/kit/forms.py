"""Plain HTML forms that take effect once, through the API's idempotency keys.

A form that changes something carries a hidden ``form_key`` minted when the page was rendered
(``form_key()`` in templates). Its submission runs under that key exactly as an API request
runs under ``Idempotency-Key``, through the same runner (:mod:`pintuan.idempotency.runner`): a
double click or a resent form replays the first outcome instead of starting a second team or
paying twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import AppError
from pintuan.idempotency.http import MAX_KEY_LENGTH, caller_scope, request_fingerprint
from pintuan.idempotency.runner import Answer, KeyClaim, run_once, run_raw_once
from pintuan.kit.rawsql import RawTx
from pintuan.services import Services

FORM_KEY_FIELD = "form_key"

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
    claim = await _claim(request, principal)
    answer = await run_once(services, claim, lambda session: json.dumps(dict(work(session))))
    return _outcome(answer)


async def run_raw_form_write(
    request: Request,
    services: Services,
    principal: Principal | None,
    work: Callable[[RawTx], Mapping[str, Any]],
) -> Outcome:
    """:func:`run_form_write` for units of work on the raw path (joins and starts)."""
    claim = await _claim(request, principal)
    answer = await run_raw_once(services, claim, lambda tx: json.dumps(dict(work(tx))))
    return _outcome(answer)


async def _claim(request: Request, principal: Principal | None) -> KeyClaim | None:
    """The form's ``form_key``; a form sent without a usable one runs without the guard."""
    form_key = (await form_fields(request)).get(FORM_KEY_FIELD, "")
    key = f"form:{form_key}"
    if not form_key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return None
    path = request.url.path
    return KeyClaim(
        scope=caller_scope(request, principal),
        key=key,
        fingerprint=request_fingerprint(request.method, path, b""),
        instance=path,
    )


def _outcome(answer: Answer) -> Outcome:
    stored = answer.response
    if answer.replayed and answer.is_refusal:
        problem = json.loads(stored.body)
        raise AppError(
            str(problem.get("detail", "")),
            code=str(problem.get("code", "bad_request")),
            status=stored.status,
            title=str(problem.get("title", "Bad request")),
        )
    value = json.loads(stored.body)
    assert isinstance(value, dict)
    return value
