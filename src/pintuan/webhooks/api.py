"""HTTP endpoints of webhook endpoints: an app (its access token with ``webhooks:manage``)
registers where it hears events, reads the delivery log, replays and rotates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.apps.dependencies import require_scope
from pintuan.domain.apps import AppPrincipal, Scope
from pintuan.errors import InvalidInput
from pintuan.idempotency.http import HEADER, MAX_KEY_LENGTH, request_fingerprint
from pintuan.idempotency.runner import KeyClaim, run_once
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.routing import Router
from pintuan.services import Services, ServicesDep
from pintuan.webhooks import service
from pintuan.webhooks.addresses import check_url
from pintuan.webhooks.schemas import (
    DeliveryOut,
    EndpointChange,
    EndpointList,
    EndpointOut,
    EndpointWithSecret,
    NewEndpoint,
)

router = Router(prefix="/v1/webhook_endpoints", tags=["webhooks"])

ManagingApp = Annotated[AppPrincipal, Depends(require_scope(Scope.WEBHOOKS_MANAGE))]


async def _checked_url(services: Services, url: str) -> None:
    # Resolving a host (production's check) is network I/O: off the event loop, before any
    # transaction opens.
    await anyio.to_thread.run_sync(check_url, url, services.settings.env)


async def _write(
    request: Request,
    services: Services,
    app: AppPrincipal,
    work: Callable[[Session], BaseModel],
    *,
    status_code: int = 200,
    keep_answer: bool = True,
) -> Response:
    """One transaction, once per ``Idempotency-Key`` of this app (an app's keys are its own)."""
    claim = None
    key = request.headers.get(HEADER)
    if key is not None:
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID.",
                code="invalid_idempotency_key",
            )
        path = request.url.path
        claim = KeyClaim(
            scope=f"app:{app.app_id}",
            key=key,
            fingerprint=request_fingerprint(request.method, path, await request.body()),
            instance=path,
        )
    answer = await run_once(
        services,
        claim,
        lambda session: work(session).model_dump_json(),
        status_code=status_code,
        keep_answer=keep_answer,
    )
    stored = answer.response
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"} if answer.replayed else None,
    )


@router.post("", status_code=201, response_model=EndpointWithSecret)
async def create_endpoint(
    body: NewEndpoint, request: Request, app: ManagingApp, services: ServicesDep
) -> Response:
    """Register an endpoint for event types; the answer holds its signing secret."""
    await _checked_url(services, body.url)

    def work(session: Session) -> EndpointWithSecret:
        created = service.create_endpoint(session, app.app_id, body.url, body.events)
        return EndpointWithSecret.of(created)

    # The answer holds a secret: a repeat of the key is refused rather than shown it again.
    return await _write(request, services, app, work, status_code=201, keep_answer=False)


@router.get("", response_model=EndpointList)
async def list_endpoints(app: ManagingApp, services: ServicesDep) -> EndpointList:
    """The app's endpoints (without their secrets)."""
    rows = await services.db.read(service.list_endpoints, app.app_id)
    return EndpointList(data=[EndpointOut.of(e) for e in rows])


@router.get("/{endpoint_id}", response_model=EndpointWithSecret)
async def get_endpoint(
    endpoint_id: str, app: ManagingApp, services: ServicesDep
) -> EndpointWithSecret:
    """One endpoint with its signing secret (the manifest's endpoint is read this way)."""
    found = await services.db.read(service.get_endpoint, app.app_id, endpoint_id)
    return EndpointWithSecret.of(found)


@router.patch("/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(
    endpoint_id: str, body: EndpointChange, app: ManagingApp, services: ServicesDep
) -> EndpointOut:
    """Change the URL or events, or turn the endpoint off and on (on again resumes its waiting
    deliveries, oldest first)."""
    if body.url is not None:
        await _checked_url(services, body.url)
    changed = await services.db.run(
        lambda s: service.update_endpoint(
            s, app.app_id, endpoint_id, url=body.url, events=body.events, enabled=body.enabled
        )
    )
    return EndpointOut.of(changed)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, app: ManagingApp, services: ServicesDep) -> Response:
    """Remove the endpoint, its waiting deliveries and its log."""
    await services.db.run(service.delete_endpoint, app.app_id, endpoint_id)
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    endpoint_id: str,
    app: ManagingApp,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[DeliveryOut]:
    """The delivery log, newest first: event type, status, attempts with their status codes
    and timings, and when the next attempt is due."""
    cursor_id = decode_cursor(cursor) if cursor else None
    rows = await services.db.read(
        lambda s: service.list_deliveries(s, app.app_id, endpoint_id, cursor_id, limit)
    )
    return page_of(rows, limit, DeliveryOut.of)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay", status_code=201, response_model=DeliveryOut
)
async def replay_delivery(
    endpoint_id: str, delivery_id: str, request: Request, app: ManagingApp, services: ServicesDep
) -> Response:
    """Send a delivery again: the same message (``webhook-id`` and body), freshly signed,
    after the endpoint's waiting deliveries."""

    def work(session: Session) -> DeliveryOut:
        replay = service.replay_delivery(session, app.app_id, endpoint_id, delivery_id)
        return DeliveryOut.of(replay)

    return await _write(request, services, app, work, status_code=201)


@router.post("/{endpoint_id}/rotate_secret", response_model=EndpointWithSecret)
async def rotate_secret(
    endpoint_id: str, request: Request, app: ManagingApp, services: ServicesDep
) -> Response:
    """A new signing secret; the old one keeps signing alongside it for
    ``PINTUAN_WEBHOOK_SECRET_OVERLAP_HOURS``."""
    overlap = timedelta(hours=services.settings.webhook_secret_overlap_hours)

    def work(session: Session) -> EndpointWithSecret:
        rotated = service.rotate_secret(session, app.app_id, endpoint_id, overlap)
        return EndpointWithSecret.of(rotated)

    return await _write(request, services, app, work, keep_answer=False)
