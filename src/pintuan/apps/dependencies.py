"""Which app is calling, from the OAuth access token in ``Authorization: Bearer``, and whether
its grant covers the scope a route needs.

The token is checked by Authlib's resource protector (present, known, unexpired, unrevoked);
the lookup behind it is one indexed query on the raw path (``kit/rawsql.py``: every app request
makes it), in the same transaction as the count of the app's requests in the current minute.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from authlib.oauth2.rfc6749 import OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from fastapi import Depends, Request

from pintuan.apps.service import digest
from pintuan.domain.apps import AppPrincipal, AppStatus, Scope, parse_scope
from pintuan.errors import Forbidden, RateLimited, Unauthenticated
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import utc_now
from pintuan.services import get_services

USER_TOKEN_PREFIX = "pt_"  # noqa: S105 - the prefix of a user's API token, not a secret
RATE_WINDOW_SECONDS = 60

APP_TOKEN = Sql(
    """
    SELECT t.id AS token_id, t.app_id, t.user_id, t.merchant_id, t.scope, t.expires_at,
           t.revoked_at, a.status AS app_status, u.disabled_at AS user_disabled_at
    FROM oauth_tokens t JOIN apps a ON a.id = t.app_id
    LEFT JOIN users u ON u.id = t.user_id
    WHERE t.access_hash = :access_hash
    """
)
# One upsert per request, so that every process counts into the same minute.
COUNT_APP_REQUEST = Sql(
    """
    INSERT INTO rate_limit_counters (bucket, window_start, count)
    VALUES (:bucket, :window_start, 1)
    ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limit_counters.count + 1
    RETURNING count
    """
)


@dataclass(frozen=True, slots=True)
class _TokenRow:
    token_id: str
    app_id: str
    user_id: str | None
    merchant_id: str | None
    scope: str
    expires_at: datetime | str
    revoked_at: datetime | str | None
    app_status: str
    user_disabled_at: datetime | str | None


class _LiveToken:
    """A token row as Authlib's validator asks about it."""

    def __init__(self, row: _TokenRow, expires_at: datetime) -> None:
        self.row = row
        self.expires_at = expires_at

    def is_expired(self) -> bool:
        return self.expires_at <= utc_now()

    def is_revoked(self) -> bool:
        # A suspended app or a disabled person stops every token at once, whatever it says.
        return (
            self.row.revoked_at is not None
            or self.row.app_status != AppStatus.APPROVED.value
            or self.row.user_disabled_at is not None
        )

    def get_scope(self) -> str:
        return self.row.scope


class _Validator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, tx: RawTx) -> None:
        super().__init__()
        self.tx = tx

    def authenticate_token(self, token_string: str) -> _LiveToken | None:
        row = self.tx.one_as(_TokenRow, APP_TOKEN, {"access_hash": digest(token_string)})
        if row is None:
            return None
        return _LiveToken(row, self.tx.read_instant(row.expires_at))


@dataclass(frozen=True)
class _Headers:
    headers: dict[str, str]


def subject_for(secret_key: str, app_id: str, user_id: str) -> str:
    """The person's id as one app sees it: stable for that app, different for every other, and
    not linkable to their account without the platform's secret key."""
    mac = hmac.new(secret_key.encode(), f"{app_id}:{user_id}".encode(), hashlib.sha256)
    return "sub_" + mac.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AppUse:
    principal: AppPrincipal | None
    retry_after: int = 0


def use_app_token(
    tx: RawTx, authorization: str, *, secret_key: str, requests_per_minute: int
) -> AppUse:
    """Who an app access token acts for, and the app's request counted against its limit;
    ``principal`` is None when Authlib's protector refuses the token."""
    protector = ResourceProtector()
    protector.register_token_validator(_Validator(tx))
    try:
        token: _LiveToken = protector.validate_request(
            None, _Headers({"Authorization": authorization})
        )
    except OAuth2Error:
        return AppUse(None)
    row = token.row
    now = utc_now()
    epoch = int(now.timestamp())
    window_start = now - timedelta(
        seconds=epoch % RATE_WINDOW_SECONDS, microseconds=now.microsecond
    )
    count = int(
        tx.scalar(
            COUNT_APP_REQUEST,
            {"bucket": f"app:{row.app_id}", "window_start": tx.instant(window_start)},
        )
    )
    principal = AppPrincipal(
        app_id=row.app_id,
        scopes=frozenset(parse_scope(row.scope)),
        user_id=row.user_id,
        merchant_id=row.merchant_id,
        token_id=row.token_id,
        subject=subject_for(secret_key, row.app_id, row.user_id) if row.user_id else None,
    )
    if count > requests_per_minute:
        ends = window_start + timedelta(seconds=RATE_WINDOW_SECONDS)
        return AppUse(principal, max(math.ceil((ends - now).total_seconds()), 1))
    return AppUse(principal)


async def current_app(request: Request) -> AppPrincipal:
    """The app a request acts as, from its access token; 401 ``invalid_token`` when there is
    none that works, 429 ``rate_limited`` with ``Retry-After`` past the app's rate."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthenticated(
            "Send an app access token as 'Authorization: Bearer <token>'.", code="invalid_token"
        )
    if secret.startswith(USER_TOKEN_PREFIX):
        raise Forbidden(
            "This route is for apps: send an app's OAuth access token, not a user's API token.",
            code="app_token_required",
        )
    services = await get_services(request)
    settings = services.settings
    use: AppUse = await services.db.run_raw(
        lambda tx: use_app_token(
            tx,
            f"Bearer {secret}",
            secret_key=settings.secret_key,
            requests_per_minute=settings.app_requests_per_minute,
        )
    )
    if use.principal is None:
        raise Unauthenticated(
            "This access token is unknown, expired or revoked, or its app is suspended; "
            "get a new one from /oauth/token.",
            code="invalid_token",
        )
    if use.retry_after:
        raise RateLimited(
            f"This app made more than {settings.app_requests_per_minute} requests this minute; "
            f"wait {use.retry_after} s.",
            retry_after_seconds=use.retry_after,
        )
    return use.principal


def require_scope(scope: Scope) -> Callable[..., Awaitable[AppPrincipal]]:
    """A dependency that lets a request through only when its app's grant includes ``scope``."""

    async def check(app: Annotated[AppPrincipal, Depends(current_app)]) -> AppPrincipal:
        if not app.has(scope):
            raise Forbidden(
                f"This app's grant does not include the '{scope}' scope.",
                code="insufficient_scope",
            )
        return app

    return check


CurrentApp = Annotated[AppPrincipal, Depends(current_app)]
