"""Builds the FastAPI application: services, routers, middleware and the one error handler."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pintuan.accounts.api import router as accounts_router
from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.apps.api import router as apps_router
from pintuan.audit.api import ledger_router as ledger_check_router
from pintuan.audit.api import router as audit_router
from pintuan.auditlog.api import router as audit_log_router
from pintuan.bargains.api import router as bargains_router
from pintuan.bootstrap import build_services
from pintuan.commissions.api import router as commissions_router
from pintuan.config import Environment, Settings, get_settings
from pintuan.coupons.api import router as coupons_router
from pintuan.deals.api import router as deals_router
from pintuan.deals.images_api import router as deal_images_router
from pintuan.errors import PROBLEM_JSON, AppError
from pintuan.events.watch import watch_outbox
from pintuan.feed.api import clicks_router as feed_clicks_router
from pintuan.feed.api import router as feed_router
from pintuan.feed.serving import FeedRuntime
from pintuan.fills.api import router as fills_router
from pintuan.fulfilment.api import router as fulfilment_router
from pintuan.growth.api import router as growth_router
from pintuan.kit.dbfaults import database_unreachable
from pintuan.kit.frontcache import FrontCacheMiddleware, FrontIndex
from pintuan.kit.http import RefuseNulMiddleware, url_path
from pintuan.kit.ids import IdSequence
from pintuan.kit.limits import install_request_limits
from pintuan.kit.logs import log_request, logged_path, request_id_var
from pintuan.kit.replica import ReadYourWritesMiddleware
from pintuan.kit.security_headers import SecurityHeadersMiddleware
from pintuan.ledger.api import router as ledger_router
from pintuan.ledger.findings_api import router as findings_router
from pintuan.media.api import router as media_router
from pintuan.merchants.api import router as merchants_router
from pintuan.notifications.api import router as notifications_router
from pintuan.ops.api import router as ops_router
from pintuan.ops.directory_api import router as users_router
from pintuan.ops.metrics import record_request
from pintuan.ops.metrics import router as metrics_router
from pintuan.partners.api import links_router as partner_links_router
from pintuan.partners.api import router as partners_router
from pintuan.payments.api import router as payments_router
from pintuan.payments.queue_api import router as payment_queue_router
from pintuan.payments.refund_queue_api import router as refund_queue_router
from pintuan.payments.refunds_api import router as refunds_router
from pintuan.payments.reports_api import router as payment_reports_router
from pintuan.pickups.api import router as pickups_router
from pintuan.services import Services
from pintuan.shares.api import router as shares_router
from pintuan.shares.visitors import VisitorLinkMiddleware
from pintuan.teams.api import router as teams_router
from pintuan.teams.reports_api import router as team_reports_router
from pintuan.vouchers.api import router as vouchers_router
from pintuan.web import install_web, read_pages_router
from pintuan.web.kit.api_csrf import ApiCsrfMiddleware
from pintuan.web.kit.errors import page_error_response, wants_html
from pintuan.web.kit.i18n import LANG_COOKIE, TZ_COOKIE
from pintuan.web.kit.security import EVERY_RESPONSE, HTML_HEADERS, POLICY_EXEMPT_PATHS
from pintuan.webhooks.api import router as webhooks_router
from pintuan.worker import Worker

log = logging.getLogger("pintuan.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    run_worker: bool = False,
) -> FastAPI:
    """The application. With ``run_worker`` it also sweeps due work in-process (``serve``)."""
    settings = settings or get_settings()
    services = services or build_services(settings)
    feed = FeedRuntime(settings, services.db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(services).run(stop)) if run_worker else None
        watcher = asyncio.create_task(watch_outbox(services.db, services.reads, stop))
        feed_task = asyncio.create_task(feed.run(stop))
        replica = services.db.replica
        lag_task = asyncio.create_task(replica.watch(stop)) if replica is not None else None
        try:
            yield
        finally:
            stop.set()
            await feed_task  # writes the slates still buffered
            if task is not None:
                await task
            await watcher
            if lag_task is not None:
                await lag_task
            services.db.dispose()

    prod = settings.env is Environment.PROD
    app = FastAPI(
        title="Pintuan",
        version="0.1.0",
        summary="Social group buying: start or join a team, pay the group price.",
        lifespan=lifespan,
        # Prod keeps /openapi.json (the published contract clients build on) but not the
        # explorers, which run third-party scripts and invite trying writes against live data.
        docs_url=None if prod else "/docs",
        redoc_url=None if prod else "/redoc",
        # Pintuan's metrics are Prometheus's (/metrics) and its traces the request log's ids; the
        # framework's own OpenTelemetry looked up the global providers on every request to find
        # none configured (about a tenth of /healthz's cost in one process).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.services = services
    app.state.feed = feed
    # Routes are matched in order, one pattern at a time: the hottest go first.
    for router in (
        ops_router,
        teams_router,
        read_pages_router,
        deals_router,
        feed_router,
        feed_clicks_router,
        payments_router,
        accounts_router,
        merchants_router,
        notifications_router,
        ledger_router,
        findings_router,
        team_reports_router,
        payment_reports_router,
        refunds_router,
        users_router,
        audit_router,
        audit_log_router,
        ledger_check_router,
        shares_router,
        growth_router,
        partners_router,
        partner_links_router,
        fulfilment_router,
        vouchers_router,
        commissions_router,
        pickups_router,
        fills_router,
        coupons_router,
        bargains_router,
        metrics_router,
        apps_router,
        webhooks_router,
        deal_images_router,
        media_router,
        payment_queue_router,
        refund_queue_router,
    ):
        app.include_router(router)
    # The pages come after the API; install_web mounts every audience's router alike.
    # Added first, so innermost: kept anonymous answers skip only the routing, and every
    # middleware below sees them as it sees the handlers' own.
    app.state.front = FrontIndex(
        credential_cookies=(SESSION_COOKIE,), vary_cookies=(LANG_COOKIE, TZ_COOKIE)
    )
    app.add_middleware(FrontCacheMiddleware, index=app.state.front)
    # Its refusal carries every header the others add.
    app.add_middleware(RefuseNulMiddleware)
    install_web(app)
    _install_error_handlers(app)
    app.add_middleware(VisitorLinkMiddleware)
    app.add_middleware(
        SecurityHeadersMiddleware,
        session_cookie=SESSION_COOKIE,
        hsts=prod,
        secure_cookies=prod,
        every_response=EVERY_RESPONSE,
        html_headers=HTML_HEADERS,
        policy_exempt_paths=POLICY_EXEMPT_PATHS,
    )
    app.add_middleware(ApiCsrfMiddleware)
    install_request_limits(app, settings)
    if services.db.replica is not None:
        app.add_middleware(ReadYourWritesMiddleware, window=settings.replica_max_lag_seconds)
    app.add_middleware(RequestLogMiddleware)
    _framework_routes_last(app)
    return app


def _framework_routes_last(app: FastAPI) -> None:
    """FastAPI puts its own routes (the schema and, outside prod, the API explorers) before any
    route of ours, and a request's route is found by trying each in turn: every request paid
    about a microsecond for each of them first. They go after ours (no route of ours serves
    their paths; the tests fetch them)."""
    own = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    routes = app.router.routes
    framework = [r for r in routes if getattr(r, "path", None) in own]
    routes[:] = [r for r in routes if r not in framework] + framework


def _problem(error: AppError, request: Request) -> JSONResponse:
    return JSONResponse(
        error.problem(url_path(request.scope)),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if wants_html(request):
            return await page_error_response(request, exc)
        return _problem(exc, request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _problem(
            AppError(
                detail,
                code="validation_error",
                status=422,
                title="The request is not valid",
                extra={"errors": errors},
            ),
            request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        error = AppError(
            str(exc.detail),
            code=code,
            status=exc.status_code,
            title=code.replace("_", " ").capitalize(),
            headers=dict(exc.headers or {}),
        )
        if wants_html(request):
            return await page_error_response(request, error)
        return _problem(error, request)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to answer; nothing was written (the body is read before any work).
        log.info("client disconnected", extra={"path": logged_path(request.scope)})
        return Response(status_code=499)

    async def database_gone(request: Request, exc: Exception) -> Response:
        if not database_unreachable(exc):
            raise exc  # a bug, not an outage: the generic handler answers 500 and logs it
        log.warning("database unreachable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return _problem(
            AppError(
                "The database cannot be reached right now; nothing was changed. Retry shortly.",
                code="database_unavailable",
                status=503,
                title="Service unavailable",
                headers={"Retry-After": "1"},
            ),
            request,
        )

    # Handled here rather than by the catch-all below, so that middleware sees the 503 it is.
    for error in (psycopg.OperationalError, psycopg.InterfaceError, sa.DBAPIError):
        app.add_exception_handler(error, database_gone)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": logged_path(request.scope)})
        return _problem(
            AppError(
                "Something went wrong on our side; it has been logged.",
                code="internal_error",
                status=500,
                title="Internal error",
            ),
            request,
        )


def _field_error(error: Any) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ())]
    if location and location[0] in ("body", "query", "path", "header"):
        where, location = location[0], location[1:]
    else:
        where = "body"
    field = ".".join(location) or where
    return {
        "field": field,
        "in": where,
        "message": str(error.get("msg", "is not valid")),
        "type": str(error.get("type", "value_error")),
    }


# Request ids need to be unique, not unguessable: a sequence's cost a tenth of a random id's.
_REQUEST_IDS = IdSequence("req")


class RequestLogMiddleware:
    """Gives each request an id (``X-Request-ID``, kept when the client sent a sane one) and
    logs one structured line when it ends. Pure ASGI, so it adds no task hop per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                if 0 < len(incoming) <= 64 and incoming.isprintable():
                    request_id = incoming
                break
        request_id = request_id or _REQUEST_IDS.next()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            log_request(
                log,
                request_id,
                scope["method"],
                logged_path(scope),
                status,
                round(elapsed * 1000, 2),
            )
            record_request(scope, status, elapsed)
            request_id_var.reset(token)
