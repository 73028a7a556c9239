"""Use cases of accounts: users, API tokens, web sessions and attempt limits.

Every function takes a session inside an open transaction and never commits. Password hashing is
not done here: it is slow, so the HTTP layer hashes off the event loop and passes the hash in.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from pintuan.accounts.models import ApiToken, LoginThrottle, RateLimitCounter, User, WebSession
from pintuan.domain.roles import Principal, Role
from pintuan.errors import Conflict, Forbidden, NotFound, RateLimited
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import utc_now

API_TOKEN_PREFIX = "pt_"  # noqa: S105 - a prefix, not a secret
SESSION_TOKEN_BYTES = 32
DEFAULT_API_TOKEN_DAYS = 90
# A token's or session's last use is written at most this often: the lookup is on every
# request's path (the join's included), and a write per request would double its cost.
LAST_USED_PRECISION = timedelta(minutes=1)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    email: str,
    password_hash: str,
    display_name: str,
    role: Role = Role.SHOPPER,
    locale: str = "en",
    time_zone: str = "UTC",
) -> User:
    """Create a user; ``email_taken`` when the address already has an account."""
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            "An account with this email address already exists; log in instead.",
            code="email_taken",
        )
    user = User(
        id=new_id("usr"),
        email=email,
        display_name=display_name.strip(),
        password_hash=password_hash,
        role=role.value,
        locale=locale,
        time_zone=time_zone,
        created_at=utc_now(),
    )
    session.add(user)
    session.flush()
    return user


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user_not_found")
    return user


def update_profile(
    session: Session,
    user_id: str,
    *,
    display_name: str | None = None,
    locale: str | None = None,
    time_zone: str | None = None,
) -> User:
    """Change what a user may change about themselves."""
    user = get_user(session, user_id)
    if display_name is not None:
        user.display_name = display_name.strip()
    if locale is not None:
        user.locale = locale
    if time_zone is not None:
        user.time_zone = time_zone
    session.flush()
    return user


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ApiToken
    secret: str


def require_enabled(user: User) -> None:
    """Refuse a disabled account (403 ``account_disabled``): it may not sign in at all."""
    if user.disabled_at is not None:
        raise Forbidden(
            "This account has been disabled by the platform's operators.", code="account_disabled"
        )


def issue_api_token(
    session: Session, user_id: str, name: str, *, days: int = DEFAULT_API_TOKEN_DAYS
) -> IssuedToken:
    """A new bearer token for ``user_id`` that expires after ``days``; the secret is returned
    once and stored only hashed. A disabled user gets none."""
    require_enabled(get_user(session, user_id))
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utc_now()
    token = ApiToken(
        id=new_id("tok"),
        user_id=user_id,
        name=name.strip() or "API token",
        token_hash=_digest(secret),
        hint=secret[:7],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def list_api_tokens(session: Session, user_id: str) -> list[ApiToken]:
    """The user's tokens that still work, newest first."""
    query = (
        select(ApiToken)
        .where(
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > utc_now(),
        )
        .order_by(ApiToken.id.desc())
    )
    return list(session.scalars(query))


