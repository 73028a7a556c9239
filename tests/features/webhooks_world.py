"""Builders for the webhook tests: partner apps, their installations, and an app's access.

``app_token`` is the one place the tests authenticate as an app: it stores an access token for
the app the way the OAuth server stores the ones it issues (hashed, with its scopes and expiry),
so every request goes through the real token lookup, scope check and rate count. The OAuth
flows themselves are proven in test_oauth.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.apps.models import App, AppInstallation
from pintuan.config import Settings
from pintuan.domain.apps import AppPrincipal, AppStatus
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from tests.apps_support import store_access_token
from tests.factories import Account

AppHeaders = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class PartnerApp:
    id: str
    owner: Account


def create_partner_app(
    services: Services,
    owner: Account,
    *,
    installed_on: tuple[Merchant, ...] = (),
    status: AppStatus = AppStatus.APPROVED,
    webhook_url: str | None = None,
    webhook_events: tuple[str, ...] = (),
) -> PartnerApp:
    """An app of ``owner`` in ``status``, installed on each of ``installed_on``."""
    now = utc_now()

    def work(session: Any) -> PartnerApp:
        app = App(
            id=new_id("app"),
            owner_user_id=owner.user_id,
            name="Cinema Partner",
            homepage="https://cinema.example",
            redirect_uris=["https://cinema.example/callback"],
            scopes=["webhooks:manage"],
            webhook_url=webhook_url,
            webhook_events=list(webhook_events),
            status=status.value,
            client_id=new_id("cid"),
            created_at=now,
            updated_at=now,
        )
        session.add(app)
        session.flush()
        for merchant in installed_on:
            session.add(
                AppInstallation(
                    id=new_id("ins"),
                    app_id=app.id,
                    merchant_id=merchant.id,
                    installed_by=owner.user_id,
                    scopes=["webhooks:manage"],
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        return PartnerApp(app.id, owner)

    return services.db.run_sync(work)


def set_app(services: Services, app_id: str, **values: Any) -> None:
    def work(session: Any) -> None:
        app = session.get(App, app_id)
        for name, value in values.items():
            setattr(app, name, value)

    services.db.run_sync(work)


def revoke_installations(services: Services, app_id: str) -> None:
    def work(session: Any) -> None:
        for installation in session.query(AppInstallation).filter_by(app_id=app_id):
            installation.revoked_at = utc_now()

    services.db.run_sync(work)


def app_token(
    services: Services,
    app_id: str,
    scopes: tuple[str, ...] = ("webhooks:manage",),
    *,
    merchant_id: str | None = None,
) -> str:
    """A live access token of ``app_id`` with ``scopes``, stored as the OAuth server stores one."""
    token = f"pta_{secrets.token_urlsafe(32)}"
    store_access_token(
        services.db,
        token,
        AppPrincipal(app_id=app_id, scopes=frozenset(scopes), merchant_id=merchant_id),
    )
    return token


@contextmanager
def serving_apps(settings: Settings, services: Services) -> Iterator[tuple[TestClient, AppHeaders]]:
    """A client of the API and ``headers(app_id, scopes=...)``: what a request of that app with
    those scopes carries."""
    application = create_app(settings, services)

    def headers(app_id: str, scopes: tuple[str, ...] = ("webhooks:manage",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {app_token(services, app_id, scopes)}"}

    with TestClient(application, raise_server_exceptions=False) as client:
        yield client, headers


@pytest.fixture
def app_client(settings: Settings, services: Services) -> Iterator[tuple[TestClient, AppHeaders]]:
    with serving_apps(settings, services) as served:
        yield served
