"""Idempotency keys: one effect and one answer per (caller, key), for 24 hours.

The first request with a key *claims* it in a short transaction of its own, so a repeat that
arrives while the first is still running can be told so (409). The outcome is then stored in the
same transaction as the effect, so a stored answer always means the effect happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pintuan.errors import Conflict, InvalidInput
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import utc_now


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    content_type: str


def claim_key(
    session: Session, scope: str, key: str, request_hash: str, ttl: timedelta
) -> StoredResponse | None:
    """Claim ``key`` for a new request, or return the answer already stored for it.

    Refuses a key reused for a different request (``idempotency_mismatch``) and a key whose first
    request is still running (``idempotency_in_progress``).
    """
    now = utc_now()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at <= now,
        )
    )
    claimed = session.execute(
        upsert_insert(session, IdempotencyKey)
        .values(
            scope=scope,
            key=key,
            request_hash=request_hash,
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyKey.scope)
    ).first()
    if claimed is not None:
        return None
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    )
    if row is None:  # expired and swept between our two statements: treat it as taken
        raise _in_progress()
    if row.request_hash != request_hash:
        raise InvalidInput(
            "This Idempotency-Key was already used for a different request; use a new key "
            "for a new request.",
            code="idempotency_mismatch",
        )
    if row.response_status is None:
        raise _in_progress()
    return StoredResponse(
        status=row.response_status,
        body=row.response_body or "",
        content_type=row.response_content_type or "application/json",
    )


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_in_progress",
    )


def store_response(session: Session, scope: str, key: str, response: StoredResponse) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        .values(
            response_status=response.status,
            response_body=response.body,
            response_content_type=response.content_type,
        )
    )


def release_key(session: Session, scope: str, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so the client may retry it."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.response_status.is_(None),
        )
    )


def delete_expired_keys(session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utc_now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
