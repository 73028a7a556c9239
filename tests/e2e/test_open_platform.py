"""The open platform in a browser: a merchant's staff install an app on their shop through the
consent page (PKCE), in English and in Chinese, at phone and desktop widths; the app then
redeems the code over HTTP. The developer console, the review queue and the docs pages have no
serious accessibility problem either."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from pintuan.accounts import service as accounts
from pintuan.apps import service as apps
from pintuan.domain.roles import Role
from tests.apps_support import REDIRECT_URI, pkce_pair
from tests.e2e.browsing import Shopper, screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.factories import Account, create_account, create_merchant

SCOPES = ["offers:read", "offers:write", "webhooks:manage"]


def _approved_app(server: LiveServer) -> tuple[str, str]:
    """An app registered by a developer and approved by an operator: its client id and secret."""
    developer = create_account(server.services)
    operator = create_account(server.services, role=Role.OPERATOR)

    def work(session: Any) -> tuple[str, str]:
        manifest = apps.Manifest(
            name="Star Cinema",
            homepage="https://cinema.example.com",
            redirect_uris=[REDIRECT_URI],
            scopes=SCOPES,
        )
        app, issued = apps.register_app(session, developer.principal, manifest, allow_loopback=True)
        apps.review_app(session, operator.principal, app.id, "approve")
        return app.client_id, issued.secret

    return server.services.db.run_sync(work)


def _app_receives_the_redirect(route: Route) -> None:
    route.fulfill(status=200, content_type="text/plain", body="the app got its code")


def _consent(
    browser: Browser, server: LiveServer, person: Account, client_id: str, lang: str, name: str
) -> tuple[Page, str, str, list[dict[str, Any]]]:
    """Open the authorization link, log in, screenshot the consent page, allow; returns the
    page, the code, the verifier and any accessibility problems of the consent page."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(SCOPES),
        "state": "s-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    visitor = Shopper(browser, server.url, locale=lang)
    visitor.context.route("http://127.0.0.1:9/**", _app_receives_the_redirect)
    visitor.open("/oauth/authorize?" + urlencode(query))
    visitor.log_in(person.email)
    page = visitor.page
    expect(page.locator("h1")).to_contain_text("Star Cinema")
    problems = blocking_violations(page)
    screenshot(page, name)
    page.locator("button[name=decision][value=allow]").click()
    page.wait_for_url(REDIRECT_URI + "*")
    params = parse_qs(urlsplit(page.url).query)
    assert params["state"] == ["s-123"]
    visitor.close()
    return page, params["code"][0], verifier, problems


def _redeem(server: LiveServer, client_id: str, secret: str, code: str, verifier: str) -> dict:
    answer = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert answer.status_code == 200, answer.text
    me = httpx.get(
        f"{server.url}/v1/partner/me",
        headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
    )
    assert me.status_code == 200, me.text
    body: dict = me.json()
    return body


def test_staff_install_an_app_on_their_shop_in_english_and_chinese(
    browser: Browser, live_server: LiveServer
) -> None:
    client_id, secret = _approved_app(live_server)
    shop = create_merchant(live_server.services.db, slug="noodle-bar")
    english = create_account(live_server.services, role=Role.MERCHANT, merchant=shop)
    chinese = create_account(live_server.services, role=Role.MERCHANT, merchant=shop)
    live_server.services.db.run_sync(
        lambda s: accounts.update_profile(s, chinese.user_id, locale="zh-Hans")
    )

    _page, code, verifier, problems = _consent(
        browser, live_server, english, client_id, "en-US", "consent-staff-en"
    )
    assert _redeem(live_server, client_id, secret, code, verifier)["merchant_id"] == shop.id

    _, code, verifier, more = _consent(
        browser, live_server, chinese, client_id, "zh-CN", "consent-staff-zh"
    )
    assert _redeem(live_server, client_id, secret, code, verifier)["merchant_id"] == shop.id

    assert problems + more == []


def test_a_shopper_connects_their_account_in_chinese(
    browser: Browser, live_server: LiveServer
) -> None:
    client_id, secret = _approved_app(live_server)
    shopper = create_account(live_server.services)
    live_server.services.db.run_sync(
        lambda s: accounts.update_profile(s, shopper.user_id, locale="zh-Hans")
    )

    _, code, verifier, problems = _consent(
        browser, live_server, shopper, client_id, "zh-CN", "consent-shopper-zh"
    )
    me = _redeem(live_server, client_id, secret, code, verifier)

    assert me["merchant_id"] is None
    assert me["subject"].startswith("sub_")
    assert me["email"] is None
    assert problems == []


def test_the_developer_pages_have_no_serious_accessibility_violations(
    browser: Browser, live_server: LiveServer
) -> None:
    _approved_app(live_server)
    developer = create_account(live_server.services)
    operator = create_account(live_server.services, role=Role.OPERATOR)
    problems: list[dict[str, Any]] = []

    for lang in ("en-US", "zh-CN"):
        reader = Shopper(browser, live_server.url, locale=lang)
        page = reader.open("/developers/docs")
        problems += blocking_violations(page)
        screenshot(page, f"developer-docs-{lang[:2]}")
        reader.close()

    visitor = Shopper(browser, live_server.url)
    visitor.open("/login?next=/console/developer")
    visitor.log_in(developer.email)
    page = visitor.page
    page.locator("#app-name").fill("Star Cinema")
    page.locator("#app-homepage").fill("https://cinema.example.com")
    page.locator("#app-redirects").fill("https://cinema.example.com/cb")
    page.locator("input[name=scopes][value='offers:read']").check()
    page.locator("form[action='/console/developer/apps'] button[type=submit]").click()
    expect(page.locator(".secret")).to_contain_text("pts_")
    problems += blocking_violations(page)
    screenshot(page, "developer-app-secret")
    problems += blocking_violations(visitor.open("/console/developer"))
    visitor.close()

    reviewer = Shopper(browser, live_server.url)
    reviewer.open("/login?next=/console/operator/apps")
    reviewer.log_in(operator.email)
    problems += blocking_violations(reviewer.page)
    screenshot(reviewer.page, "operator-app-review")
    reviewer.close()

    assert problems == []
