"""HTTP endpoints of accounts: sign-up, log-in sessions, the caller's profile and API tokens."""

from __future__ import annotations

from datetime import timedelta

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts import service
from pintuan.accounts.dependencies import SESSION_COOKIE, CurrentPrincipal, MaybePrincipal
from pintuan.accounts.models import User
from pintuan.accounts.schemas import (
    LoginIn,
    NewTokenOut,
    PasswordTokenIn,
    ProfileIn,
    SignupIn,
    TokenIn,
    TokenList,
    TokenOut,
    UserOut,
)
from pintuan.config import Environment
from pintuan.errors import Unauthenticated
from pintuan.idempotency.http import run_write
from pintuan.kit.http import client_address
from pintuan.services import Services, ServicesDep

router = APIRouter(prefix="/v1", tags=["accounts"])


def _user_out(session: Session, user: User) -> UserOut:
    principal = service.principal_for_user(session, user.id)
    merchant_ids = sorted(principal.merchant_ids) if principal else []
    return UserOut.of(user, merchant_ids)


async def count_attempts(services: Services, buckets: list[tuple[str, int]]) -> None:
    """Count an attempt in each bucket, committed at once so that refusals count too."""
    window = services.settings.rate_limit_window_seconds

    def count(session: Session) -> None:
        for bucket, limit in buckets:
            service.count_attempt(session, bucket, limit=limit, window_seconds=window)

    await services.db.run(count)


async def verify_login(request: Request, services: Services, body: LoginIn) -> str:
    """The user id for valid credentials, after counting the attempt against both limits
    (per account and per client address). The log-in page uses it too."""
    settings = services.settings
    email = service.normalize_email(body.email)
    await count_attempts(
        services,
        [
            (f"login:account:{email}", settings.login_attempts_per_account),
            (f"login:address:{client_address(request)}", settings.login_attempts_per_address),
        ],
    )
    user = await services.db.read(service.find_user_by_email, email)
    valid = await anyio.to_thread.run_sync(
        services.passwords.verify, user.password_hash if user else None, body.password
    )
    if user is None or not valid:
        raise Unauthenticated("The email address or password is wrong.", code="invalid_login")
    return user.id


@router.post("/signup", status_code=201, response_model=UserOut)
async def sign_up(
    body: SignupIn, request: Request, services: ServicesDep, principal: MaybePrincipal
) -> Response:
    """Create a shopper account."""
    await count_attempts(
        services,
        [(f"signup:address:{client_address(request)}", services.settings.signups_per_address)],
    )
    password_hash = await anyio.to_thread.run_sync(services.passwords.hash, body.password)

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

    def work(session: Session) -> NewTokenOut:
        issued = service.issue_api_token(session, user_id, body.name)
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

    def work(session: Session) -> NewTokenOut:
        issued = service.issue_api_token(session, principal.user_id, body.name)
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
