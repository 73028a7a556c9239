"""The developers' console (their apps: register, read, rotate a secret) and the operators'
review of apps (approve, suspend). Forms carry the CSRF token and a ``form_key`` and call the
same service functions as the JSON API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.apps import service
from pintuan.apps.api import allows_loopback
from pintuan.apps.models import App, AppSecret
from pintuan.domain.apps import ALL_SCOPES, APP_TRANSITIONS, AppStatus
from pintuan.errors import AppError, NotFound
from pintuan.kit.routing import Router
from pintuan.web.console.shared import PAGE_SIZE, STATUS_TONES, listing, with_done
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, Operator

router = Router()

APP_STATUSES = {"pending": "Pending", "approved": "Approved", "suspended": "Suspended"}


def _labels() -> dict[str, Any]:
    return {
        "statuses": APP_STATUSES,
        "tone": lambda status: STATUS_TONES.get(status, ""),
        "tab": "apps",
    }


# ---------------------------------------------------------------------------- developers


@router.get("/console/developer", response_class=HTMLResponse)
async def my_apps(request: Request, principal: LoggedIn, cursor: str | None = None) -> Response:
    rows = await services_of(request).db.read(
        lambda s: service.list_apps(s, principal, status=None, cursor=cursor, limit=PAGE_SIZE)
    )
    context: dict[str, Any] = {
        "page": listing(request, rows, PAGE_SIZE, lambda a: a.id),
        "scopes": sorted(ALL_SCOPES),
        "error": None,
        "values": {},
        **_labels(),
    }
    return await render(request, "developers/apps.html", context)


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


@router.post("/console/developer/apps", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def register_app(request: Request, principal: LoggedIn) -> Response:
    services = services_of(request)
    form = await request.form()
    fields = await form_fields(request)
    manifest = service.Manifest(
        name=fields.get("name", ""),
        homepage=fields.get("homepage", ""),
        redirect_uris=_lines(fields.get("redirect_uris", "")),
        scopes=[s for s in form.getlist("scopes") if isinstance(s, str)],
        webhook_url=fields.get("webhook_url") or None,
        webhook_events=tuple(_lines(fields.get("webhook_events", ""))),
    )
    loopback = allows_loopback(services.settings)

    def work(session: Session) -> dict[str, str]:
        app, issued = service.register_app(session, principal, manifest, allow_loopback=loopback)
        return {"app_id": app.id, "secret": issued.secret}

    try:
        outcome = await run_form_write(request, services, principal, work)
    except AppError as error:
        rows = await services.db.read(
            lambda s: service.list_apps(s, principal, status=None, cursor=None, limit=PAGE_SIZE)
        )
        context: dict[str, Any] = {
            "page": listing(request, rows, PAGE_SIZE, lambda a: a.id),
            "scopes": sorted(ALL_SCOPES),
            "error": error_message(error, request_locale(request, principal)),
            "values": fields,
            **_labels(),
        }
        return await render(request, "developers/apps.html", context, status_code=error.status)
    return await _app_page(request, principal, outcome["app_id"], new_secret=outcome["secret"])


async def _app_page(
    request: Request, principal: Any, app_id: str, *, new_secret: str | None = None
) -> Response:
    def work(session: Session) -> tuple[App, list[AppSecret]]:
        app = service.own_app(session, principal, app_id)
        return app, service.live_secrets(session, app.id)

    app, secrets = await services_of(request).db.read(work)
    context = {"app": app, "secrets": secrets, "new_secret": new_secret, **_labels()}
    return await render(request, "developers/app.html", context)


@router.get("/console/developer/apps/{app_id}", response_class=HTMLResponse)
async def my_app(request: Request, app_id: str, principal: LoggedIn) -> Response:
    return await _app_page(request, principal, app_id)


@router.post(
    "/console/developer/apps/{app_id}/secrets",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def rotate_secret(request: Request, app_id: str, principal: LoggedIn) -> Response:
    services = services_of(request)
    overlap = timedelta(hours=services.settings.app_secret_overlap_hours)

    def work(session: Session) -> dict[str, str]:
        return {"secret": service.rotate_secret(session, principal, app_id, overlap=overlap).secret}

    outcome = await run_form_write(request, services, principal, work)
    return await _app_page(request, principal, app_id, new_secret=outcome["secret"])


# ---------------------------------------------------------------------------- operators


@router.get("/console/operator/apps", response_class=HTMLResponse)
async def review_queue(
    request: Request, principal: Operator, status: str | None = None, cursor: str | None = None
) -> Response:
    chosen = status if status in APP_STATUSES else AppStatus.PENDING.value
    rows = await services_of(request).db.read(
        lambda s: service.list_apps(
            s, principal, status=AppStatus(chosen), cursor=cursor, limit=PAGE_SIZE, everyone=True
        )
    )
    context: dict[str, Any] = {
        **_labels(),
        "page": listing(request, rows, PAGE_SIZE, lambda a: a.id),
        "status": chosen,
        "actions": {
            a.id: [x for x in APP_TRANSITIONS if AppStatus(a.status) in APP_TRANSITIONS[x]]
            for a in rows
        },
    }
    return await render(request, "developers/review.html", context)


@router.post(
    "/console/operator/apps/{app_id}/{action}",
    response_class=HTMLResponse,
    dependencies=[CsrfProtected],
)
async def review_app(request: Request, app_id: str, action: str, principal: Operator) -> Response:
    if action not in APP_TRANSITIONS:
        raise NotFound("No such action.", code="not_found")

    def work(session: Session) -> dict[str, str]:
        return {"status": service.review_app(session, principal, app_id, action).status}

    await run_form_write(request, services_of(request), principal, work)
    return RedirectResponse(with_done("/console/operator/apps", action), status_code=303)
