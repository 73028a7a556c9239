"""The developers' console, the operators' review of apps, and the developer docs, in a
browser's shoes and in two languages."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from pintuan.apps.models import App
from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.apps_support import register_app
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account


def _register_on_the_page(client: TestClient, **fields: str) -> object:
    values = {
        "name": "Star Cinema",
        "homepage": "https://cinema.example.com",
        "redirect_uris": "https://cinema.example.com/cb\nhttp://127.0.0.1:9/cb",
        "webhook_url": "",
        "webhook_events": "team.succeeded",
    }
    values.update(fields)
    page = client.get("/console/developer", headers=HTML)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    data = [("csrf_token", csrf.group(1)), ("form_key", "register-1"), *values.items()]
    data += [("scopes", "offers:read"), ("scopes", "offers:write")]
    return client.post(
        "/console/developer/apps",
        content=urlencode(data),
        headers={**HTML, "content-type": "application/x-www-form-urlencoded"},
    )


def test_a_developer_registers_an_app_on_the_page_and_sees_its_secret_once(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)
    log_in(client, developer)

    answer = _register_on_the_page(client)

    assert answer.status_code == 200, answer.text
    secret = re.search(r"pts_[A-Za-z0-9_-]+", answer.text)
    assert secret, "the new secret is shown"
    app = services.db.run_sync(lambda s: s.query(App).one())
    assert app.scopes == ["offers:read", "offers:write"]
    assert app.redirect_uris == ["https://cinema.example.com/cb", "http://127.0.0.1:9/cb"]
    again = client.get(f"/console/developer/apps/{app.id}", headers=HTML)
    assert again.status_code == 200
    assert secret.group(0) not in again.text
    assert secret.group(0)[:8] in again.text
    listed = client.get("/console/developer", headers=HTML).text
    assert "Star Cinema" in listed
    assert app.client_id in listed


def test_a_manifest_refused_on_the_page_says_why_and_keeps_what_was_typed(
    client: TestClient, services: Services
) -> None:
    log_in(client, create_account(services))

    answer = _register_on_the_page(client, redirect_uris="http://cinema.example.com/cb")

    assert answer.status_code == 422
    assert "https" in answer.text
    assert "Star Cinema" in answer.text
    assert services.db.run_sync(lambda s: s.query(App).count()) == 0


def test_a_developer_rotates_a_secret_on_the_page(client: TestClient, services: Services) -> None:
    developer = create_account(services)
    app = register_app(client, developer)
    log_in(client, developer)

    answer = form_post(
        client,
        f"/console/developer/apps/{app.id}",
        f"/console/developer/apps/{app.id}/secrets",
        {},
    )

    assert answer.status_code == 200
    shown = re.search(r"pts_[A-Za-z0-9_-]+", answer.text)
    assert shown
    assert shown.group(0) != app.client_secret
    assert answer.text.count("…") >= 2  # both secrets listed by their hints


def test_an_operator_approves_an_app_from_the_review_queue(
    client: TestClient, services: Services
) -> None:
    app = register_app(client, create_account(services))
    log_in(client, create_account(services, role=Role.OPERATOR))
    queue = client.get("/console/operator/apps", headers=HTML)
    assert "Cinema Partner" in queue.text

    answer = form_post(
        client, "/console/operator/apps", f"/console/operator/apps/{app.id}/approve", {}
    )

    assert answer.status_code == 303
    assert services.db.run_sync(lambda s: s.get(App, app.id).status) == "approved"
    approved = client.get("/console/operator/apps?status=approved", headers=HTML).text
    assert "Cinema Partner" in approved
    assert "Suspend Cinema Partner" in approved


def test_the_console_pages_speak_chinese(client: TestClient, services: Services) -> None:
    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    register_app(client, developer)
    speak_chinese(services, developer)
    speak_chinese(services, operator)

    log_in(client, developer)
    mine = client.get("/console/developer", headers=HTML).text
    log_in(client, operator)
    queue = client.get("/console/operator/apps", headers=HTML).text

    assert "我的应用" in mine
    assert "注册应用" in mine
    assert "应用" in queue
    assert "通过" in queue


def test_the_docs_page_is_in_english_and_chinese_and_linked_from_the_console(
    client: TestClient, services: Services
) -> None:
    english = client.get("/developers/docs", headers=HTML).text
    chinese = client.get(
        "/developers/docs", headers={**HTML, "accept-language": "zh-CN,zh;q=0.9"}
    ).text
    developer = create_account(services)
    log_in(client, developer)
    console = client.get("/console/developer", headers=HTML).text

    for words in ("code_challenge_method=S256", "/v1/partner/offers/", "standardwebhooks"):
        assert words in english
        assert words in chinese
    assert "Register an app" in english
    assert "注册应用" in chinese
    assert 'href="/developers/docs"' in console
    assert 'href="/developers/docs"' in client.get("/", headers=HTML).text
