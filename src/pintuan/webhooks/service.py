"""Use cases of webhook endpoints: an app registers, changes and removes its endpoints, reads
their delivery log, replays a delivery and rotates a signing secret. Services never commit.

URLs are checked by the caller before the transaction (``addresses.check_url``: resolving a host
is network I/O, which does not belong inside a transaction); ``ensure_manifest_endpoint`` is the
exception, since the app's review calls it inside its own, and checks what it stores itself.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.apps.models import App
from pintuan.config import Environment
from pintuan.domain.webhooks import EVENT_TYPES, DeliveryStatus, event_types_named
from pintuan.errors import Conflict, NotFound, field_error
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from pintuan.webhooks.addresses import check_url
from pintuan.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MAX_ENDPOINTS_PER_APP = 20


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def checked_events(events: Sequence[str]) -> list[str]:
    """The event types, each known and named once, in a stable order (a family like
    ``offer.*`` stands for each of its types); refused as invalid input on the ``events`` field
    otherwise."""
    unknown = sorted(name for name in set(events) if not event_types_named(name))
    if unknown:
        raise field_error(
            "events",
            f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}",
            code="unknown_event_type",
        )
    if not events:
        raise field_error("events", "name at least one event type", code="unknown_event_type")
    return sorted(set().union(*(event_types_named(name) for name in events)))


def _lock_app(session: Session, app_id: str) -> None:
    """Take the app's row lock (PostgreSQL; SQLite's writes are serial already), so that two
    changes of its endpoints, the API's and the worker's setting up the manifest's, are checked
    one after the other: an app listens at an address through one endpoint and one secret."""
    session.execute(select(App.id).where(App.id == app_id).with_for_update())


def _at_url(session: Session, app_id: str, url: str) -> WebhookEndpoint | None:
    return session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.app_id == app_id, WebhookEndpoint.url == url)
        .order_by(WebhookEndpoint.created_at)
        .limit(1)
    )


def _claim_url(session: Session, app_id: str, url: str) -> None:
    """Refuse ``url`` for a new or moved endpoint when the app already listens there, with a
    conflict naming that endpoint; under the app's lock, so racing claims are checked in turn."""
    _lock_app(session, app_id)
    existing = _at_url(session, app_id, url)
    if existing is not None:
        raise Conflict(
            f"This app already listens at {existing.url} through endpoint {existing.id}; "
            "change that endpoint's events instead of registering the address twice.",
            code="webhook_endpoint_exists",
            extra={"endpoint_id": existing.id},
        )


def create_endpoint(
    session: Session, app_id: str, url: str, events: Sequence[str]
) -> WebhookEndpoint:
    """Register an endpoint of ``app_id`` for ``events`` with a new signing secret (``url``
    already checked by the caller). An address the app already listens at is a conflict that
    names the endpoint there."""
    wanted = checked_events(events)
    _claim_url(session, app_id, url)
    count = len(
        session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.app_id == app_id)).all()
    )
    if count >= MAX_ENDPOINTS_PER_APP:
        raise Conflict(
            f"An app may have at most {MAX_ENDPOINTS_PER_APP} webhook endpoints.",
            code="too_many_webhook_endpoints",
        )
    now = utc_now()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        app_id=app_id,
        url=url,
        events=wanted,
        enabled=True,
        disabled_reason=None,
        from_manifest=False,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_until=None,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def list_endpoints(session: Session, app_id: str) -> list[WebhookEndpoint]:
    """The app's endpoints, oldest first (an app has a handful)."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.app_id == app_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, app_id: str, endpoint_id: str) -> WebhookEndpoint:
    """One endpoint of the app; another app's looks as if it did not exist."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.app_id != app_id:
        raise NotFound(f"No webhook endpoint {endpoint_id}.", code="webhook_endpoint_not_found")
    return endpoint


def update_endpoint(
    session: Session,
    app_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL (checked by the caller), events or whether it is enabled.
    Enabling one the worker disabled resumes its pending deliveries, oldest first."""
    endpoint = get_endpoint(session, app_id, endpoint_id)
    if events is not None:
        endpoint.events = checked_events(events)
    if url is not None and url != endpoint.url:
        _claim_url(session, app_id, url)
        endpoint.url = url
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = None if enabled else "app"
        # Its waiting deliveries go out now rather than at the end of a long backoff; while it
        # is disabled they are not due at all (the worker's probe does not see them).
        now = utc_now()
        for delivery in session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
        ):
            delivery.next_attempt_at = now if enabled else None
    endpoint.updated_at = utc_now()
    session.flush()
    return endpoint


def delete_endpoint(session: Session, app_id: str, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their log."""
    endpoint = get_endpoint(session, app_id, endpoint_id)
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    for attempt in session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
    ):
        session.delete(attempt)
    for delivery in session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    ):
        session.delete(delivery)
    session.flush()
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session, app_id: str, endpoint_id: str, overlap: timedelta
) -> WebhookEndpoint:
    """Give the endpoint a new signing secret; the old one signs alongside it for ``overlap``
    (each request then carries both signatures), so receivers can switch without losing any."""
    endpoint = get_endpoint(session, app_id, endpoint_id)
    now = utc_now()
    endpoint.previous_secret = endpoint.secret if overlap > timedelta(0) else None
    endpoint.previous_secret_until = now + overlap if overlap > timedelta(0) else None
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint


