"""Idempotency keys: one effect and one answer per (caller, key), for 24 hours.

The first request with a key *claims* it in a short transaction of its own, so a repeat that
arrives while the first is still running can be told so (409). The outcome is then stored in the
same transaction as the effect, so a stored answer always means the effect happened.

These statements sit on the hot path of every keyed POST, so they use the raw path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pintuan.errors import Conflict, InvalidInput
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now

FORGET_EXPIRED = Sql(
    "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND expires_at <= :now"
)
CLAIM = Sql("""
    INSERT INTO idempotency_keys (scope, key, request_hash, created_at, expires_at)
    VALUES (:scope, :key, :hash, :now, :expires_at)
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING scope
""")


@dataclass(frozen=True, slots=True)
class _Claim:
    request_hash: str
    response_status: int | None  # None while the first request is still running
    response_body: str | None
    response_content_type: str | None


READ = Sql("""
    SELECT request_hash, response_status, response_body, response_content_type
    FROM idempotency_keys WHERE scope = :scope AND key = :key
""")
STORE = Sql("""
    UPDATE idempotency_keys
    SET response_status = :status, response_body = :body, response_content_type = :type
    WHERE scope = :scope AND key = :key
""")
RELEASE = Sql(
    "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND response_status IS NULL"
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    content_type: str


def claim_key(
    tx: RawTx, scope: str, key: str, request_hash: str, ttl: timedelta
) -> StoredResponse | None:
    """Claim ``key`` for a new request, or return the answer already stored for it.

    Refuses a key reused for a different request (``idempotency_mismatch``) and a key whose first
    request is still running (``idempotency_in_progress``).
    """
    now = utc_now()
    ids = {"scope": scope, "key": key}
    tx.execute(FORGET_EXPIRED, {**ids, "now": tx.instant(now)})
    claimed = tx.scalar(
        CLAIM,
        {**ids, "hash": request_hash, "now": tx.instant(now), "expires_at": tx.instant(now + ttl)},
    )
    if claimed is not None:
        return None
    stored = tx.one_as(_Claim, READ, ids)
    if stored is None:  # expired and swept between our two statements: treat it as taken
        raise _in_progress()
    if stored.request_hash != request_hash:
        raise InvalidInput(
            "This Idempotency-Key was already used for a different request; use a new key "
            "for a new request.",
            code="idempotency_mismatch",
        )
    if stored.response_status is None:
        raise _in_progress()
    return StoredResponse(
        stored.response_status,
        stored.response_body or "",
        stored.response_content_type or "application/json",
    )


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_in_progress",
    )


def store_response(tx: RawTx, scope: str, key: str, response: StoredResponse) -> None:
    tx.execute(
        STORE,
        {
            "scope": scope,
            "key": key,
            "status": response.status,
            "body": response.body,
            "type": response.content_type,
        },
    )


def release_key(tx: RawTx, scope: str, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so the client may retry it."""
    tx.execute(RELEASE, {"scope": scope, "key": key})


def delete_expired_keys(session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utc_now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
