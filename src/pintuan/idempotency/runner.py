"""Run one unit of work once per idempotency key: the one runner behind keyed API requests
(``Idempotency-Key``) and page forms (``form_key``).

The caller says which key the work runs under (:class:`KeyClaim`, or None for no key) and gets
an :class:`Answer`: the work's own JSON, or what was stored for the first request with that key.
The key is claimed in a short transaction of its own before the work starts; a success is
stored, a refusal (:class:`AppError`) is stored and raised again, and any other failure (a 5xx
refusal included) releases the key so that the client may retry.

Three shapes of work: one transaction (:func:`run_once`, :func:`run_raw_once`), whose answer is
stored in that same transaction; the hot writes on the raw path (:func:`run_raw_in_one`: the
join), where the caller's token lookup, the key, the work and its answer are all one
transaction (the key is read instead of claimed, and written once with its answer); and
several steps with a provider call between two transactions (:func:`run_steps_once`: paying
opens a checkout between the payment's two transactions, never inside one), whose answer is
stored once the last step is done.

An answer holding a secret shown once (a new API token) is never stored: ``keep_answer=False``
stores a refusal in its place, so that a repeat learns the secret was already shown.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from pintuan.domain.roles import Principal
from pintuan.errors import PROBLEM_JSON, AppError, Conflict
from pintuan.idempotency import service
from pintuan.idempotency.service import StoredResponse
from pintuan.kit.ids import random_hex
from pintuan.kit.rawsql import IntegrityViolation, Later, RawTx, Sql, raw_tx
from pintuan.kit.redislink import clear_in_flight, mark_in_flight
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

    def refusal(self, error: AppError) -> StoredResponse:
        """``error`` as the answer kept under this key: its problem, naming the request's path."""
        return StoredResponse(error.status, json.dumps(error.problem(self.instance)), PROBLEM_JSON)


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """A request's key before it is known whose it is (the caller is looked up in the same
    transaction as the work, by :func:`run_raw_in_one`)."""

    key: str
    fingerprint: str
    instance: str

    def claim_for(self, principal: Principal) -> KeyClaim:
        return KeyClaim(f"user:{principal.user_id}", self.key, self.fingerprint, self.instance)


@dataclass(frozen=True, slots=True)
class Answer:
    response: StoredResponse
    replayed: bool  # the stored answer of an earlier request with the same key

    @property
    def is_refusal(self) -> bool:
        return self.response.content_type == PROBLEM_JSON


class SecretNotReplayed(Conflict):
    code = "idempotency_secret_not_replayed"
    title = "The secret was shown once"


async def run_once(
    services: Services,
    claim: KeyClaim | None,
    work: Callable[[Session], str],
    *,
    status_code: int = 200,
    keep_answer: bool = True,
) -> Answer:
    """Run ``work(session)``, which returns the answer's JSON, in one transaction, once per
    ``claim``; a repeat gets the first request's answer, success or refusal (or, with
    ``keep_answer=False``, the refusal ``idempotency_secret_not_replayed`` after a success)."""

    def unit(session: Session, store: _Store) -> str:
        body = work(session)
        store(raw_tx(session), body)
        return body

    return await _run(services, claim, unit, status_code, keep_answer, raw=False)


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

    return await _run(services, claim, unit, status_code, True, raw=True)


# The work's own changes, undone alone when it is refused, so that the refusal is stored in
# the same transaction as the claim.
_WORK = Sql("SAVEPOINT idempotent_work")
_UNDO_WORK = Sql("ROLLBACK TO SAVEPOINT idempotent_work")
_KEEP_WORK = Sql("RELEASE SAVEPOINT idempotent_work")


@dataclass(frozen=True, slots=True)
class _Outcome:
    answer: Answer
    refusal: AppError | None = None  # raised again once the transaction is committed

    def given(self) -> Answer:
        """The answer, or the refusal raised again (its transaction now committed)."""
        if self.refusal is not None:
            raise self.refusal
        return self.answer


