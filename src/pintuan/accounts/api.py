"""HTTP endpoints of accounts: sign-up, log-in sessions, the caller's profile and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts import service
from pintuan.accounts.dependencies import SESSION_COOKIE, CurrentPrincipal, MaybePrincipal
from pintuan.accounts.models import User
from pintuan.accounts.schemas import (
    LoginIn,
    NewTokenOut,
    PasswordTokenIn,
    ProfileIn,
    RevokedOut,
    SessionList,
    SessionOut,
    SignupIn,
    TokenIn,
    TokenList,
    TokenOut,
    UserOut,
)
from pintuan.accounts.service import LoginDelays
from pintuan.config import Environment, Settings
from pintuan.domain.roles import Principal
from pintuan.errors import InvalidInput, RateLimited, Unauthenticated
from pintuan.idempotency.http import run_write
from pintuan.kit.http import client_address
from pintuan.kit.redislink import count_in_window
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1", tags=["accounts"])


def _user_out(session: Session, user: User) -> UserOut:
    principal = service.principal_for_user(session, user.id)
    merchant_ids = sorted(principal.merchant_ids) if principal else []
    return UserOut.of(user, merchant_ids)


async def count_attempts(services: Services, buckets: list[tuple[str, int]]) -> None:
    """Count an attempt in each bucket, committed at once so that refusals count too; in Redis
    when it is configured (a window's count is then lost if Redis restarts: it starts again)."""
    window = services.settings.rate_limit_window_seconds
    if services.redis is not None:
        now = utc_now()
        counted = [
            (await count_in_window(services.redis, bucket, now, window_seconds=window), limit)
            for bucket, limit in buckets
        ]
        for seen, limit in counted:
            if seen is not None and seen[0] > limit:
                raise RateLimited(
                    "Too many attempts; wait before trying again.",
                    retry_after_seconds=max(int((seen[1] - now).total_seconds()), 1),
                )
        if all(seen is not None for seen, _ in counted):
            return

    def count(session: Session) -> None:
        for bucket, limit in buckets:
            service.count_attempt(session, bucket, limit=limit, window_seconds=window)

    await services.db.run(count)


def login_buckets(
    request: Request, settings: Settings, email: str
) -> list[tuple[str, LoginDelays]]:
    """The buckets a log-in attempt counts in: its account first, then its client address."""

    def delays(free_failures: int) -> LoginDelays:
        return LoginDelays(
            free_failures=free_failures,
            first_delay=timedelta(seconds=settings.login_delay_seconds),
            max_delay=timedelta(seconds=settings.login_delay_max_seconds),
            forget_after=timedelta(seconds=settings.rate_limit_window_seconds),
        )

    return [
        (f"login:account:{email}", delays(settings.login_attempts_per_account)),
        (f"login:address:{client_address(request)}", delays(settings.login_attempts_per_address)),
    ]


async def verify_login(request: Request, services: Services, body: LoginIn) -> str:
    """The user id for valid credentials. After a few failures per account or per client
    address each further attempt must wait a growing delay (429 with ``Retry-After`` when it
    comes early); the right password after the delay gets in. The log-in page uses it too."""
    email = service.normalize_email(body.email)
    buckets = login_buckets(request, services.settings, email)
    await services.db.run(lambda s: service.admit_login(s, buckets, utc_now()))
    user = await services.db.read(service.find_user_by_email, email)
    valid = await services.passwords.verify_in_turn(
        user.password_hash if user else None, body.password
    )
    if user is None or not valid:
        await services.db.run(lambda s: service.record_login_failure(s, buckets, utc_now()))
        raise Unauthenticated("The email address or password is wrong.", code="invalid_login")
    await services.db.run(service.record_login_success, buckets[0][0])
    service.require_enabled(user)
    return user.id


def _token_days(services: Services, asked: int | None) -> int:
    """A token's lifetime: the platform's default, or less when its creator asks."""
    default = services.settings.api_token_days
    if asked is None:
        return default
    if asked > default:
        raise InvalidInput(
            f"A token lives at most {default} days here; ask for {default} or fewer.",
            extra={"errors": [{"field": "expires_in_days", "message": f"at most {default}"}]},
        )
    return asked


@router.post("/signup", status_code=201, response_model=UserOut)
async def sign_up(
    body: SignupIn, request: Request, services: ServicesDep, principal: MaybePrincipal
) -> Response:
    """Create a shopper account."""
    await count_attempts(
        services,
        [(f"signup:address:{client_address(request)}", services.settings.signups_per_address)],
    )
    password_hash = await services.passwords.hash_in_turn(body.password)

    def work(session: Session) -> UserOut:
        user = service.create_user(
            session,
            email=body.email,
            password_hash=password_hash,
            display_name=body.display_name,
            locale=body.locale,
            time_zone=body.time_zone,
        )
        return UserOut.of(user, [])

    return await run_write(request, services, principal, work, status_code=201)


@router.post("/sessions", status_code=201, response_model=UserOut)
async def log_in(body: LoginIn, request: Request, services: ServicesDep) -> Response:
    """Log in with email and password; the answer sets the session cookie for web pages."""
    user_id = await verify_login(request, services, body)
    days = services.settings.session_days

    def work(session: Session) -> tuple[UserOut, str]:
        secret = service.start_web_session(session, user_id, days=days)
        return _user_out(session, service.get_user(session, user_id)), secret

    user_out, secret = await services.db.run(work)
    response = Response(user_out.model_dump_json(), status_code=201, media_type="application/json")
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(timedelta(days=days).total_seconds()),
        httponly=True,
        secure=services.settings.env is Environment.PROD,
        samesite="lax",
        path="/",
    )
    return response


