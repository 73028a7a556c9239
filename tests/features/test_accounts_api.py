"""Sign-up, log-in sessions, API tokens and attempt limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pintuan.accounts.models import User
from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.services import Services
from tests.conftest import make_settings
from tests.factories import PASSWORD, create_account

SIGNUP = {
    "email": "Mei@Example.com",
    "password": "a long enough secret",
    "display_name": "Mei",
    "locale": "zh-Hans",
    "time_zone": "Asia/Shanghai",
}


def test_a_shopper_signs_up_and_the_password_is_stored_as_argon2id(
    client: TestClient, services: Services
) -> None:
    response = client.post("/v1/signup", json=SIGNUP)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["email"], body["role"], body["locale"]) == (
        "mei@example.com",
        "shopper",
        "zh-Hans",
    )
    assert "password" not in response.text
    stored = services.db.run_sync(lambda s: s.get(User, body["id"]))
    assert stored.password_hash.startswith("$argon2id$")


def test_signing_up_twice_with_one_address_is_refused(client: TestClient) -> None:
    client.post("/v1/signup", json=SIGNUP)

    response = client.post("/v1/signup", json={**SIGNUP, "email": "mei@example.com"})

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("password", "short"),
        ("time_zone", "Mars/Olympus"),
        ("locale", "xx"),
    ],
)
def test_bad_sign_up_fields_are_named_in_the_error(
    client: TestClient, field: str, value: str
) -> None:
    response = client.post("/v1/signup", json={**SIGNUP, field: value})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_session_cookie_logs_in_and_logging_out_ends_it(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)

    login = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    me = client.get("/v1/me")
    # as the site's own pages send it (a cookie-authenticated write must be same-origin)
    client.delete("/v1/sessions/current", headers={"Origin": "http://testserver"})
    after = client.get("/v1/me")

    assert login.status_code == 201, login.text
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert me.status_code == 200
    assert me.json()["id"] == account.user_id
    assert after.status_code == 401


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)

    wrong_password = client.post("/v1/sessions", json={"email": account.email, "password": "x"})
    no_such_user = client.post(
        "/v1/sessions", json={"email": "nobody@example.com", "password": PASSWORD}
    )

    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json()["detail"] == no_such_user.json()["detail"]


@pytest.fixture
def strict_client(database_url: str, services: Services) -> Iterator[TestClient]:
    settings: Settings = make_settings(
        database_url, login_attempts_per_account=3, signups_per_address=2
    )
    strict = Services(settings=settings, db=services.db, passwords=services.passwords)
    with TestClient(create_app(settings, strict)) as client:
        yield client


def test_log_ins_are_limited_per_account(strict_client: TestClient, services: Services) -> None:
    account = create_account(services)
    attempt = {"email": account.email, "password": "wrong password"}

    codes = [strict_client.post("/v1/sessions", json=attempt).status_code for _ in range(4)]
    with_right_password = strict_client.post(
        "/v1/sessions", json={"email": account.email, "password": PASSWORD}
    )

    assert codes == [401, 401, 401, 429]
    assert with_right_password.status_code == 429
    assert int(with_right_password.headers["retry-after"]) > 0
    assert with_right_password.json()["code"] == "rate_limited"


def test_sign_ups_are_limited_per_address(strict_client: TestClient) -> None:
    codes = [
        strict_client.post("/v1/signup", json={**SIGNUP, "email": f"u{i}@example.com"}).status_code
        for i in range(3)
    ]

    assert codes == [201, 201, 429]


def test_an_api_token_is_shown_once_and_stops_working_when_revoked(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)

    created = client.post("/v1/me/tokens", json={"name": "ci"}, headers=account.headers)
    token = created.json()["token"]
    listed = client.get("/v1/me/tokens", headers=account.headers).json()["data"]
    works = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    revoked = client.delete(f"/v1/me/tokens/{created.json()['id']}", headers=account.headers)
    after = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert created.status_code == 201
    assert token.startswith("pt_")
    assert all("token" not in t for t in listed)
    assert works.status_code == 200
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_token"


def test_a_token_can_be_had_for_email_and_password(client: TestClient, services: Services) -> None:
    account = create_account(services)

    response = client.post(
        "/v1/tokens", json={"email": account.email, "password": PASSWORD, "name": "script"}
    )

    assert response.status_code == 201, response.text
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {response.json()['token']}"})
    assert me.json()["id"] == account.user_id


def test_a_shopper_changes_language_and_time_zone(client: TestClient, services: Services) -> None:
    account = create_account(services)

    response = client.patch(
        "/v1/me", json={"locale": "zh-Hans", "time_zone": "Asia/Jakarta"}, headers=account.headers
    )

    assert response.status_code == 200
    assert (response.json()["locale"], response.json()["time_zone"]) == ("zh-Hans", "Asia/Jakarta")


def test_a_malformed_authorization_header_is_refused(client: TestClient) -> None:
    response = client.get("/v1/me", headers={"Authorization": "Basic abc"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
