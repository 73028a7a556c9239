"""Abuse limits: request bodies, share visits, posters, password hashing, log-in delays and the
client address behind trusted proxies."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.accounts.models import User
from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.kit.http import TrustedProxies
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.shares.models import ShareVisit
from tests.conftest import make_settings
from tests.factories import PASSWORD, create_account, create_deal, create_merchant

SIGNUP = {"email": "mei@example.com", "password": "a long enough secret", "display_name": "Mei"}


def users(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(User)))


@pytest.fixture
def limited(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    settings = make_settings(
        database_url,
        login_attempts_per_account=3,
        login_delay_seconds=1,
        login_delay_max_seconds=8,
        share_visits_per_minute=5,
        poster_renders_per_minute=3,
        trusted_proxies=["10.0.0.0/8"],
    )
    services = build_services(settings)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client, services
    services.db.dispose()


# ---------------------------------------------------------------------------- request bodies


def test_a_two_megabyte_post_is_refused_at_once_and_nothing_is_written(
    client: TestClient, services: Services
) -> None:
    # Valid JSON that would otherwise be accepted: the account after 2 MB of white space.
    body = json.dumps(SIGNUP) + " " * 2_000_000

    started = time.perf_counter()
    response = client.post("/v1/signup", content=body, headers={"Content-Type": "application/json"})
    took = time.perf_counter() - started

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    assert users(services) == 0
    assert took < 1.0


def test_a_body_under_the_limit_is_read_as_before(client: TestClient, services: Services) -> None:
    body = json.dumps(SIGNUP) + " " * 500_000

    response = client.post("/v1/signup", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 201, response.text
    assert users(services) == 1


def test_webhooks_have_a_smaller_limit(client: TestClient) -> None:
    response = client.post(
        "/v1/webhooks/sandbox",
        content=b"{" + b" " * 100_000 + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_page_form_goes_through_the_same_limit(client: TestClient, services: Services) -> None:
    response = client.post(
        "/signup",
        content=b"email=a%40b.c&password=" + b"x" * 2_000_000,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )

    assert response.status_code == 413
    assert users(services) == 0


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(
    settings: Settings, services: Services
) -> None:
    """Driven as a server would drive it: no Content-Length, 64 KiB chunks of a 20 MB body."""
    app = create_app(settings, services)
    chunk = b"x" * 65536
    total_chunks = 20 * 1024 * 1024 // len(chunk)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > total_chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/signup",
        "raw_path": b"/v1/signup",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "app": app,
    }

    asyncio.run(app(scope, receive, send))

    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert json.loads(body)["code"] == "body_too_large"
    limit_chunks = services.settings.max_body_bytes // len(chunk)
    assert pulled <= limit_chunks + 1 < total_chunks
    assert users(services) == 0


# ---------------------------------------------------------------------------- client address


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "192.0.2.7"])

    assert proxies.client_of("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"
    assert proxies.client_of("10.1.2.3", ["198.51.100.1"]) == "198.51.100.1"
    # The client may write anything on the left; only the hops our proxies added count.
    assert proxies.client_of("10.1.2.3", ["1.1.1.1, 198.51.100.1, 192.0.2.7"]) == "198.51.100.1"
    assert proxies.client_of("10.1.2.3", ["not-an-address"]) == "10.1.2.3"
    assert proxies.client_of("10.1.2.3", []) == "10.1.2.3"
    assert TrustedProxies().client_of("10.1.2.3", ["198.51.100.1"]) == "10.1.2.3"


def test_behind_a_trusted_proxy_each_user_has_their_own_sign_up_budget(
    database_url: str,
) -> None:
    settings = make_settings(database_url, signups_per_address=2, trusted_proxies=["10.0.0.0/8"])
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services), client=("10.0.0.5", 50000)) as client:
            codes = [
                client.post(
                    "/v1/signup",
                    json={**SIGNUP, "email": f"u{i}@example.com"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                ).status_code
                for i in range(4)
            ]
    finally:
        services.db.dispose()

    assert codes == [201, 201, 201, 201]