@router.delete("/sessions/current", status_code=204)
async def log_out(request: Request, services: ServicesDep) -> Response:
    """End the browser session of this cookie."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await services.db.run(service.end_web_session, secret)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/tokens", status_code=201, response_model=NewTokenOut)
async def create_token_with_password(
    body: PasswordTokenIn, request: Request, services: ServicesDep
) -> Response:
    """Exchange email and password for a new API token (shown once)."""
    user_id = await verify_login(request, services, body)

    days = _token_days(services, body.expires_in_days)

    def work(session: Session) -> NewTokenOut:
        issued = service.issue_api_token(session, user_id, body.name, days=days)
        return NewTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)

    # The secret is shown once: never kept in the idempotency store, a repeat is refused.
    return await run_write(request, services, None, work, status_code=201, keep_answer=False)


@router.get("/me", response_model=UserOut)
async def read_me(principal: CurrentPrincipal, services: ServicesDep) -> UserOut:
    def work(session: Session) -> UserOut:
        return _user_out(session, service.get_user(session, principal.user_id))

    return await services.db.read(work)


@router.patch("/me", response_model=UserOut)
async def update_me(body: ProfileIn, principal: CurrentPrincipal, services: ServicesDep) -> UserOut:
    """Change your display name, language or time zone."""

    def work(session: Session) -> UserOut:
        user = service.update_profile(
            session, principal.user_id, **body.model_dump(exclude_unset=True, exclude_none=True)
        )
        return _user_out(session, user)

    return await services.db.run(work)


@router.post("/me/tokens", status_code=201, response_model=NewTokenOut)
async def create_token(
    body: TokenIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """A new API token for yourself; its secret is in this answer only."""

    days = _token_days(services, body.expires_in_days)

    def work(session: Session) -> NewTokenOut:
        issued = service.issue_api_token(session, principal.user_id, body.name, days=days)
        return NewTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)

    return await run_write(request, services, principal, work, status_code=201, keep_answer=False)


@router.get("/me/tokens", response_model=TokenList)
async def list_tokens(principal: CurrentPrincipal, services: ServicesDep) -> TokenList:
    tokens = await services.db.read(service.list_api_tokens, principal.user_id)
    return TokenList(data=[TokenOut.of(t) for t in tokens])


@router.delete("/me/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(
    token_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> TokenOut:
    """Revoke one of your API tokens; it stops working at once."""
    token = await services.db.run(service.revoke_api_token, principal.user_id, token_id)
    return TokenOut.of(token)


@router.get("/me/sessions", response_model=SessionList)
async def list_sessions(principal: CurrentPrincipal, services: ServicesDep) -> SessionList:
    """Your browser sessions that still work, with when each was last used."""
    sessions = await services.db.read(service.list_web_sessions, principal.user_id)
    return SessionList(data=[SessionOut.of(s) for s in sessions])


@router.post("/me/sessions/revoke-all", response_model=RevokedOut)
async def sign_out_everywhere(principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Sign out everywhere: every session and API token of yours stops working at once, this
    request's own included. Repeating it is harmless."""
    sessions, tokens = await services.db.run(service.revoke_all_credentials, principal.user_id)
    body = RevokedOut(sessions_revoked=sessions, tokens_revoked=tokens)
    response = Response(body.model_dump_json(), media_type="application/json")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _set_disabled(
    user_id: str, disabled: bool, request: Request, principal: Principal, services: Services
) -> Response:
    def work(session: Session) -> UserOut:
        return _user_out(session, service.set_user_disabled(session, principal, user_id, disabled))

    return await run_write(request, services, principal, work)


@router.post("/users/{user_id}/disable", response_model=UserOut)
async def disable_user(
    user_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Disable a user (operators): they cannot log in, and every session and API token of
    theirs stops working at once."""
    return await _set_disabled(user_id, True, request, principal, services)


@router.post("/users/{user_id}/enable", response_model=UserOut)
async def enable_user(
    user_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Let a disabled user log in again (operators); their old sessions and tokens stay
    revoked."""
    return await _set_disabled(user_id, False, request, principal, services)
