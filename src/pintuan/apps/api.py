"""HTTP endpoints of the open platform: apps and their review, client secrets, the OAuth token
and revocation endpoints, the discovery document, and who an app's token acts for.

``/oauth/token`` and ``/oauth/revoke`` answer as OAuth 2 requires (``{"error": ...}`` bodies,
form-encoded requests), so that any OAuth client library works against them; everything under
``/v1`` answers with problem details like the rest of the API.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.apps import oauth, service
from pintuan.apps.dependencies import current_app
from pintuan.apps.schemas import (
    AppIn,
    AppOut,
    NewSecretOut,
    PartnerMeOut,
    RegisteredAppOut,
    SecretOut,
)
from pintuan.config import Environment, Settings
from pintuan.domain.apps import ALL_SCOPES, AppPrincipal, AppStatus, Scope
from pintuan.domain.roles import Principal
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.services import Services, ServicesDep

router = Router(tags=["apps"])


def allows_loopback(settings: Settings) -> bool:
    """Plain http to a loopback address is for development and tests, never production."""
    return settings.env is not Environment.PROD


@router.post("/v1/apps", status_code=201, response_model=RegisteredAppOut)
async def register_app(
    body: AppIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Register an app (any signed-in user, as its developer). It is ``pending`` until an
    operator approves it. The client secret is in this answer only."""
    manifest = service.Manifest(
        name=body.name,
        homepage=body.homepage,
        redirect_uris=body.redirect_uris,
        scopes=[str(s) for s in body.scopes],
        webhook_url=body.webhook_url,
        webhook_events=tuple(body.webhook_events),
    )
    loopback = allows_loopback(services.settings)

    def work(session: Session) -> RegisteredAppOut:
        app, issued = service.register_app(session, principal, manifest, allow_loopback=loopback)
        shown = AppOut.of(app, [issued.row])
        return RegisteredAppOut(**shown.model_dump(), client_secret=issued.secret)

    return await run_write(request, services, principal, work, status_code=201, keep_answer=False)


@router.get("/v1/apps", response_model=Page[AppOut])
async def list_apps(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: AppStatus | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[AppOut]:
    """The caller's apps; operators see every app (the review queue is ``status=pending``)."""
    rows = await services.db.read(
        lambda s: service.list_apps(
            s,
            principal,
            status=status,
            cursor=cursor,
            limit=limit,
            everyone=principal.is_operator,
        )
    )
    return page_of(rows, limit, AppOut.of)


@router.get("/v1/apps/{app_id}", response_model=AppOut)
async def read_app(app_id: str, principal: CurrentPrincipal, services: ServicesDep) -> AppOut:
    """One app, to its developer (with the hints of its working secrets) and to operators."""

    def work(session: Session) -> AppOut:
        app = service.visible_app(session, principal, app_id)
        mine = app.owner_user_id == principal.user_id
        return AppOut.of(app, service.live_secrets(session, app.id) if mine else None)

    return await services.db.read(work)


async def _review(
    app_id: str, action: str, request: Request, principal: Principal, services: Services
) -> Response:
    def work(session: Session) -> AppOut:
        return AppOut.of(service.review_app(session, principal, app_id, action))

    return await run_write(request, services, principal, work)


@router.post("/v1/apps/{app_id}/approve", response_model=AppOut)
async def approve_app(
    app_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Approve an app (operators): ``pending`` or ``suspended`` → ``approved``."""
    return await _review(app_id, "approve", request, principal, services)


@router.post("/v1/apps/{app_id}/suspend", response_model=AppOut)
async def suspend_app(
    app_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Suspend an app (operators): every token it holds stops working at once."""
    return await _review(app_id, "suspend", request, principal, services)


@router.post("/v1/apps/{app_id}/secrets", status_code=201, response_model=NewSecretOut)
async def rotate_secret(
    app_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """A new client secret (the app's developer), shown once. The secrets the app had keep
    working for ``PINTUAN_APP_SECRET_OVERLAP_HOURS``, or until revoked."""
    overlap = timedelta(hours=services.settings.app_secret_overlap_hours)

    def work(session: Session) -> NewSecretOut:
        issued = service.rotate_secret(session, principal, app_id, overlap=overlap)
        return NewSecretOut(**SecretOut.of(issued.row).model_dump(), client_secret=issued.secret)

    return await run_write(request, services, principal, work, status_code=201, keep_answer=False)


@router.delete("/v1/apps/{app_id}/secrets/{secret_id}", response_model=SecretOut)
async def revoke_secret(
    app_id: str, secret_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> SecretOut:
    """Revoke a client secret at once (the app's developer); not the last one that works."""
    return await services.db.run(
        lambda s: SecretOut.of(service.revoke_secret(s, principal, app_id, secret_id))
    )


@router.get("/v1/partner/me", response_model=PartnerMeOut)
async def partner_me(
    app: Annotated[AppPrincipal, Depends(current_app)], services: ServicesDep
) -> PartnerMeOut:
    """Who the app's token acts for: the app itself, a shop, or a person known by a
    pseudonymous ``subject``; their e-mail address and name only with ``profile``."""
    answer = PartnerMeOut(
        app_id=app.app_id,
        scopes=sorted(app.scopes),
        merchant_id=app.merchant_id,
        subject=app.subject,
    )
    if app.user_id is not None and app.has(Scope.PROFILE):
        user = await services.db.read(accounts.get_user, app.user_id)
        answer.email = user.email
        answer.display_name = user.display_name
    return answer


# ---------------------------------------------------------------------------- OAuth 2


async def captured(request: Request) -> oauth.CapturedRequest:
    """The parts of a request Authlib reads, taken before the transaction."""
    form = await request.form() if request.method == "POST" else None
    base = request.app.state.services.settings.base_url.rstrip("/")
    return oauth.CapturedRequest(
        method=request.method,
        uri=base + request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=[(k, v) for k, v in form.multi_items() if isinstance(v, str)] if form else [],
    )


def oauth_json(answer: oauth.Answer) -> Response:
    headers = {k: v for k, v in answer.headers if k.lower() != "content-type"}
    body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
    return Response(body, status_code=answer.status, media_type="application/json", headers=headers)


@router.post("/oauth/token", tags=["oauth"])
async def token(request: Request, services: ServicesDep) -> Response:
    """OAuth 2 token endpoint (form-encoded): ``client_credentials``, ``authorization_code``
    with a PKCE ``code_verifier`` (S256), and ``refresh_token`` (each use rotates it). The
    client authenticates with HTTP Basic or ``client_id``/``client_secret`` in the form."""
    captured_request = await captured(request)
    answer = await services.db.run(
        lambda s: oauth.token_response(s, services.settings, captured_request)
    )
    return oauth_json(answer)


@router.post("/oauth/revoke", tags=["oauth"])
async def revoke(request: Request, services: ServicesDep) -> Response:
    """OAuth 2 token revocation (RFC 7009): an access or refresh token, revoking its grant."""
    captured_request = await captured(request)
    answer = await services.db.run(
        lambda s: oauth.revocation_response(s, services.settings, captured_request)
    )
    return oauth_json(answer)


@router.get("/.well-known/oauth-authorization-server", tags=["oauth"])
async def discovery(services: ServicesDep) -> JSONResponse:
    """Authorization server metadata (RFC 8414)."""
    base = services.settings.base_url.rstrip("/")
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "scopes_supported": sorted(ALL_SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": list(oauth.GRANT_TYPES),
            "token_endpoint_auth_methods_supported": oauth.AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": oauth.AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "service_documentation": f"{base}/developers/docs",
            "ui_locales_supported": ["en", "zh-Hans"],
        }
    )
