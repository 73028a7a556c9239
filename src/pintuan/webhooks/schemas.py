"""Request and response models of webhook endpoints and their delivery log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pintuan.webhooks.models import WebhookAttempt, WebhookEndpoint
from pintuan.webhooks.service import LoggedDelivery

EventList = list[str]


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=500, description="Where events are POSTed.")
    events: EventList = Field(
        min_length=1, max_length=20, description="Event types to hear, e.g. team.succeeded."
    )


class EndpointChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=500)
    events: EventList | None = Field(default=None, min_length=1, max_length=20)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="failing: turned off after a delivery failed for the whole retry window; "
        "app: turned off by the app."
    )
    from_manifest: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation also signs each request."
    )

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=e.id,
            url=e.url,
            events=e.events,
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            from_manifest=e.from_manifest,
            created_at=e.created_at,
            updated_at=e.updated_at,
            previous_secret_expires_at=e.previous_secret_until if e.previous_secret else None,
        )


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_…), to verify what arrives.")

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointWithSecret:
        return cls(**EndpointOut.of(e).model_dump(), secret=e.secret)


class EndpointList(BaseModel):
    data: list[EndpointOut]


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(
            number=a.number,
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
        )


class DeliveryOut(BaseModel):
    id: str
    message_id: str = Field(description="The webhook-id header: the same for retries and replays.")
    event_type: str
    status: str = Field(description="pending, delivered or failed (given up).")
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    replay_of: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, logged: LoggedDelivery) -> DeliveryOut:
        d = logged.delivery
        return cls(
            id=d.id,
            message_id=d.message_id,
            event_type=d.event_type,
            status=d.status,
            attempt_count=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            replay_of=d.replay_of,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempts=[AttemptOut.of(a) for a in logged.attempts],
        )