def revoke_api_token(session: Session, user_id: str, token_id: str) -> ApiToken:
    """Revoke one of the user's tokens; revoking twice is harmless."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"No API token {token_id}.", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = utc_now()
        session.flush()
    return token


def start_web_session(session: Session, user_id: str, *, days: int) -> str:
    """A new browser session; returns the cookie value (stored only hashed). A disabled user
    gets none."""
    require_enabled(get_user(session, user_id))
    secret = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    now = utc_now()
    session.add(
        WebSession(
            id=new_id("ses"),
            user_id=user_id,
            token_hash=_digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return secret


def end_web_session(session: Session, secret: str) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _digest(secret), WebSession.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )


def revoke_all_credentials(session: Session, user_id: str) -> tuple[int, int]:
    """Sign the user out everywhere: revoke every session and API token they hold; returns how
    many sessions and tokens were revoked. The next request of any of them is refused."""
    now = utc_now()
    sessions = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    tokens = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(sessions.rowcount or 0), int(tokens.rowcount or 0)  # type: ignore[attr-defined]


def set_user_disabled(session: Session, principal: Principal, user_id: str, disabled: bool) -> User:
    """Disable a user (operators): no log-in, and every session and token stops working at once
    (revoked, so enabling again does not revive them); or enable them again."""
    if not principal.is_operator:
        raise Forbidden("Only platform operators may do this.", code="operator_only")
    if user_id == principal.user_id:
        raise Conflict("You cannot disable or enable your own account.", code="cannot_disable_self")
    user = get_user(session, user_id)
    if disabled and user.disabled_at is None:
        user.disabled_at = utc_now()
        revoke_all_credentials(session, user_id)
    elif not disabled:
        user.disabled_at = None
    session.flush()
    return user


def disabled_among(session: Session, user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` are disabled (for the operators' directory)."""
    if not user_ids:
        return set()
    query = select(User.id).where(User.id.in_(user_ids), User.disabled_at.is_not(None))
    return set(session.scalars(query))


@dataclass(frozen=True, slots=True)
class _TokenHolder:
    token_id: str
    expires_at: datetime | str
    last_used_at: datetime | str | None
    user_id: str
    role: str
    display_name: str
    locale: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class TokenUse:
    """Who a token acts for, and whether its last-used time is due a write."""

    principal: Principal
    token_id: str
    touch_due: bool


@dataclass(frozen=True, slots=True)
class _StaffPost:
    merchant_id: str


TOKEN_PRINCIPAL = Sql("""
    SELECT t.id AS token_id, t.expires_at, t.last_used_at, u.id AS user_id, u.role,
           u.display_name, u.locale, u.time_zone
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL AND u.disabled_at IS NULL
""")
# Conditional, so that many processes seeing the same stale time write it once.
TOUCH_TOKEN = Sql("""
    UPDATE api_tokens SET last_used_at = :now
    WHERE id = :id AND (last_used_at IS NULL OR last_used_at <= :stale)
""")
STAFF_OF = Sql("SELECT merchant_id FROM merchant_staff WHERE user_id = :user_id")


def _merchants_of(tx: RawTx, user_id: str) -> frozenset[str]:
    return frozenset(p.merchant_id for p in tx.all_as(_StaffPost, STAFF_OF, {"user_id": user_id}))


def use_api_token(tx: RawTx, secret: str) -> TokenUse | None:
    """Who a bearer token acts for, unless it is unknown, revoked or expired or its user is
    disabled: one indexed lookup (every API request makes it)."""
    # Read before a write's transaction begins (PostgreSQL): it locks nothing, and the write's
    # BEGIN then goes out with its own first statement.
    holder = tx.one_as_outside(_TokenHolder, TOKEN_PRINCIPAL, {"token_hash": _digest(secret)})
    if holder is None:
        return None
    # The instants are compared here rather than bound into the query: formatting an instant
    # for the driver costs more than the rest of the lookup.
    now = utc_now()
    if tx.read_instant(holder.expires_at) <= now:
        return None
    role = Role(holder.role)
    principal = Principal(
        holder.user_id,
        role,
        holder.display_name,
        holder.locale,
        holder.time_zone,
        _merchants_of(tx, holder.user_id) if role is Role.MERCHANT else frozenset(),
    )
    last = holder.last_used_at
    due = last is None or tx.read_instant(last) <= now - LAST_USED_PRECISION
    return TokenUse(principal, holder.token_id, due)


def principal_for_api_token(tx: RawTx, secret: str) -> Principal | None:
    """Who a bearer token acts for (see :func:`use_api_token`)."""
    use = use_api_token(tx, secret)
    return use.principal if use else None


def touch_api_token(tx: RawTx, token_id: str) -> None:
    """Record that the token was used now, unless that was recorded within the last minute."""
    now = utc_now()
    tx.send(
        TOUCH_TOKEN,
        {
            "id": token_id,
            "now": tx.instant(now),
            "stale": tx.instant(now - LAST_USED_PRECISION),
        },
    )


