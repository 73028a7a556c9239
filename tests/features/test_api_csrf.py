"""API writes authenticated by the session cookie must come from this site's own pages: a CSRF
token or a same-origin sign from the browser. Bearer tokens are unaffected."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.accounts.models import ApiToken
from pintuan.services import Services
from tests.factories import PASSWORD, Account, create_account
from tests.features.test_web_foundation import page_token


def token_count(services: Services) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(ApiToken))))


def logged_in_browser(client: TestClient, services: Services) -> Account:
    account = create_account(services)
    login = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 201, login.text
    return account


def create_token(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/v1/me/tokens", json={"name": "from a page"}, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"X-CSRF-Token": "0" * 64},
    ],
    ids=["no-headers", "cross-site", "null", "lookalike", "fetch-cross", "fetch-same-site", "bad"],
)
def test_a_cookie_authenticated_write_without_proof_of_origin_is_refused(
    client: TestClient, services: Services, headers: dict[str, str]
) -> None:
    logged_in_browser(client, services)
    before = token_count(services)

    response = create_token(client, headers)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "csrf_failed"
    assert token_count(services) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver"},
        {"Origin": "http://127.0.0.1:8000"},  # the configured base_url
        {"Sec-Fetch-Site": "same-origin"},
    ],
    ids=["origin", "base-url", "fetch-same-origin"],
)
def test_a_cookie_authenticated_write_from_our_own_origin_is_accepted(
    client: TestClient, services: Services, headers: dict[str, str]
) -> None:
    logged_in_browser(client, services)

    response = create_token(client, headers)

    assert response.status_code == 201, response.text


def test_the_pages_csrf_token_in_a_header_is_accepted(
    client: TestClient, services: Services
) -> None:
    logged_in_browser(client, services)
    token = page_token(client, "/account")

    response = create_token(client, {"X-CSRF-Token": token})

    assert response.status_code == 201, response.text


def test_every_unsafe_method_is_guarded(client: TestClient, services: Services) -> None:
    logged_in_browser(client, services)
    cross_site = {"Origin": "https://evil.example"}

    patched = client.patch("/v1/me", json={"display_name": "Mallory"}, headers=cross_site)
    logged_out = client.delete("/v1/sessions/current", headers=cross_site)
    me = client.get("/v1/me", headers=cross_site)

    assert patched.status_code == logged_out.status_code == 403
    assert me.status_code == 200  # reads are not guarded, and the session still works
    assert me.json()["display_name"] != "Mallory"


def test_a_bearer_token_needs_no_origin_even_with_a_session_cookie(
    client: TestClient, services: Services
) -> None:
    account = logged_in_browser(client, services)

    response = create_token(client, {**account.headers, "Origin": "https://elsewhere.example"})

    assert response.status_code == 201, response.text


def test_a_write_without_the_session_cookie_is_not_asked_for_proof(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    body = {"email": account.email, "password": PASSWORD, "name": "cli"}

    response = client.post("/v1/tokens", json=body, headers={"Origin": "https://cli.example"})

    assert response.status_code == 201, response.text


def test_logging_in_again_from_a_browser_with_a_session_is_not_asked_for_proof(
    client: TestClient, services: Services
) -> None:
    logged_in_browser(client, services)
    other = create_account(services)

    again = client.post("/v1/sessions", json={"email": other.email, "password": PASSWORD})
    me = client.get("/v1/me")

    assert again.status_code == 201, again.text
    assert me.json()["id"] == other.user_id
