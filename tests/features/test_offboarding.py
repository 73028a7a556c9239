"""Taking access away: removing staff, disabling users, signing out everywhere, tokens that
expire, and when each token and session was last used."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from tests.factories import PASSWORD, Account, create_account, create_deal, create_merchant


def log_in(client: TestClient, account: Account) -> str:
    """A new session of ``account``; returns its cookie (the client keeps none)."""
    response = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    cookie = response.cookies[SESSION_COOKIE]
    client.cookies.clear()
    return cookie


def me_with_cookie(client: TestClient, cookie: str) -> int:
    client.cookies.set(SESSION_COOKIE, cookie)
    try:
        return client.get("/v1/me").status_code
    finally:
        client.cookies.clear()


def me_with_token(client: TestClient, token: str) -> int:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def new_token(client: TestClient, account: Account, **body: object) -> dict[str, str]:
    response = client.post("/v1/me/tokens", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed_token(client: TestClient, account: Account, token_id: str) -> dict[str, str]:
    tokens = client.get("/v1/me/tokens", headers=account.headers).json()["data"]
    return next(t for t in tokens if t["id"] == token_id)


def test_an_operator_removes_staff_and_their_next_request_may_no_longer_change_deals(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant)
    operator = create_account(services, role=Role.OPERATOR)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    patch = {"title": "Dumplings for three, now with soup"}
    assert client.patch(f"/v1/deals/{deal.id}", json=patch, headers=staff.headers).is_success

    by_staff = client.delete(
        f"/v1/merchants/{merchant.id}/staff/{staff.user_id}", headers=staff.headers
    )
    removed = client.delete(
        f"/v1/merchants/{merchant.id}/staff/{staff.user_id}", headers=operator.headers
    )
    again = client.delete(
        f"/v1/merchants/{merchant.id}/staff/{staff.user_id}", headers=operator.headers
    )
    refused = client.patch(f"/v1/deals/{deal.id}", json=patch, headers=staff.headers)

    assert (by_staff.status_code, by_staff.json()["code"]) == (403, "operator_only")
    assert removed.status_code == 204
    assert (again.status_code, again.json()["code"]) == (404, "staff_not_found")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_merchant_staff")
    me = client.get("/v1/me", headers=staff.headers).json()
    assert (me["role"], me["merchant_ids"]) == ("shopper", [])


def test_a_disabled_user_cannot_log_in_and_every_session_and_token_stops_at_once(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    shopper = create_account(services)
    cookie = log_in(client, shopper)
    assert (me_with_cookie(client, cookie), me_with_token(client, shopper.token)) == (200, 200)

    by_shopper = client.post(f"/v1/users/{operator.user_id}/disable", headers=shopper.headers)
    disabled = client.post(f"/v1/users/{shopper.user_id}/disable", headers=operator.headers)
    login = client.post("/v1/sessions", json={"email": shopper.email, "password": PASSWORD})
    token_login = client.post("/v1/tokens", json={"email": shopper.email, "password": PASSWORD})

    assert (by_shopper.status_code, by_shopper.json()["code"]) == (403, "operator_only")
    assert disabled.json()["disabled_at"] is not None
    assert (me_with_cookie(client, cookie), me_with_token(client, shopper.token)) == (401, 401)
    assert (login.status_code, login.json()["code"]) == (403, "account_disabled")
    assert (token_login.status_code, token_login.json()["code"]) == (403, "account_disabled")

    enabled = client.post(f"/v1/users/{shopper.user_id}/enable", headers=operator.headers)
    assert enabled.json()["disabled_at"] is None
    assert me_with_cookie(client, log_in(client, shopper)) == 200
    # What was revoked stays revoked.
    assert (me_with_cookie(client, cookie), me_with_token(client, shopper.token)) == (401, 401)


def test_an_operator_cannot_disable_themselves(client: TestClient, services: Services) -> None:
    operator = create_account(services, role=Role.OPERATOR)

    refused = client.post(f"/v1/users/{operator.user_id}/disable", headers=operator.headers)

    assert (refused.status_code, refused.json()["code"]) == (409, "cannot_disable_self")


def test_signing_out_everywhere_revokes_every_session_and_token_of_the_caller_only(
    client: TestClient, services: Services
) -> None:
    shopper, other = create_account(services), create_account(services)
    cookies = [log_in(client, shopper), log_in(client, shopper)]
    second = new_token(client, shopper)["token"]
    others_cookie = log_in(client, other)

    revoked = client.post("/v1/me/sessions/revoke-all", headers=shopper.headers)

    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"sessions_revoked": 2, "tokens_revoked": 2}
    assert [me_with_cookie(client, c) for c in cookies] == [401, 401]
    assert [me_with_token(client, t) for t in (shopper.token, second)] == [401, 401]
    assert (me_with_cookie(client, others_cookie), me_with_token(client, other.token)) == (200, 200)


def test_a_token_expires_after_its_lifetime_and_may_ask_for_a_shorter_one(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    default = new_token(client, shopper)
    short = new_token(client, shopper, expires_in_days=1)
    too_long = client.post("/v1/me/tokens", json={"expires_in_days": 91}, headers=shopper.headers)

    lifetime = datetime.fromisoformat(default["expires_at"]) - datetime.fromisoformat(
        default["created_at"]
    )
    assert lifetime == timedelta(days=90)
    assert too_long.status_code == 422
    assert me_with_token(client, short["token"]) == 200

    clock.offset = timedelta(days=1, seconds=1)
    assert me_with_token(client, short["token"]) == 401
    assert me_with_token(client, default["token"]) == 200
    listed = client.get("/v1/me/tokens", headers={"Authorization": f"Bearer {default['token']}"})
    assert short["id"] not in {t["id"] for t in listed.json()["data"]}

    clock.offset = timedelta(days=90, seconds=1)
    assert me_with_token(client, default["token"]) == 401


def test_last_use_of_a_token_and_a_session_is_written_at_most_once_a_minute(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    token = new_token(client, shopper)
    assert token["last_used_at"] is None
    cookie = log_in(client, shopper)

    me_with_token(client, token["token"])
    me_with_cookie(client, cookie)
    first = listed_token(client, shopper, token["id"])["last_used_at"]
    clock.offset = timedelta(seconds=30)
    me_with_token(client, token["token"])
    me_with_cookie(client, cookie)
    within_the_minute = listed_token(client, shopper, token["id"])["last_used_at"]
    sessions = client.get("/v1/me/sessions", headers=shopper.headers).json()["data"]
    clock.offset = timedelta(minutes=2)
    me_with_token(client, token["token"])
    later = listed_token(client, shopper, token["id"])["last_used_at"]

    assert first is not None
    assert within_the_minute == first
    assert datetime.fromisoformat(later) - datetime.fromisoformat(first) >= timedelta(minutes=1)
    assert len(sessions) == 1
    assert sessions[0]["last_used_at"] is not None
    assert datetime.fromisoformat(sessions[0]["last_used_at"]) <= utc_now() - timedelta(seconds=29)


def test_a_disabled_user_logging_in_on_the_page_is_told_so_on_the_form(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    shopper = create_account(services)
    client.post(f"/v1/users/{shopper.user_id}/disable", headers=operator.headers)
    form_page = client.get("/login", headers={"Accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)
    assert token is not None

    answer = client.post(
        "/login",
        data={"email": shopper.email, "password": PASSWORD, "csrf_token": token.group(1)},
        headers={"Accept": "text/html"},
    )

    assert answer.status_code == 403
    assert 'action="/login"' in answer.text
    assert SESSION_COOKIE not in answer.cookies