@dataclass(frozen=True, slots=True)
class SessionUse:
    """Who a session cookie acts for, and whether its last-used time is due a write."""

    principal: Principal
    session_id: str
    touch_due: bool


def use_web_session(session: Session, secret: str) -> SessionUse | None:
    """Who a session cookie acts for, unless it is unknown, revoked or expired or its user is
    disabled."""
    now = utc_now()
    row = session.execute(
        select(WebSession.id, WebSession.user_id, WebSession.last_used_at)
        .join(User, User.id == WebSession.user_id)
        .where(
            WebSession.token_hash == _digest(secret),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
            User.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    principal = principal_for_user(session, row.user_id)
    if principal is None:
        return None
    due = row.last_used_at is None or row.last_used_at <= now - LAST_USED_PRECISION
    return SessionUse(principal, row.id, due)


def principal_for_web_session(session: Session, secret: str) -> Principal | None:
    """Who a session cookie acts for (see :func:`use_web_session`)."""
    use = use_web_session(session, secret)
    return use.principal if use else None


def touch_web_session(session: Session, session_id: str) -> None:
    """Record that the session was used now, unless that was recorded within the last minute."""
    now = utc_now()
    session.execute(
        update(WebSession)
        .where(
            WebSession.id == session_id,
            or_(
                WebSession.last_used_at.is_(None),
                WebSession.last_used_at <= now - LAST_USED_PRECISION,
            ),
        )
        .values(last_used_at=now)
    )


def list_web_sessions(session: Session, user_id: str) -> list[WebSession]:
    """The user's sessions that still work, newest first."""
    query = (
        select(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > utc_now(),
        )
        .order_by(WebSession.id.desc())
    )
    return list(session.scalars(query))


def principal_for_user(session: Session, user_id: str) -> Principal | None:
    user = session.get(User, user_id)
    if user is None:
        return None
    return Principal(
        user_id=user.id,
        role=Role(user.role),
        display_name=user.display_name,
        locale=user.locale,
        time_zone=user.time_zone,
        merchant_ids=_merchants_of(raw_tx(session), user_id),
    )


def count_attempt(session: Session, bucket: str, *, limit: int, window_seconds: int) -> None:
    """Count one attempt in ``bucket``'s current fixed window; refuse past ``limit``.

    The increment is one upsert, so concurrent attempts in several processes are all counted.
    """
    count, window_end = count_in_window(session, bucket, window_seconds=window_seconds)
    if count > limit:
        retry_after = int((window_end - utc_now()).total_seconds())
        raise RateLimited(
            "Too many attempts; wait before trying again.",
            retry_after_seconds=max(retry_after, 1),
        )


def count_in_window(session: Session, bucket: str, *, window_seconds: int) -> tuple[int, datetime]:
    """Count one more in ``bucket``'s current fixed window: the count so far, this one
    included, and when the window ends. For limits that refuse nothing but stop doing
    something (share visits past the limit are not recorded)."""
    now = utc_now()
    epoch = int(now.timestamp())
    window_start = datetime.fromtimestamp(epoch - epoch % window_seconds, tz=now.tzinfo)
    insert = upsert_insert(session, RateLimitCounter)
    statement = (
        insert.values(bucket=bucket, window_start=window_start, count=1)
        .on_conflict_do_update(
            index_elements=["bucket", "window_start"],
            set_={"count": RateLimitCounter.__table__.c.count + 1},
        )
        .returning(RateLimitCounter.__table__.c.count)
    )
    count = int(session.execute(statement).scalar_one())
    return count, window_start + timedelta(seconds=window_seconds)


def forget_old_attempts(session: Session, *, older_than: datetime) -> int:
    """Delete attempt counters and log-in throttles nobody needs any more."""
    result = session.execute(
        delete(RateLimitCounter).where(RateLimitCounter.window_start < older_than)
    )
    throttles = session.execute(delete(LoginThrottle).where(LoginThrottle.retry_at < older_than))
    return int(result.rowcount or 0) + int(throttles.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- log-in delays


@dataclass(frozen=True, slots=True)
class LoginDelays:
    """How log-in failures slow a bucket down: ``free_failures`` in a row cost nothing, then
    each further attempt waits ``first_delay``, doubling per failure up to ``max_delay``.
    A bucket with no failure for ``forget_after`` starts afresh.

    A delay, not a lock: the right password, when it comes after the delay, is let in. So
    nobody can lock an account by failing on purpose; they can only slow guessing down.
    """

    free_failures: int
    first_delay: timedelta
    max_delay: timedelta
    forget_after: timedelta

    def after(self, failures: int) -> timedelta:
        """How long the next attempt waits after ``failures`` failures in a row."""
        if failures < self.free_failures:
            return timedelta(0)
        doublings = min(failures - self.free_failures, 32)
        return min(self.first_delay * (1 << doublings), self.max_delay)


@dataclass(frozen=True, slots=True)
class _Throttle:
    failures: int
    retry_at: datetime


def _throttle(session: Session, bucket: str) -> _Throttle | None:
    row = session.execute(
        select(LoginThrottle.failures, LoginThrottle.retry_at).where(LoginThrottle.bucket == bucket)
    ).one_or_none()
    return _Throttle(row.failures, row.retry_at) if row is not None else None


def admit_login(session: Session, buckets: list[tuple[str, LoginDelays]], now: datetime) -> None:
    """Let a log-in attempt in, or refuse it (429 ``rate_limited`` with ``Retry-After``) when
    one of its buckets is still waiting out its delay. Checked before the password is hashed.

    A slowed bucket admits one attempt per delay, in all processes together: admitting is a
    conditional write (``retry_at`` moves on only if it has passed), and a second attempt that
    loses the race is refused like an early one. Commit it before verifying the password.
    """
    for bucket, delays in buckets:
        found = _throttle(session, bucket)
        if found is None or found.failures < delays.free_failures:
            continue
        if found.retry_at + delays.forget_after <= now:
            continue
        if now < found.retry_at:
            raise _too_early(found.retry_at - now)
        admitted = session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.bucket == bucket, LoginThrottle.retry_at <= now)
            .values(retry_at=now + delays.after(found.failures + 1))
        )
        if not admitted.rowcount:  # type: ignore[attr-defined]
            raise _too_early(timedelta(seconds=1))


def _too_early(wait: timedelta) -> RateLimited:
    seconds = max(math.ceil(wait.total_seconds()), 1)
    return RateLimited(
        f"Too many failed log-ins; wait {seconds} s before trying again.",
        retry_after_seconds=seconds,
    )


def record_login_failure(
    session: Session, buckets: list[tuple[str, LoginDelays]], now: datetime
) -> None:
    """Count a failed log-in in each bucket and set when the next attempt may come.

    The count moves in one upsert, so failures in several processes are all counted.
    """
    table = LoginThrottle.__table__
    for bucket, delays in buckets:
        forgotten = table.c.retry_at < now - delays.forget_after
        statement = (
            upsert_insert(session, LoginThrottle)
            .values(bucket=bucket, failures=1, retry_at=now + delays.after(1))
            .on_conflict_do_update(
                index_elements=["bucket"],
                set_={"failures": case((forgotten, 1), else_=table.c.failures + 1)},
            )
            .returning(table.c.failures)
        )
        failures = int(session.execute(statement).scalar_one())
        # Only the latest failure sets the wait; a concurrent later one has counted past us.
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.bucket == bucket, LoginThrottle.failures == failures)
            .values(retry_at=now + delays.after(failures))
        )


def record_login_success(session: Session, account_bucket: str) -> None:
    """The account's failures are forgiven once its owner gets in. Address buckets are not:
    a guesser could otherwise reset their address by logging in to an account of their own."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.bucket == account_bucket))