@dataclass(frozen=True, slots=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]

    @property
    def id(self) -> str:
        return self.delivery.id


def list_deliveries(
    session: Session, app_id: str, endpoint_id: str, cursor_id: str | None, limit: int
) -> list[LoggedDelivery]:
    """The endpoint's delivery log, newest first, each with its attempts (``limit + 1`` rows,
    for the page and whether there is a next one)."""
    endpoint = get_endpoint(session, app_id, endpoint_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if cursor_id is not None:
        query = query.where(WebhookDelivery.id < cursor_id)
    deliveries = list(session.scalars(query))
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.number)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [LoggedDelivery(d, attempts[d.id]) for d in deliveries]


def replay_delivery(
    session: Session, app_id: str, endpoint_id: str, delivery_id: str
) -> LoggedDelivery:
    """Send a delivery again, whatever became of it: a new delivery of the same message (same
    ``webhook-id`` and body, freshly signed), queued after the endpoint's waiting ones."""
    endpoint = get_endpoint(session, app_id, endpoint_id)
    original = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if original is None:
        raise NotFound(f"No delivery {delivery_id}.", code="webhook_delivery_not_found")
    now = utc_now()
    replay = WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint.id,
        message_id=original.message_id,
        event_type=original.event_type,
        outbox_event_id=original.outbox_event_id,
        body=original.body,
        replay_of=original.id,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now if endpoint.enabled else None,
        lease_until=None,
        last_status_code=None,
        last_error=None,
        created_at=now,
        updated_at=now,
        delivered_at=None,
    )
    session.add(replay)
    session.flush()
    return LoggedDelivery(replay, [])


def ensure_manifest_endpoint(
    session: Session, app: App, *, env: Environment
) -> WebhookEndpoint | None:
    """Make the app's manifest endpoint match its manifest (``webhook_url``, ``webhook_events``):
    create it, update its URL and events, or remove it when the manifest names no URL or no
    events. Its secret is kept across updates. Call it when an app is approved (and whenever its
    manifest changes); the URL is checked against ``env``'s rules here."""
    _lock_app(session, app.id)
    current = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.app_id == app.id, WebhookEndpoint.from_manifest.is_(True)
        )
    )
    if not app.webhook_url or not app.webhook_events:
        if current is not None:
            delete_endpoint(session, app.id, current.id)
        return None
    check_url(app.webhook_url, env)
    events = checked_events(app.webhook_events)
    now = utc_now()
    there = _at_url(session, app.id, app.webhook_url)
    if there is not None and there is not current:
        # The app already listens at that address through the API: that endpoint (and its
        # secret, which the app holds) becomes the manifest's, rather than a second one.
        if current is not None:
            delete_endpoint(session, app.id, current.id)
        there.from_manifest = True
        there.events = sorted(set(there.events) | set(events))
        there.updated_at = now
        session.flush()
        return there
    if current is None:
        current = WebhookEndpoint(
            id=new_id("whe"),
            app_id=app.id,
            url=app.webhook_url,
            events=events,
            enabled=True,
            disabled_reason=None,
            from_manifest=True,
            secret=new_secret(),
            previous_secret=None,
            previous_secret_until=None,
            created_at=now,
            updated_at=now,
        )
        session.add(current)
    elif current.url != app.webhook_url or current.events != events:
        current.url = app.webhook_url
        current.events = events
        current.updated_at = now
    session.flush()
    return current


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, and the previous one during its
    overlap after a rotation."""
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until is not None
        and endpoint.previous_secret_until > now
    ):
        found.append(endpoint.previous_secret)
    return found


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: WebhookEndpoint
    deliveries: list[LoggedDelivery]


@dataclass(frozen=True, slots=True)
class AppWebhooks:
    app: App
    endpoints: list[EndpointReport]


def developer_webhooks(
    session: Session, owner_user_id: str, per_endpoint: int
) -> list[AppWebhooks]:
    """The apps a developer owns, each with its endpoints and their latest deliveries (for the
    developer's console page)."""
    apps = list(
        session.scalars(select(App).where(App.owner_user_id == owner_user_id).order_by(App.id))
    )
    found = []
    for app in apps:
        reports = [
            EndpointReport(
                e, list_deliveries(session, app.id, e.id, None, per_endpoint)[:per_endpoint]
            )
            for e in list_endpoints(session, app.id)
        ]
        found.append(AppWebhooks(app, reports))
    return found
