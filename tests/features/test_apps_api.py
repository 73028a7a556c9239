"""Apps on the open platform: registration and its validation, the operators' review, listing,
and client secrets shown once, stored hashed and rotated with two live at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.apps.models import AppSecret
from pintuan.config import Environment
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.services import Services
from tests.apps_support import (
    approve_app,
    approved_app,
    client_credentials,
    manifest,
    register_app,
    token_request,
)
from tests.factories import create_account


def test_registering_an_app_shows_the_secret_once_and_stores_only_its_hash(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)

    answer = client.post("/v1/apps", json=manifest(), headers=developer.headers)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "pending"
    assert body["client_id"].startswith("cli_")
    assert body["client_secret"].startswith("pts_")
    stored = services.db.run_sync(lambda s: list(s.scalars(select(AppSecret.secret_hash))))
    assert body["client_secret"] not in stored
    assert len(stored) == 1
    again = client.get(f"/v1/apps/{body['id']}", headers=developer.headers).json()
    assert "client_secret" not in again
    assert again["secrets"][0]["hint"] == body["client_secret"][:8]


def test_a_registration_with_an_idempotency_key_is_not_replayed_with_its_secret(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)
    headers = {**developer.headers, "Idempotency-Key": "register-1"}

    first = client.post("/v1/apps", json=manifest(), headers=headers)
    second = client.post("/v1/apps", json=manifest(), headers=headers)

    assert first.status_code == 201
    assert "client_secret" not in second.text
    listed = client.get("/v1/apps", headers=developer.headers).json()["data"]
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"redirect_uris": ["http://cinema.example.com/cb"]}, "redirect_uris.0", "invalid_app_url"),
        ({"redirect_uris": ["ftp://cinema.example.com/cb"]}, "redirect_uris.0", "invalid_app_url"),
        ({"redirect_uris": ["https://cinema.example.com/cb#x"]}, "redirect_uris.0", None),
        ({"redirect_uris": ["https://me@cinema.example.com/cb"]}, "redirect_uris.0", None),
        ({"redirect_uris": []}, "redirect_uris", None),
        ({"scopes": ["offers:read", "admin"]}, "scopes.1", None),
        ({"scopes": []}, "scopes", None),
        ({"webhook_url": "http://hooks.example.com/in"}, "webhook_url", "invalid_app_url"),
        ({"webhook_events": ["Team Succeeded"]}, "webhook_events.0", None),
        ({"name": "   "}, "name", None),
    ],
)
def test_a_manifest_that_is_not_valid_is_refused_and_changes_nothing(
    client: TestClient, services: Services, change: dict, field: str, code: str | None
) -> None:
    developer = create_account(services)

    answer = client.post("/v1/apps", json=manifest(**change), headers=developer.headers)

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["errors"][0]["field"].endswith(field)
    if code:
        assert problem["code"] == code
    assert client.get("/v1/apps", headers=developer.headers).json()["data"] == []


def test_loopback_redirect_uris_are_for_development_only(
    client: TestClient, services: Services
) -> None:
    from pintuan.apps.service import Manifest, check_manifest

    body = manifest()
    loopback = Manifest(
        name=body["name"],
        homepage=body["homepage"],
        redirect_uris=body["redirect_uris"],
        scopes=body["scopes"],
    )

    check_manifest(loopback, allow_loopback=services.settings.env is not Environment.PROD)
    with pytest.raises(Exception, match="https"):
        check_manifest(loopback, allow_loopback=False)


def test_operators_review_apps_through_the_allowed_transitions_only(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    app = register_app(client, developer)

    by_developer = client.post(f"/v1/apps/{app.id}/approve", headers=developer.headers)
    approved = client.post(f"/v1/apps/{app.id}/approve", headers=operator.headers)
    twice = client.post(f"/v1/apps/{app.id}/approve", headers=operator.headers)
    suspended = client.post(f"/v1/apps/{app.id}/suspend", headers=operator.headers)
    suspended_again = client.post(f"/v1/apps/{app.id}/suspend", headers=operator.headers)

    assert by_developer.status_code == 403
    assert by_developer.json()["code"] == "operator_only"
    assert approved.json()["status"] == "approved"
    assert twice.status_code == 409
    assert twice.json()["code"] == "invalid_app_transition"
    assert suspended.json()["status"] == "suspended"
    assert suspended_again.status_code == 409
    assert suspended_again.json()["code"] == "invalid_app_transition"


def test_developers_list_their_own_apps_and_operators_every_app_by_status(
    client: TestClient, services: Services
) -> None:
    mine = create_account(services)
    theirs = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    first = register_app(client, mine, name="First")
    second = register_app(client, mine, name="Second")
    other = register_app(client, theirs, name="Theirs")
    approve_app(client, operator, second)

    own = client.get("/v1/apps", headers=mine.headers).json()["data"]
    queue = client.get("/v1/apps?status=pending", headers=operator.headers).json()["data"]
    page = client.get("/v1/apps?limit=1", headers=operator.headers).json()
    rest = client.get(
        f"/v1/apps?limit=5&cursor={page['next_cursor']}", headers=operator.headers
    ).json()
    hidden = client.get(f"/v1/apps/{other.id}", headers=mine.headers)

    assert [a["id"] for a in own] == [second.id, first.id]
    assert {a["id"] for a in queue} == {first.id, other.id}
    assert [a["id"] for a in page["data"] + rest["data"]] == [other.id, second.id, first.id]
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "app_not_found"


def test_a_rotated_secret_keeps_working_beside_the_new_one_until_it_expires(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    app = approved_app(client, developer, operator)

    rotated = client.post(f"/v1/apps/{app.id}/secrets", headers=developer.headers)
    new_secret = rotated.json()["client_secret"]

    def works(secret: str) -> int:
        answer = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(app.client_id, secret),
        )
        return answer.status_code

    assert rotated.status_code == 201
    assert works(app.client_secret) == 200
    assert works(new_secret) == 200
    listed = client.get(f"/v1/apps/{app.id}", headers=developer.headers).json()["secrets"]
    assert len(listed) == 2
    assert listed[1]["expires_at"] is not None

    clock.offset = timedelta(hours=services.settings.app_secret_overlap_hours, minutes=1)

    assert works(app.client_secret) == 401
    assert works(new_secret) == 200


def test_a_secret_can_be_revoked_at_once_but_not_the_last_one(
    client: TestClient, services: Services
) -> None:
    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    app = approved_app(client, developer, operator)
    old_id = client.get(f"/v1/apps/{app.id}", headers=developer.headers).json()["secrets"][0]["id"]

    last = client.delete(f"/v1/apps/{app.id}/secrets/{old_id}", headers=developer.headers)
    new = client.post(f"/v1/apps/{app.id}/secrets", headers=developer.headers).json()
    revoked = client.delete(f"/v1/apps/{app.id}/secrets/{old_id}", headers=developer.headers)

    assert last.status_code == 409
    assert last.json()["code"] == "last_secret"
    assert revoked.status_code == 200
    assert token_request(client, app, grant_type="client_credentials").status_code == 401
    fresh = app.__class__(app.id, app.client_id, new["client_secret"], app.redirect_uri, developer)
    assert client_credentials(client, fresh).access_token
