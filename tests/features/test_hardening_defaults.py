"""Safe by default: prod hides the API explorer and pins HTTPS, private answers are not cached,
capability tokens stay out of the request log, and nothing dev-only reaches a network by accident.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.cli import app as cli
from pintuan.config import Environment, get_settings
from pintuan.payments.pay_links import issue_pay_link
from pintuan.services import Services
from tests.conftest import make_settings
from tests.factories import create_account

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what these tests refuse or allow
PROD_SECRET = "prod-secret-" + "k" * 40


@pytest.fixture
def prod_client(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        database_url, env=Environment.PROD, secret_key=PROD_SECRET, sandbox_enabled=False
    )
    services = build_services(settings)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client
    services.db.dispose()


def test_prod_hides_the_api_explorer_but_keeps_the_schema(prod_client: TestClient) -> None:
    assert prod_client.get("/docs").status_code == 404
    assert prod_client.get("/redoc").status_code == 404
    assert prod_client.get("/openapi.json").status_code == 200


def test_dev_keeps_the_api_explorer(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200


def test_prod_pins_https_on_every_answer(prod_client: TestClient) -> None:
    for path in ("/healthz", "/v1/deals/deal_nope", "/nowhere"):
        hsts = prod_client.get(path).headers.get("strict-transport-security", "")
        assert "max-age=" in hsts, path


def test_dev_does_not_pin_https(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/healthz").headers


def test_answers_to_a_signed_in_caller_are_not_stored(
    client: TestClient, services: Services
) -> None:
    # given a shopper with an API token
    shopper = create_account(services)

    # when it reads its own account, and someone anonymous reads the health probe
    mine = client.get("/v1/me", headers=shopper.headers)
    anonymous = client.get("/healthz")

    # then only the private answer forbids caches to keep it
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "no-store"
    assert "no-store" not in anonymous.headers.get("cache-control", "")


def test_answers_that_set_a_cookie_are_not_stored(client: TestClient) -> None:
    response = client.get("/login")
    assert "set-cookie" in response.headers
    assert response.headers["cache-control"] == "no-store"


def test_a_session_cookie_makes_an_answer_private(client: TestClient) -> None:
    client.cookies.set("pintuan_session", "anything")
    assert client.get("/v1/deals").headers.get("cache-control") == "no-store"


def test_pay_link_tokens_never_reach_the_request_log(
    client: TestClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given a pay link token (valid in form, for a seat that does not exist)
    token = issue_pay_link(
        services.settings.secret_key, "seat_nope", datetime(2100, 1, 1, tzinfo=UTC)
    )

    # when it is opened through the API and the page
    with caplog.at_level(logging.INFO, logger="pintuan.http"):
        client.get(f"/v1/pay-links/{token}")
        client.get(f"/pay/{token}")

    # then the log names the routes, not the token
    logged = [r for r in caplog.records if r.name == "pintuan.http"]
    paths = [getattr(r, "path", None) for r in logged]
    assert "/v1/pay-links/{token}" in paths
    assert "/pay/{token}" in paths
    assert all(token not in r.getMessage() + repr(vars(r)) for r in logged)


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Any]]:
    """No PINTUAN_* variable nor .env file; the server start is recorded instead of run, with
    whether the heap was settled before it (see kit/heap.py)."""
    for name in list(os.environ):
        if name.startswith("PINTUAN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PINTUAN_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    started: list[Any] = []
    settled: list[bool] = []
    monkeypatch.setattr("pintuan.kit.heap.settle_heap", lambda: settled.append(True))
    # The server's logging would go to the runner's stream, closed once the command returns:
    # every later test of this process logging a request would fail to write its line.
    monkeypatch.setattr("pintuan.kit.logs.configure_logging", lambda level: None)
    monkeypatch.setattr(
        "uvicorn.run", lambda app, **options: started.append({**options, "settled": settled[:]})
    )
    get_settings.cache_clear()
    yield started
    get_settings.cache_clear()


def test_serve_refuses_a_network_address_when_the_environment_is_not_named(
    bare_environment: list[Any],
) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", EVERY_INTERFACE, "--no-worker"])
    assert result.exit_code == 1
    assert "PINTUAN_ENV=prod" in result.output
    assert "PINTUAN_ENV=dev" in result.output
    assert bare_environment == []


def test_serve_listens_on_loopback_without_any_setting(bare_environment: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--no-worker"])
    assert result.exit_code == 0, result.output
    assert bare_environment[0]["host"] == "127.0.0.1"
    assert bare_environment[0]["settled"] == [True]  # once, before the first request


def test_serve_runs_the_standard_event_loop_unless_uvloop_is_asked_for(
    bare_environment: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CliRunner().invoke(cli, ["serve", "--no-worker"]).exit_code == 0
    monkeypatch.setenv("PINTUAN_EVENT_LOOP", "uvloop")
    get_settings.cache_clear()
    assert CliRunner().invoke(cli, ["serve", "--no-worker"]).exit_code == 0
    monkeypatch.setenv("PINTUAN_EVENT_LOOP", "tokio")
    get_settings.cache_clear()
    refused = CliRunner().invoke(cli, ["serve", "--no-worker"])
    assert [options["loop"] for options in bare_environment] == ["asyncio", "uvloop"]
    assert refused.exit_code != 0
    assert "PINTUAN_EVENT_LOOP: Input should be 'asyncio' or 'uvloop'" in refused.output


def test_serve_listens_on_the_network_when_dev_is_asked_for_explicitly(
    bare_environment: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINTUAN_ENV", "dev")
    result = CliRunner().invoke(cli, ["serve", "--host", EVERY_INTERFACE, "--no-worker"])
    assert result.exit_code == 0, result.output
    assert bare_environment[0]["host"] == EVERY_INTERFACE


def test_a_refused_prod_secret_is_never_printed(
    bare_environment: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given prod with a secret that is too short
    secret = "too-short-Zq9XwV"
    monkeypatch.setenv("PINTUAN_ENV", "prod")
    monkeypatch.setenv("PINTUAN_SECRET_KEY", secret)

    # when the server is started
    result = CliRunner().invoke(cli, ["serve", "--no-worker"])

    # then it is refused, saying what to set, and no part of the secret is shown
    assert result.exit_code == 1
    assert "PINTUAN_SECRET_KEY" in result.output
    assert "Zq9X" not in result.output
    assert "too-short" not in result.output
    assert bare_environment == []
