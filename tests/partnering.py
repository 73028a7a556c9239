"""Outside apps for the partner API's tests: apps, their installations on a merchant, and the
one fixture through which a test's requests act as an app.

A grant is stored as the OAuth server stores the access tokens it issues (hashed, with the
app, the shop, the person and the scopes): ``Authorization: Bearer <key>`` then goes through
the real token lookup, scope check and per-app rate count. The OAuth flows that issue such
tokens are proven in test_oauth.py; here the key is chosen by the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.apps.models import App, AppInstallation
from pintuan.config import Settings
from pintuan.domain.apps import AppPrincipal, AppStatus, Scope
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.apps_support import store_access_token

_counter = itertools.count(1)
ALL = frozenset(str(s) for s in Scope)


def create_app_record(
    db: Database, owner_id: str, *, status: AppStatus = AppStatus.APPROVED, name: str = ""
) -> str:
    """An app owned by ``owner_id``, in ``status``; its id."""
    app_id = new_id("app")
    n = next(_counter)

    def work(session: Any) -> None:
        now = utc_now()
        session.add(
            App(
                id=app_id,
                owner_user_id=owner_id,
                name=name or f"Partner {n}",
                homepage="https://partner.example",
                redirect_uris=["https://partner.example/callback"],
                scopes=sorted(ALL),
                webhook_url=None,
                webhook_events=[],
                status=status.value,
                client_id=f"client_{app_id}",
                created_at=now,
                updated_at=now,
            )
        )

    db.run_sync(work)
    return app_id


def install_app(
    db: Database, app_id: str, merchant_id: str, staff_id: str, scopes: Iterable[str] = ALL
) -> str:
    """The merchant's staff installed the app on their shop; the installation's id."""
    installation_id = new_id("ins")

    def work(session: Any) -> None:
        now = utc_now()
        session.add(
            AppInstallation(
                id=installation_id,
                app_id=app_id,
                merchant_id=merchant_id,
                installed_by=staff_id,
                scopes=sorted(scopes),
                created_at=now,
                updated_at=now,
            )
        )

    db.run_sync(work)
    return installation_id


class _Grants(dict[str, AppPrincipal]):
    """Keys the tests choose, each stored as a live access token of its principal's app."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    def __setitem__(self, key: str, principal: AppPrincipal) -> None:
        # Several servers of one test may be given the same key: it is one token.
        store_access_token(self.db, key, principal)
        super().__setitem__(key, principal)


def acting_as_apps(app: FastAPI) -> dict[str, AppPrincipal]:
    """Grants on ``app``: setting ``[key] = principal`` makes ``Bearer <key>`` that app's token."""
    services: Services = app.state.services
    return _Grants(services.db)


@dataclass
class Partner:
    """The application under test, and a way to act as any app on it."""

    app: FastAPI
    client: TestClient
    services: Services
    grants: dict[str, AppPrincipal] = field(default_factory=dict)

    def grant(
        self,
        app_id: str,
        *,
        merchant_id: str | None = None,
        user_id: str | None = None,
        scopes: Iterable[str] = ALL,
    ) -> dict[str, str]:
        """Headers that act as ``app_id`` with these scopes (for the shop ``merchant_id``)."""
        key = f"key{next(_counter)}"
        self.grants[key] = AppPrincipal(app_id, frozenset(scopes), user_id, merchant_id)
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def partner(settings: Settings, services: Services) -> Iterator[Partner]:
    app = create_app(settings, services)
    grants = acting_as_apps(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Partner(app, client, services, grants)


def offer_body(**overrides: Any) -> dict[str, Any]:
    """A valid offer in USD: a screening sold until it starts; override any field."""
    now = utc_now()
    # The same instant however often it is called (on one day): offers built apart are equal.
    screening = (now + timedelta(days=3)).replace(hour=19, minute=30, second=0, microsecond=0)
    body: dict[str, Any] = {
        "title": "Dune: Part Three, 19:30, hall 2",
        "description": "Two hours forty, in English with subtitles.",
        "media_urls": [],
        "vertical": "movies",
        "category": "cinema",
        "list_price": {"amount": 1600, "currency": "USD"},
        "group_price": {"amount": 1100, "currency": "USD"},
        "team_size": 3,
        "team_window_minutes": 120,
        "stock": 40,
        "per_user_limit": 2,
        "ends_at": _z(screening),
        "valid_from": _z(screening),
        "valid_until": _z(screening + timedelta(hours=3)),
        "location": {
            "name": "Lumière Cinema",
            "address": "1 Market Street",
            "lat": 37.7936,
            "lon": -122.3958,
        },
    }
    body.update(overrides)
    return body


def _z(instant: Any) -> str:
    return str(instant.isoformat().replace("+00:00", "Z"))