async def run_raw_in_one(
    services: Services,
    caller: Callable[[RawTx], Principal],
    key: KeyRequest | None,
    work: Callable[[RawTx, Principal], str],
    *,
    status_code: int = 200,
) -> Answer:
    """Run ``work(tx, principal)`` once per key, with everything in ONE transaction: who the
    caller is (``caller(tx)``, the token lookup), the key's look-up, the work and its answer.

    Where :func:`run_raw_once` takes three transactions (the lookup, the claim, the work), this
    takes one, and nothing is ever half done: a crash anywhere leaves no key behind, so no
    lease is needed. The key is not claimed before the work, only read (``service.FIND``) and
    written once with the answer. A repeat of a finished request is answered from the store
    (on PostgreSQL once its work has run, or failed, and been undone), and a key another path
    left in progress is refused as ``idempotency_in_progress``.

    On SQLite the one writer holds the lock from the read to the commit, so nobody can take
    the key meanwhile; a refusal (4xx) undoes the work's changes alone (a savepoint) and is
    stored with the key. On PostgreSQL the key's read goes out with the work's first
    statement and its answer with the commit, without a savepoint; a repeat running at the
    same time does its work too, and its commit then fails on the key the first one wrote,
    which undoes its work: it answers what the first stored. A refusal there undoes the whole
    transaction and stores itself in it again. Anything else (a 5xx) undoes everything, so
    the client may retry.
    """
    if key is None:

        def plain(tx: RawTx) -> Answer:
            tx.ends_with_last()  # nothing here follows the work's last statement
            body = work(tx, caller(tx))
            return Answer(StoredResponse(status_code, body, JSON), replayed=False)

        return await services.db.run_raw(plain)
    keyed = _KeyedWork(
        caller,
        key,
        work,
        status_code,
        timedelta(hours=services.settings.idempotency_ttl_hours),
        random_hex(16),
    )
    if services.db.is_sqlite:
        return await _in_one_sqlite(services, keyed)
    return await _in_one_postgres(services, keyed)


@dataclass(frozen=True, slots=True)
class _KeyedWork:
    """A keyed unit of work of :func:`run_raw_in_one`, and what its answer is kept with."""

    caller: Callable[[RawTx], Principal]
    key: KeyRequest
    work: Callable[[RawTx, Principal], str]
    status_code: int
    ttl: timedelta
    holder: str

    def attempt(
        self, tx: RawTx, principal: Principal, claim: KeyClaim
    ) -> tuple[StoredResponse, AppError | None]:
        """The work's answer, or its refusal's (with the refusal, raised again once the
        refusal is stored); anything else (a 5xx refusal included) is raised."""
        try:
            return StoredResponse(self.status_code, self.work(tx, principal), JSON), None
        except AppError as error:
            if error.status >= 500:
                raise
            return claim.refusal(error), error

    def store(self, tx: RawTx, claim: KeyClaim, response: StoredResponse, *, expired: bool) -> None:
        service.write_answer(
            tx,
            claim.scope,
            claim.key,
            claim.fingerprint,
            self.holder,
            response,
            self.ttl,
            expired=expired,
        )


async def _in_one_sqlite(services: Services, keyed: _KeyedWork) -> Answer:
    def unit(tx: RawTx) -> _Outcome:
        principal = keyed.caller(tx)
        claim = keyed.key.claim_for(principal)
        row = service.found_row(service.look_up(tx, claim.scope, claim.key))
        stored = service.answer_found(row, claim.fingerprint)
        if stored is not None:
            return _Outcome(Answer(stored, replayed=True))
        tx.send(_WORK)
        response, refusal = keyed.attempt(tx, principal, claim)
        if refusal is not None:
            tx.send(_UNDO_WORK)
        tx.send(_KEEP_WORK)
        keyed.store(tx, claim, response, expired=row is not None)
        return _Outcome(Answer(response, replayed=False), refusal)

    return (await services.db.run_raw(unit)).given()


