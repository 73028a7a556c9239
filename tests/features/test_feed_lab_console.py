"""The operator console's feed lab: the latest simulation's chart and figures, and a policy
judged on logged slates from the page, in English and Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.domain.feed_simulator import SimulationSettings, simulate
from pintuan.domain.roles import Role
from pintuan.feed.simulation import write_simulation
from pintuan.services import Services
from tests.conftest import make_settings
from tests.console_data import HTML, log_in, speak_chinese
from tests.factories import create_account
from tests.features.feed_logs import log_slates

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def lab(database_url: str, services: Services, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(database_url, feed_simulation_dir=tmp_path / "sim")
    simulating = build_services(settings, services.db)
    with TestClient(create_app(settings, simulating), raise_server_exceptions=False) as client:
        yield client


def operator_client(lab: TestClient, services: Services, *, chinese: bool = False) -> TestClient:
    operator = create_account(services, role=Role.OPERATOR)
    if chinese:
        speak_chinese(services, operator)
    log_in(lab, operator)
    return lab


def test_the_lab_says_how_to_run_a_simulation_when_none_was(
    lab: TestClient, services: Services
) -> None:
    client = operator_client(lab, services)

    page = client.get("/console/operator/feed/lab", headers=HTML)
    chart = client.get("/console/operator/feed/lab/chart.png")

    assert page.status_code == 200
    assert "pintuan feed simulate" in page.text
    assert chart.status_code == 404


def test_the_lab_shows_the_latest_simulation(
    lab: TestClient, services: Services, tmp_path: Path
) -> None:
    small = SimulationSettings(visits=60, shoppers=20, catalogue=60, pool=15, slots=4, seed=3)
    result = simulate(small)
    write_simulation(result, tmp_path / "sim")
    client = operator_client(lab, services)

    page = client.get("/console/operator/feed/lab", headers=HTML)
    chart = client.get("/console/operator/feed/lab/chart.png")

    assert page.status_code == 200
    assert 'src="/console/operator/feed/lab/chart.png"' in page.text
    clicks = round(result.runs["linucb"].cumulative_reward)
    assert f">{clicks}<" in page.text.replace(",", "")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")


def test_a_policy_is_judged_on_the_logged_slates_from_the_page(
    lab: TestClient, services: Services
) -> None:
    services.db.run_sync(lambda s: log_slates(s, slates=120, start=START))
    client = operator_client(lab, services)

    page = client.get(
        "/console/operator/feed/lab",
        params={"policy": "random", "first": "2026-11-20", "last": "2026-11-20"},
        headers=HTML,
    )

    assert page.status_code == 200
    assert 'id="evaluation"' in page.text
    for label in ("Logged (actual)", "IPS", "SNIPS", "DR"):
        assert label in page.text
    assert "120 slates" in page.text


def test_refusals_are_words_on_the_page_in_either_language(
    lab: TestClient, services: Services
) -> None:
    client = operator_client(lab, services)

    unknown = client.get(
        "/console/operator/feed/lab",
        params={"policy": "oracle", "first": "2026-11-20", "last": "2026-11-20"},
        headers=HTML,
    )
    half = client.get("/console/operator/feed/lab", params={"policy": "random"}, headers=HTML)
    operator_client(lab, services, chinese=True)
    empty = client.get(
        "/console/operator/feed/lab",
        params={"policy": "random", "first": "2026-11-20", "last": "2026-11-20"},
        headers=HTML,
    )

    assert "No policy has that name" in unknown.text
    assert "Name a policy and choose both days." in half.text
    assert "这些天没有展示过版面" in empty.text
    assert "信息流实验室" in empty.text
