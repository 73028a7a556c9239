"""Run one unit of work once per idempotency key: the one runner behind keyed API requests
(``Idempotency-Key``) and page forms (``form_key``).

The caller says which key the work runs under (:class:`KeyClaim`, or None for no key) and gets
an :class:`Answer`: the work's own JSON, or what was stored for the first request with that key.
The key is claimed in a short transaction of its own; a success is stored with the effect, a
refusal (:class:`AppError`) is stored and raised again, and any other failure releases the key
so that the client may retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from pintuan.errors import PROBLEM_JSON, AppError
from pintuan.idempotency import service
from pintuan.idempotency.service import StoredResponse
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.services import Services

JSON = "application/json"

_Store = Callable[[RawTx, str], None]


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """One caller's key for one request."""

    scope: str  # whose key it is: keys of different callers never meet
    key: str
    fingerprint: str  # what makes a repeat "the same request"
    instance: str  # the path a stored refusal names


@dataclass(frozen=True, slots=True)
class Answer:
    response: StoredResponse
    replayed: bool  # the stored answer of an earlier request with the same key

    @property
    def is_refusal(self) -> bool:
        return self.response.content_type == PROBLEM_JSON


async def run_once(
    services: Services,
    claim: KeyClaim | None,
    work: Callable[[Session], str],
    *,
    status_code: int = 200,
) -> Answer:
    """Run ``work(session)``, which returns the answer's JSON, in one transaction, once per
    ``claim``; a repeat gets the first request's answer, success or refusal."""

    def unit(session: Session, store: _Store) -> str:
        body = work(session)
        store(raw_tx(session), body)
        return body

    return await _run(services, claim, unit, status_code, raw=False)


async def run_raw_once(
    services: Services,
    claim: KeyClaim | None,
    work: Callable[[RawTx], str],
    *,
    status_code: int = 200,
) -> Answer:
    """:func:`run_once` for units of work on the raw path (see ``kit/rawsql.py``)."""

    def unit(tx: RawTx, store: _Store) -> str:
        body = work(tx)
        store(tx, body)
        return body

    return await _run(services, claim, unit, status_code, raw=True)


async def _run(
    services: Services,
    claim: KeyClaim | None,
    unit: Callable[[Any, _Store], str],
    status_code: int,
    *,
    raw: bool,
) -> Answer:
    db = services.db
    run = db.run_raw if raw else db.run
    if claim is None:
        body: str = await run(unit, lambda _tx, _body: None)
        return Answer(StoredResponse(status_code, body, JSON), replayed=False)
    scope, key = claim.scope, claim.key
    ttl = timedelta(hours=services.settings.idempotency_ttl_hours)
    stored = await db.run_raw(service.claim_key, scope, key, claim.fingerprint, ttl)
    if stored is not None:
        return Answer(stored, replayed=True)

    def store(tx: RawTx, answer: str) -> None:
        service.store_response(tx, scope, key, StoredResponse(status_code, answer, JSON))

    try:
        body = await run(unit, store)
    except AppError as refusal:
        problem = json.dumps(refusal.problem(claim.instance))
        refused = StoredResponse(refusal.status, problem, PROBLEM_JSON)
        await db.run_raw(service.store_response, scope, key, refused)
        raise
    except BaseException:
        await db.run_raw(service.release_key, scope, key)
        raise
    return Answer(StoredResponse(status_code, body, JSON), replayed=False)
