"""Register, approve and authorise apps through the real endpoints, for any test that needs an
app's token: client credentials, or authorization code with PKCE for a merchant's shop or a
shopper's own account. Each function says what it makes and returns it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient
from httpx import Response

from pintuan.apps.models import OAuthToken
from pintuan.apps.service import digest
from pintuan.domain.apps import AppPrincipal
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from tests.factories import PASSWORD, Account

REDIRECT_URI = "http://127.0.0.1:9/callback"
ALL_SCOPES = "offers:read offers:write orders:read vouchers:redeem webhooks:manage profile"


@dataclass(frozen=True)
class RegisteredApp:
    id: str
    client_id: str
    client_secret: str
    redirect_uri: str
    developer: Account

    @property
    def basic(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    scope: str
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def manifest(**overrides: Any) -> dict[str, Any]:
    """A valid manifest asking for every scope, with a loopback redirect URI (dev and test)."""
    body: dict[str, Any] = {
        "name": "Cinema Partner",
        "homepage": "https://cinema.example.com",
        "redirect_uris": [REDIRECT_URI],
        "scopes": ALL_SCOPES.split(),
        "webhook_url": "http://127.0.0.1:9/webhooks",
        "webhook_events": ["team.succeeded", "offer.*"],
    }
    body.update(overrides)
    return body


def register_app(client: TestClient, developer: Account, **overrides: Any) -> RegisteredApp:
    """``POST /v1/apps`` as ``developer``; the app is pending."""
    response = client.post("/v1/apps", json=manifest(**overrides), headers=developer.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return RegisteredApp(
        body["id"], body["client_id"], body["client_secret"], body["redirect_uris"][0], developer
    )


def approve_app(client: TestClient, operator: Account, app: RegisteredApp) -> None:
    response = client.post(f"/v1/apps/{app.id}/approve", headers=operator.headers)
    assert response.status_code == 200, response.text


def approved_app(
    client: TestClient, developer: Account, operator: Account, **overrides: Any
) -> RegisteredApp:
    """A registered app an operator approved: ready to get tokens."""
    app = register_app(client, developer, **overrides)
    approve_app(client, operator, app)
    return app


def token_request(client: TestClient, app: RegisteredApp, **form: str) -> Response:
    """``POST /oauth/token`` with the app's client credentials (HTTP Basic)."""
    return client.post("/oauth/token", data=form, auth=app.basic)


def tokens_of(response: Response) -> Tokens:
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(body["access_token"], body.get("refresh_token"), body.get("scope", ""), body)


def client_credentials(client: TestClient, app: RegisteredApp, scope: str | None = None) -> Tokens:
    """A token for the app acting as itself."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    return tokens_of(token_request(client, app, **form))


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_in_browser(client: TestClient, person: Account) -> TestClient:
    """A browser of its own, signed in as ``person`` (the consent page is a page)."""
    browser = TestClient(client.app, raise_server_exceptions=False)
    answer = browser.post("/v1/sessions", json={"email": person.email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return browser


def authorize_query(
    app: RegisteredApp, challenge: str, *, scope: str = ALL_SCOPES, state: str = "xyz", **extra: str
) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    query.update(extra)
    return query


def consent(
    browser: TestClient,
    query: dict[str, str],
    *,
    merchant_id: str | None = None,
    decision: str = "allow",
) -> Response:
    """Open the consent page and answer it; returns the redirect to the app (302/303)."""
    page = browser.get("/oauth/authorize?" + urlencode(query), headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    form_key = re.search(r'name="form_key" value="([^"]+)"', page.text)
    assert csrf, "the consent page has no form"
    assert form_key, "the consent form has no form_key"
    form = {**query, "csrf_token": csrf.group(1), "form_key": form_key.group(1)}
    form["decision"] = decision
    if merchant_id is not None:
        form["grant_for"] = merchant_id
    return browser.post(
        "/oauth/authorize", data=form, headers={"accept": "text/html"}, follow_redirects=False
    )


def code_from(answer: Response) -> str:
    assert answer.status_code in (302, 303), answer.text
    params = parse_qs(urlsplit(answer.headers["location"]).query)
    assert "code" in params, answer.headers["location"]
    return params["code"][0]


def authorization_code(
    client: TestClient,
    app: RegisteredApp,
    person: Account,
    *,
    merchant_id: str | None = None,
    scope: str = ALL_SCOPES,
) -> Tokens:
    """Tokens for ``person`` through the consent page and PKCE: installed on ``merchant_id``'s
    shop when given (``person`` must be its staff), else their own account as a shopper."""
    verifier, challenge = pkce_pair()
    browser = signed_in_browser(client, person)
    answer = consent(browser, authorize_query(app, challenge, scope=scope), merchant_id=merchant_id)
    code = code_from(answer)
    return tokens_of(
        token_request(
            client,
            app,
            grant_type="authorization_code",
            code=code,
            redirect_uri=app.redirect_uri,
            code_verifier=verifier,
        )
    )


def refresh(client: TestClient, app: RegisteredApp, refresh_token: str) -> Response:
    return token_request(client, app, grant_type="refresh_token", refresh_token=refresh_token)


def store_access_token(db: Database, token: str, principal: AppPrincipal) -> None:
    """Store ``token`` as a live access token of ``principal`` (its app, person, shop and
    scopes), hashed as the OAuth server stores the ones it issues, so that a request bearing it
    goes through the real lookup. Storing the same token twice keeps one."""
    now = utc_now()

    def work(session: Any) -> None:
        if session.query(OAuthToken).filter_by(access_hash=digest(token)).first() is not None:
            return
        session.add(
            OAuthToken(
                id=new_id("tok"),
                app_id=principal.app_id,
                user_id=principal.user_id,
                merchant_id=principal.merchant_id,
                scope=" ".join(sorted(principal.scopes)),
                access_hash=digest(token),
                refresh_hash=None,
                code_id=None,
                issued_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )

    db.run_sync(work)
