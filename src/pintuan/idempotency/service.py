"""Idempotency keys: one effect and one answer per (caller, key), for 24 hours.

The first request with a key *claims* it in a short transaction of its own, before any write or
provider call, so a repeat that arrives while the first is still running can be told so (409).
A claim is held by one request (its random ``holder``) for a short *lease*: a request that died
holding a key (a crashed process) frees it once the lease is over, and a request that outlived
its lease finds the key taken and stores nothing over the new holder's answer. The outcome is
stored by the holder, with the effect when the effect is one transaction, and kept for the TTL.

These statements sit on the hot path of every keyed POST, so they use the raw path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pintuan.errors import Conflict, InvalidInput
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.rawsql import Later, RawTx, Sql
from pintuan.kit.time import utc_now

# A running claim's expires_at is the end of its lease, a finished one's the end of its TTL:
# either way, once past it the row is forgotten and the key is free again.
FORGET_EXPIRED = Sql(
    "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND expires_at <= :now"
)
CLAIM = Sql("""
    INSERT INTO idempotency_keys (scope, key, request_hash, holder, created_at, expires_at)
    VALUES (:scope, :key, :hash, :holder, :now, :expires_at)
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING scope
""")


@dataclass(frozen=True, slots=True)
class _Claim:
    request_hash: str
    response_status: int | None  # None while the first request is still running
    response_body: str | None
    response_content_type: str | None
    live: bool = True  # False: expired, as good as no row (read by ``FIND``)


READ = Sql("""
    SELECT request_hash, response_status, response_body, response_content_type
    FROM idempotency_keys WHERE scope = :scope AND key = :key
""")
STORE = Sql("""
    UPDATE idempotency_keys
    SET response_status = :status, response_body = :body, response_content_type = :type,
        expires_at = :expires_at
    WHERE scope = :scope AND key = :key AND holder = :holder AND response_status IS NULL
    RETURNING scope
""")
RELEASE = Sql("""
    DELETE FROM idempotency_keys
    WHERE scope = :scope AND key = :key AND holder = :holder AND response_status IS NULL
""")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    content_type: str


def claim_key(
    tx: RawTx, scope: str, key: str, request_hash: str, holder: str, lease: timedelta
) -> StoredResponse | None:
    """Claim ``key`` for a new request (held by ``holder`` for ``lease``), or return the answer
    already stored for it.

    Refuses a key reused for a different request (``idempotency_mismatch``) and a key whose first
    request is still running within its lease (``idempotency_in_progress``).
    """
    now = utc_now()
    ids = {"scope": scope, "key": key}
    tx.send(FORGET_EXPIRED, {**ids, "now": tx.instant(now)})
    claimed = tx.scalar(
        CLAIM,
        {
            **ids,
            "hash": request_hash,
            "holder": holder,
            "now": tx.instant(now),
            "expires_at": tx.instant(now + lease),
        },
    )
    if claimed is not None:
        return None
    stored = tx.one_as(_Claim, READ, ids)
    if stored is None:  # expired and swept between our two statements: treat it as taken
        raise in_progress()
    return _answer_of(stored, request_hash)


def _answer_of(stored: _Claim, request_hash: str) -> StoredResponse:
    """The answer kept under a key, for a repeat of the request that stored it."""
    if stored.request_hash != request_hash:
        raise InvalidInput(
            "This Idempotency-Key was already used for a different request; use a new key "
            "for a new request.",
            code="idempotency_mismatch",
        )
    if stored.response_status is None:
        raise in_progress()
    return StoredResponse(
        stored.response_status,
        stored.response_body or "",
        stored.response_content_type or "application/json",
    )


# A request that runs its work in the same transaction as its key (``run_raw_in_one``) makes no
# claim before the work: it reads the key (an expired one is no key) and writes it once, answer
# included, when the work is done: one read and one write instead of a delete, an insert and an
# update. On SQLite, whose writes hold the one write lock from their first statement to their
# commit, nobody can take the key meanwhile, and an expired row under it is replaced
# (``ANSWER``). On PostgreSQL the read goes out with the work's first statement and the write
# with the commit (``INSERT_ANSWER``): a request that answered the key meanwhile makes the
# commit fail on the key's primary key (``KEY_TAKEN``), which undoes this request's work, and
# its answer is then read (``stored_answer``).
FIND = Sql("""
    SELECT request_hash, response_status, response_body, response_content_type,
           expires_at > :now AS live
    FROM idempotency_keys WHERE scope = :scope AND key = :key