class _Replay(Exception):
    """The key's answer was there before this request's work: undo the work, answer it."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("the key has an answer")
        self.stored = stored


def _answer_if_read(found: Later, claim: KeyClaim) -> StoredResponse | None:
    """The answer stored under the key, when its read went out before the work failed and
    came back; None when it did not (the original failure is then the one to raise)."""
    if found.cursor is None:
        return None
    try:
        row = service.found_row(found)
    except Exception:  # its answer was lost with the failure
        return None
    return service.answer_found(row, claim.fingerprint)


async def _in_one_postgres(services: Services, keyed: _KeyedWork) -> Answer:
    claimed: KeyClaim | None = None  # the caller's key, once the caller is known

    def unit(tx: RawTx) -> _Outcome:
        nonlocal claimed
        principal = keyed.caller(tx)
        claim = claimed = keyed.key.claim_for(principal)
        # Read with the work's first statement; its row is there even when that one failed.
        found = service.look_up(tx, claim.scope, claim.key)
        try:
            response, refusal = keyed.attempt(tx, principal, claim)
        except Exception:
            # A repeat is answered from the store whatever its own work met (a lock that timed
            # out, say), as on SQLite, where the store is read first.
            before = _answer_if_read(found, claim)
            if before is not None:
                raise _Replay(before) from None
            raise
        row = service.found_row(found)
        stored = service.answer_found(row, claim.fingerprint)
        if stored is not None:
            raise _Replay(stored)
        if refusal is not None:
            tx.start_over()  # nothing of the work is kept, only its refusal
        keyed.store(tx, claim, response, expired=row is not None)
        return _Outcome(Answer(response, replayed=False), refusal)

    try:
        outcome = await services.db.run_raw(unit)
    except _Replay as replay:
        return Answer(replay.stored, replayed=True)
    except IntegrityViolation as violation:
        # Another request answered (or claimed) the key between our read and our commit.
        if violation.constraint != service.KEY_TAKEN or claimed is None:
            raise
        taken = claimed
        stored = await services.db.run_raw(
            service.stored_answer, taken.scope, taken.key, taken.fingerprint, write=False
        )
        return Answer(stored, replayed=True)
    return outcome.given()


async def run_steps_once(
    services: Services,
    claim: KeyClaim | None,
    steps: Callable[[], Awaitable[str]],
    *,
    status_code: int = 200,
) -> Answer:
    """Run ``steps()``, which makes its own transactions and provider calls and returns the
    answer's JSON, once per ``claim``: the key is claimed before the first step and the answer
    stored after the last, so a repeat never starts a second effect.

    A process that dies between the steps leaves its claim to lapse after the lease
    (``idempotency_lease_seconds``); the steps must then be safe to run again (paying reuses a
    payment whose checkout was opened).
    """
    if claim is None:
        return Answer(StoredResponse(status_code, await steps(), JSON), replayed=False)
    held = await _Held.take(services, claim)
    if held.replay is not None:
        return held.replay
    try:
        body = await steps()
    except BaseException as failure:
        await held.fail(failure)
        raise
    try:
        await services.db.run_raw(held.store, StoredResponse(status_code, body, JSON))
    finally:
        await held.done()
    return Answer(StoredResponse(status_code, body, JSON), replayed=False)


async def _run(
    services: Services,
    claim: KeyClaim | None,
    unit: Callable[[Any, _Store], str],
    status_code: int,
    keep_answer: bool,
    *,
    raw: bool,
) -> Answer:
    db = services.db
    run = db.run_raw if raw else db.run
    if claim is None:
        body: str = await run(unit, lambda _tx, _body: None)
        return Answer(StoredResponse(status_code, body, JSON), replayed=False)
    held = await _Held.take(services, claim)
    if held.replay is not None:
        return held.replay

    def store(tx: RawTx, answer: str) -> None:
        kept = StoredResponse(status_code, answer, JSON) if keep_answer else held.secret_shown()
        if not held.store(tx, kept):
            # Our lease ran out and another request holds the key now: undo our effect.
            raise service.in_progress()

    try:
        body = await run(unit, store)
    except BaseException as failure:
        await held.fail(failure)
        raise
    await held.done()
    return Answer(StoredResponse(status_code, body, JSON), replayed=False)


@dataclass(slots=True)
class _Held:
    """A key this request claimed (or the stored answer it found instead)."""

    services: Services
    claim: KeyClaim
    holder: str
    replay: Answer | None

    @classmethod
    async def take(cls, services: Services, claim: KeyClaim) -> _Held:
        """Claim the key; with Redis, a repeat that meets the first request still running is
        refused by Redis's in-flight marker before it reaches the database (whose claim still
        decides whenever the marker is missing: Redis restarted, or its lease ran out)."""
        holder = random_hex(16)
        lease = timedelta(seconds=services.settings.idempotency_lease_seconds)
        link = services.redis
        marker = f"{claim.scope}\n{claim.key}"
        if link is not None and not await mark_in_flight(link, marker, holder, lease):
            raise service.in_progress()
        try:
            stored = await services.db.run_raw(
                service.claim_key, claim.scope, claim.key, claim.fingerprint, holder, lease
            )
        except BaseException:
            await cls.unmark(services, claim, holder)
            raise
        held = cls(services, claim, holder, Answer(stored, True) if stored else None)
        if stored:
            await held.done()
        return held

    @staticmethod
    async def unmark(services: Services, claim: KeyClaim, holder: str) -> None:
        if services.redis is not None:
            await clear_in_flight(services.redis, f"{claim.scope}\n{claim.key}", holder)

    async def done(self) -> None:
        """The request has ended: take its in-flight marker down (with Redis)."""
        await self.unmark(self.services, self.claim, self.holder)

    def store(self, tx: RawTx, response: StoredResponse) -> bool:
        ttl = timedelta(hours=self.services.settings.idempotency_ttl_hours)
        return service.store_response(
            tx, self.claim.scope, self.claim.key, self.holder, response, ttl
        )

    def secret_shown(self) -> StoredResponse:
        """What a repeat of a request whose answer held a secret gets instead of the secret."""
        refusal = SecretNotReplayed(
            "This request succeeded and its answer held a secret that is shown only once, so "
            "it was not kept; if it was lost, create a new one (with a new Idempotency-Key) "
            "and revoke the old one."
        )
        return self.claim.refusal(refusal)

    async def fail(self, failure: BaseException) -> None:
        """A refusal is stored (and replayed for repeats); anything else frees the key, as does
        a 5xx refusal (a provider or the database unavailable): the same request may succeed
        when retried."""
        db = self.services.db
        try:
            if isinstance(failure, AppError) and failure.status < 500:
                await db.run_raw(self.store, self.claim.refusal(failure))
            else:
                await db.run_raw(service.release_key, self.claim.scope, self.claim.key, self.holder)
        finally:
            await self.done()
