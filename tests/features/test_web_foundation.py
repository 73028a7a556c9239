"""What every page shares: security headers, CSRF, log-in, sign-up, settings and languages."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from pintuan.accounts import service as accounts
from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.accounts.models import User
from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.security_headers import SecurityHeadersMiddleware
from pintuan.services import Services
from pintuan.web.kit.security import CONTENT_SECURITY_POLICY, EVERY_RESPONSE, HTML_HEADERS
from tests.conftest import make_settings
from tests.factories import PASSWORD, create_account

HTML = {"accept": "text/html"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def page_token(client: TestClient, path: str = "/login") -> str:
    response = client.get(path, headers=HTML)
    assert response.status_code == 200
    return csrf_of(response.text)


def user_count(services: Services) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(User))))


def test_pages_carry_a_policy_that_allows_no_inline_script_or_framing(client: TestClient) -> None:
    response = client.get("/login", headers=HTML)

    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for directive in (
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)
    assert " style=" not in response.text


def test_the_json_api_keeps_its_answers_and_gets_no_page_policy(client: TestClient) -> None:
    response = client.get("/v1/deals/deal_missing", headers=HTML)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "deal_not_found"
    assert "content-security-policy" not in response.headers


def test_the_interactive_api_docs_keep_working_without_the_page_policy(
    client: TestClient,
) -> None:
    response = client.get("/docs", headers=HTML)

    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


def test_a_browser_gets_an_html_page_for_a_missing_page(client: TestClient) -> None:
    response = client.get("/deals/deal_missing", headers=HTML)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "deal_not_found" in response.text


def test_a_form_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    page_token(client, "/signup")  # the browser has its nonce cookie
    form = {"email": "new@example.com", "password": PASSWORD, "display_name": "New"}

    missing = client.post("/signup", data=form, headers=HTML)
    forged = client.post("/signup", data={**form, "csrf_token": "0" * 64}, headers=HTML)

    assert missing.status_code == forged.status_code == 403
    assert "csrf_failed" in missing.text
    assert user_count(services) == 0


def test_a_csrf_token_stops_working_when_the_session_changes(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    anonymous_token = page_token(client, "/login")
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})

    stale = client.post(
        "/account",
        data={
            "csrf_token": anonymous_token,
            "display_name": "X",
            "locale": "en",
            "time_zone": "UTC",
        },
        headers=HTML,
    )

    assert stale.status_code == 403
    assert services.db.run_sync(accounts.get_user, account.user_id).display_name != "X"


def test_signing_up_logs_in_with_the_browsers_language_and_time_zone(
    client: TestClient, services: Services
) -> None:
    client.headers["accept-language"] = "zh-CN,zh;q=0.9"
    client.cookies.set("tz", "Asia/Shanghai")
    token = page_token(client, "/signup")

    response = client.post(
        "/signup",
        data={
            "csrf_token": token,
            "email": "mei@example.com",
            "password": PASSWORD,
            "display_name": "Mei",
            "next": "/",
        },
        headers=HTML,
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/?notice=signed_up"
    user = services.db.run_sync(accounts.find_user_by_email, "mei@example.com")
    assert (user.locale, user.time_zone) == ("zh-Hans", "Asia/Shanghai")
    settings_page = client.get("/account", headers=HTML)
    assert settings_page.status_code == 200
    assert "账户设置" in settings_page.text
    assert '<html lang="zh-Hans">' in settings_page.text


def test_sign_up_shows_what_is_wrong_next_to_each_field(
    client: TestClient, services: Services
) -> None:
    token = page_token(client, "/signup")

    response = client.post(
        "/signup",
        data={
            "csrf_token": token,
            "email": "not-an-email",
            "password": "short",
            "display_name": "",
        },
        headers=HTML,
    )

    assert response.status_code == 422
    assert 'id="email-error"' in response.text
    assert 'id="password-error"' in response.text
    assert 'id="display_name-error"' in response.text
    assert user_count(services) == 0


def test_logging_in_goes_back_to_the_page_that_asked_for_it(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    redirect = client.get("/orders", headers=HTML, follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/login?next=/orders"

    response = client.post(
        "/login",
        data={
            "csrf_token": page_token(client),
            "email": account.email,
            "password": PASSWORD,
            "next": "/orders",
        },
        headers=HTML,
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/orders"
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert client.get("/orders", headers=HTML).status_code == 200


def test_a_next_address_off_this_site_is_ignored(client: TestClient, services: Services) -> None:
    account = create_account(services)

    response = client.post(
        "/login",
        data={
            "csrf_token": page_token(client),
            "email": account.email,
            "password": PASSWORD,
            "next": "//evil.example/phish",
        },
        headers=HTML,
        follow_redirects=False,
    )

    assert response.headers["location"] == "/"


def test_a_wrong_password_is_refused_and_attempts_are_throttled(
    database_url: str, services: Services
) -> None:
    settings = make_settings(database_url, login_attempts_per_account=2)
    account = create_account(services)
    throttled = build_services(settings, services.db)
    with TestClient(create_app(settings, throttled)) as client:
        answers = []
        for _ in range(3):
            answers.append(
                client.post(
                    "/login",
                    data={
                        "csrf_token": page_token(client),
                        "email": account.email,
                        "password": "wrong password!",
                    },
                    headers=HTML,
                )
            )

    assert [a.status_code for a in answers] == [401, 401, 429]
    assert "The email address or password is wrong." in answers[0].text
    assert "Too many attempts" in answers[2].text
    assert "retry-after" in answers[2].headers


def test_logging_out_ends_the_session(client: TestClient, services: Services) -> None:
    account = create_account(services)
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    token = page_token(client, "/account")

    response = client.post(
        "/logout", data={"csrf_token": token}, headers=HTML, follow_redirects=False
    )

    assert response.status_code == 303
    assert client.get("/account", headers=HTML, follow_redirects=False).status_code == 303


def test_settings_change_the_language_and_time_zone_of_every_page(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})

    response = client.post(
        "/account",
        data={
            "csrf_token": page_token(client, "/account"),
            "display_name": "Lena",
            "locale": "zh_Hans",
            "time_zone": "Europe/Berlin",
        },
        headers=HTML,
    )

    assert response.status_code == 200
    assert "设置已保存" in response.text
    assert "Europe/Berlin" in response.text
    user = services.db.run_sync(accounts.get_user, account.user_id)
    assert (user.display_name, user.locale, user.time_zone) == ("Lena", "zh-Hans", "Europe/Berlin")


def test_settings_refuse_an_unknown_time_zone_and_keep_the_old_one(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})

    response = client.post(
        "/account",
        data={
            "csrf_token": page_token(client, "/account"),
            "display_name": "Lena",
            "locale": "en",
            "time_zone": "Mars/Olympus",
        },
        headers=HTML,
    )

    assert response.status_code == 422
    assert 'id="time_zone-error"' in response.text
    assert services.db.run_sync(accounts.get_user, account.user_id).time_zone == "UTC"


def test_the_switcher_changes_the_language_for_a_visitor_and_for_an_account(
    client: TestClient, services: Services
) -> None:
    switched = client.post(
        "/language",
        data={"csrf_token": page_token(client), "locale": "zh_Hans", "next": "/login"},
        headers=HTML,
    )
    assert "登录" in switched.text

    account = create_account(services)
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    client.post(
        "/language",
        data={"csrf_token": page_token(client, "/account"), "locale": "zh_Hans", "next": "/"},
        headers=HTML,
    )

    assert services.db.run_sync(accounts.get_user, account.user_id).locale == "zh-Hans"


def test_the_account_language_wins_over_the_browsers(
    client: TestClient, services: Services
) -> None:
    account = create_account(services)
    client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    client.headers["accept-language"] = "zh-CN"
    client.cookies.set("lang", "zh_Hans")

    page = client.get("/account", headers=HTML)

    assert '<html lang="en">' in page.text


def test_the_sandbox_checkout_page_needs_no_inline_style_or_script() -> None:
    from pathlib import Path

    import pintuan.payments

    template = (
        Path(pintuan.payments.__file__).parent / "templates" / "sandbox_checkout.html"
    ).read_text()

    assert "<style" not in template
    assert " style=" not in template
    assert "<script" not in template


def test_in_production_every_cookie_is_marked_secure() -> None:
    async def page(_request: object) -> HTMLResponse:
        response = HTMLResponse("<p>hi</p>")
        response.set_cookie("a", "1", httponly=True)
        response.set_cookie("b", "2", secure=True)
        return response

    app = Starlette(routes=[Route("/", page)])
    secured = SecurityHeadersMiddleware(
        app,
        session_cookie="pt_session",
        hsts=True,
        secure_cookies=True,
        every_response=EVERY_RESPONSE,
        html_headers=HTML_HEADERS,
    )
    with TestClient(secured) as client:
        response = client.get("/")

    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert all(c.lower().count("secure") == 1 for c in cookies)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