""")
ANSWER = Sql("""
    INSERT INTO idempotency_keys (scope, key, request_hash, holder, created_at, expires_at,
                                  response_status, response_body, response_content_type)
    VALUES (:scope, :key, :hash, :holder, :now, :expires_at, :status, :body, :type)
    ON CONFLICT (scope, key) DO UPDATE SET
        request_hash = excluded.request_hash, holder = excluded.holder,
        created_at = excluded.created_at, expires_at = excluded.expires_at,
        response_status = excluded.response_status, response_body = excluded.response_body,
        response_content_type = excluded.response_content_type
""")
INSERT_ANSWER = Sql("""
    INSERT INTO idempotency_keys (scope, key, request_hash, holder, created_at, expires_at,
                                  response_status, response_body, response_content_type)
    VALUES (:scope, :key, :hash, :holder, :now, :expires_at, :status, :body, :type)
""")
# The constraint a key answered by another request breaks (its primary key).
KEY_TAKEN = "pk_idempotency_keys"


def look_up(tx: RawTx, scope: str, key: str) -> Later:
    """The key's row, read with the next statement (PostgreSQL: the work's first); its row
    goes to :func:`answer_found`."""
    return tx.later(FIND, {"scope": scope, "key": key, "now": tx.instant(utc_now())})


def found_row(found: Later) -> _Claim | None:
    """The row :func:`look_up` read (None: no row at all)."""
    return found.one_as(_Claim)


def answer_found(found: _Claim | None, request_hash: str) -> StoredResponse | None:
    """The answer under a key as :func:`look_up` found it, or None for a key not in use;
    refuses as :func:`claim_key` does."""
    if found is None or not found.live:
        return None
    return _answer_of(found, request_hash)


def write_answer(
    tx: RawTx,
    scope: str,
    key: str,
    request_hash: str,
    holder: str,
    response: StoredResponse,
    ttl: timedelta,
    *,
    expired: bool,
) -> None:
    """Store the answer under a key :func:`look_up` found free in this transaction
    (``expired``: an expired row was under it). On SQLite, whose one writer has held the lock
    since the read, the row is replaced in the same statement. On PostgreSQL an expired row is
    forgotten first, and the insert goes out with the commit, which fails with
    :data:`KEY_TAKEN` when another request answered or claimed the key meanwhile."""
    now = tx.instant(utc_now())
    if expired and not tx.sqlite:
        tx.send(FORGET_EXPIRED, {"scope": scope, "key": key, "now": now})
    stored = _stored(tx, scope, key, holder, response, ttl)
    tx.send(ANSWER if tx.sqlite else INSERT_ANSWER, {**stored, "hash": request_hash, "now": now})


def stored_answer(tx: RawTx, scope: str, key: str, request_hash: str) -> StoredResponse:
    """The answer another request stored under ``key`` (its commit broke :data:`KEY_TAKEN`
    for this one); refuses as :func:`claim_key` does, and a key no longer there (forgotten
    meanwhile) as still in progress."""
    stored = tx.one_as(_Claim, READ, {"scope": scope, "key": key})
    if stored is None:
        raise in_progress()
    return _answer_of(stored, request_hash)


def in_progress() -> Conflict:
    """The refusal of a key whose request is still running (or whose claim was lost)."""
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_in_progress",
    )


def store_response(
    tx: RawTx, scope: str, key: str, holder: str, response: StoredResponse, ttl: timedelta
) -> bool:
    """Store the answer of ``holder``'s claim, kept for ``ttl``; False (and nothing stored)
    when the claim is no longer ``holder``'s (its lease ran out and another request took it)."""
    stored = tx.scalar(STORE, _stored(tx, scope, key, holder, response, ttl))
    return stored is not None


def store_own_response(
    tx: RawTx, scope: str, key: str, holder: str, response: StoredResponse, ttl: timedelta
) -> None:
    """:func:`store_response` for a claim made in this same transaction, which no other request
    can have taken: nothing to check, so the statement goes out with the commit."""
    tx.send(STORE, _stored(tx, scope, key, holder, response, ttl))


def _stored(
    tx: RawTx, scope: str, key: str, holder: str, response: StoredResponse, ttl: timedelta
) -> dict[str, object]:
    return {
        "scope": scope,
        "key": key,
        "holder": holder,
        "status": response.status,
        "body": response.body,
        "type": response.content_type,
        "expires_at": tx.instant(utc_now() + ttl),
    }


def release_key(tx: RawTx, scope: str, key: str, holder: str) -> None:
    """Forget a claim whose request failed unexpectedly, so the client may retry it."""
    tx.execute(RELEASE, {"scope": scope, "key": key, "holder": holder})


def delete_expired_keys(session: Session) -> int:
    """Forget the answers past their TTL and the claims past their lease."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utc_now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
