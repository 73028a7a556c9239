"""Request and response bodies of the apps API and the OAuth discovery document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pintuan.apps.models import App, AppSecret
from pintuan.domain.apps import Scope
from pintuan.kit.schemas import StrictModel

Url = Annotated[str, Field(min_length=1, max_length=500)]


class AppIn(StrictModel):
    """An app's manifest."""

    name: Annotated[str, Field(min_length=1, max_length=120)]
    homepage: Url
    redirect_uris: Annotated[list[Url], Field(min_length=1, max_length=10)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    webhook_url: Url | None = None
    webhook_events: Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=50)] = []


class SecretOut(BaseModel):
    id: str
    hint: str
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, row: AppSecret) -> SecretOut:
        return cls(id=row.id, hint=row.hint, created_at=row.created_at, expires_at=row.expires_at)


class AppOut(BaseModel):
    id: str
    name: str
    homepage: str
    redirect_uris: list[str]
    scopes: list[str]
    webhook_url: str | None
    webhook_events: list[str]
    status: str
    client_id: str
    owner_user_id: str
    created_at: datetime
    reviewed_at: datetime | None
    # The developer's own view lists the secrets that still work (hints only).
    secrets: list[SecretOut] | None = None

    @classmethod
    def of(cls, app: App, secrets: list[AppSecret] | None = None) -> AppOut:
        return cls(
            id=app.id,
            name=app.name,
            homepage=app.homepage,
            redirect_uris=list(app.redirect_uris),
            scopes=list(app.scopes),
            webhook_url=app.webhook_url,
            webhook_events=list(app.webhook_events),
            status=app.status,
            client_id=app.client_id,
            owner_user_id=app.owner_user_id,
            created_at=app.created_at,
            reviewed_at=app.reviewed_at,
            secrets=[SecretOut.of(s) for s in secrets] if secrets is not None else None,
        )


class RegisteredAppOut(AppOut):
    """The answer to registering: the only time the first client secret is shown."""

    client_secret: str


class NewSecretOut(SecretOut):
    """A new client secret, shown this once; the older ones keep working until they expire."""

    client_secret: str


class PartnerMeOut(BaseModel):
    """Who an app's token acts for. ``subject`` is the person's id for this app alone; the
    e-mail address and name only with the ``profile`` scope."""

    app_id: str
    scopes: list[str]
    merchant_id: str | None
    subject: str | None
    email: str | None = None
    display_name: str | None = None
