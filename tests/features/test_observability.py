"""The worker survives a failing task; /metrics counts what happens; /readyz says when the worker
is behind."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa
from sqlalchemy import select

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxProvider
from pintuan.services import Services
from pintuan.teams import tasks as team_tasks
from pintuan.teams.models import Team
from pintuan.worker import MAX_TASK_BACKOFF_SECONDS, TaskBackoff, Worker
from tests.conftest import make_settings
from tests.factories import create_account, create_deal, create_merchant


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def figure(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def start_teams(client: TestClient, services: Services, count: int, team_size: int = 3) -> str:
    deal = create_deal(services.db, create_merchant(services.db), team_size=team_size)
    for _ in range(count):
        shopper = create_account(services)
        started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
        assert started.status_code == 201, started.text
    return deal.id


def statuses(services: Services, model: Any) -> list[str]:
    return services.db.run_sync(lambda s: sorted(s.scalars(select(model.status))), write=False)


# ------------------------------------------------------------------ the worker's tasks


def test_a_task_that_raises_backs_off_while_the_other_tasks_run(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    # A free leader seat (paid as it is taken) keeps the team forming when the joiner's hold
    # lapses, so that only the teams task can fail it.
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, leader_price=0)
    leader, joiner = create_account(services), create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=joiner.headers)
    assert joined.status_code == 201, joined.text
    clock.offset = timedelta(hours=25)  # the joiner's hold and the team's window have passed
    real_close = team_tasks.close_expired_teams
    tries = {"n": 0}

    def broken_close(db: Any, batch: int, lease: Any) -> int:
        tries["n"] += 1
        raise RuntimeError("a row the sweep cannot read")

    monkeypatch.setattr(team_tasks, "close_expired_teams", broken_close)
    timer = FakeClock()
    worker = Worker(services, TaskBackoff(timer))
    failures_before = figure("pintuan_worker_task_failures_total", task="teams")

    with caplog.at_level(logging.ERROR, logger="pintuan.worker"):
        first = worker.tick()

    assert tries["n"] == 1
    assert first.holds_released == 1  # the holds task ran in the same tick
    assert first.events_dispatched >= 1  # and so did the outbox
    assert statuses(services, Team) == ["forming"]
    failed = [r for r in caplog.records if r.getMessage() == "worker task failed"]
    assert [(r.task, r.retry_in_seconds) for r in failed] == [("teams", 1.0)]  # type: ignore[attr-defined]
    assert "RuntimeError: a row the sweep cannot read" in failed[0].error  # type: ignore[attr-defined]
    assert figure("pintuan_worker_task_failures_total", task="teams") == failures_before + 1

    worker.tick()
    assert tries["n"] == 1  # backing off: not tried again at once
    timer.now += 1.0
    worker.tick()
    assert tries["n"] == 2  # tried after 1 s, failed again: now it waits 2 s
    timer.now += 1.5
    worker.tick()
    assert tries["n"] == 2
    timer.now += 0.5
    worker.tick()
    assert tries["n"] == 3

    monkeypatch.setattr(team_tasks, "close_expired_teams", real_close)
    timer.now += 4.0
    assert worker.tick().teams_failed == 1
    assert statuses(services, Team) == ["failed"]
    assert worker.backoff.failures("teams") == 0  # a success forgets the failures


def test_the_backoff_doubles_up_to_five_minutes() -> None:
    backoff = TaskBackoff(FakeClock())

    delays = [backoff.failed("outbox") for _ in range(12)]

    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == MAX_TASK_BACKOFF_SECONDS == 300.0


def test_an_unexpected_error_on_one_provider_call_leaves_the_others_and_is_retried(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    friend = create_account(services)
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
    for who, seat in ((leader, started["seat"]), (friend, joined.json()["seat"])):
        paid = client.post(f"/v1/seats/{seat['id']}/payments", json={}, headers=who.headers)
        client.post(f"/v1/test_helpers/payments/{paid.json()['id']}/succeed", headers=who.headers)
    real_capture = SandboxProvider.capture
    broken: list[str] = []

    def capture(self: SandboxProvider, ref: str, amount: int, key: str) -> None:
        if not broken or key == broken[0]:
            broken.append(key)
            raise KeyError("a field the adapter did not expect")
        real_capture(self, ref, amount, key)

    monkeypatch.setattr(SandboxProvider, "capture", capture)
    before = figure("pintuan_provider_call_failures_total", provider="sandbox", action="capture")

    report = Worker(services).tick()

    assert (report.provider_calls, report.provider_failures) == (1, 1)
    after = figure("pintuan_provider_call_failures_total", provider="sandbox", action="capture")
    assert after == before + 1
    assert statuses(services, Payment) == ["authorized", "captured"]
    monkeypatch.setattr(SandboxProvider, "capture", real_capture)
    clock.offset = timedelta(minutes=1)  # past the retry's backoff
    Worker(services).run_until_idle()
    assert statuses(services, Payment) == ["captured", "captured"]


# ------------------------------------------------------------------ /metrics


def test_metrics_count_requests_by_route_template_never_the_raw_path(
    client: TestClient, services: Services
) -> None:
    before = figure(
        "pintuan_http_requests_total", method="GET", route="/v1/teams/{team_id}", status="404"
    )

    client.get("/v1/teams/team_secret_looking_id")
    text = client.get("/metrics").text

    assert (
        figure(
            "pintuan_http_requests_total", method="GET", route="/v1/teams/{team_id}", status="404"
        )
        == before + 1
    )
    assert "team_secret_looking_id" not in text
    assert (
        'pintuan_http_request_duration_seconds_bucket{le="0.002",method="GET",route="/v1/teams/{team_id}"}'
        in text
    )


def test_metrics_count_joins_refusals_and_team_outcomes(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    leader = create_account(services)
    team = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()["team"]
    joins = figure("pintuan_joins_total", kind="join")
    full = figure("pintuan_join_refusals_total", code="team_full")
    failed = figure("pintuan_team_outcomes_total", outcome="failed")

    replies = [
        client.post(f"/v1/teams/{team['id']}/seats", headers=create_account(services).headers)
        for _ in range(3)
    ]
    clock.offset = timedelta(hours=25)
    Worker(services).run_until_idle()

    assert [r.status_code for r in replies] == [201, 409, 409]
    assert figure("pintuan_joins_total", kind="join") == joins + 1
    assert figure("pintuan_join_refusals_total", code="team_full") == full + 2
    assert figure("pintuan_team_outcomes_total", outcome="failed") == failed + 1


def test_metrics_show_the_queues_and_the_sweep_lag(client: TestClient, services: Services) -> None:
    start_teams(client, services, 2)
    text = client.get("/metrics").text
    assert "pintuan_outbox_waiting 2.0" in text or "pintuan_outbox_waiting 4.0" in text

    clock.offset = timedelta(hours=25)
    Worker(services).tick()

    lag = figure("pintuan_sweep_lag_seconds", work="teams")
    assert 3600 - 60 < lag < 3600 + 60  # the windows closed an hour before this tick
    assert figure("pintuan_sweep_lag_seconds", work="calls") == 0.0
    assert "pintuan_outbox_waiting 0.0" in client.get("/metrics").text


def test_metrics_ask_for_the_token_when_one_is_set(services: Services) -> None:
    settings = make_settings(services.settings.database_url, metrics_token="s3cret-scraper")
    guarded = build_services(settings)
    with TestClient(create_app(settings, guarded), raise_server_exceptions=False) as client:
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope-ü".encode()})
        right = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scraper"})

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "pintuan_http_requests_total" in right.text


# ------------------------------------------------------------------ /readyz


def test_readiness_fails_while_the_worker_lags_and_says_what_lags(
    client: TestClient, services: Services
) -> None:
    start_teams(client, services, 1)
    assert client.get("/readyz").json()["lag_seconds"] == {"holds": 0, "teams": 0, "calls": 0}
    clock.offset = timedelta(minutes=10, seconds=200)  # the hold ran out 200 s ago: under 300

    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert 190 < ready.json()["lag_seconds"]["holds"] < 210

    clock.offset = timedelta(hours=24, minutes=6)  # the team's window closed 6 min ago
    lagging = client.get("/readyz")
    assert lagging.status_code == 503
    problem = lagging.json()
    assert problem["code"] == "worker_lagging"
    assert "forming teams past their window" in problem["detail"]
    assert "held seats past their hold" in problem["detail"]
    assert problem["max_lag_seconds"] == 300

    Worker(services).run_until_idle()
    assert client.get("/readyz").status_code == 200


# ------------------------------------------------------------------ the database going away


@pytest.mark.parametrize(
    "outage",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        sa.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
    ],
    ids=["driver", "sqlalchemy"],
)
def test_a_database_that_went_away_is_a_503_with_retry_after_not_a_500(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch, outage: Exception
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise outage

    monkeypatch.setattr(services.db, "run_raw", gone)
    before = figure(
        "pintuan_http_requests_total",
        method="POST",
        route="/v1/deals/{deal_id}/teams",
        status="503",
    )

    answer = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)

    assert (answer.status_code, answer.json()["code"]) == (503, "database_unavailable")
    assert answer.headers["retry-after"] == "1"
    after = figure(
        "pintuan_http_requests_total",
        method="POST",
        route="/v1/deals/{deal_id}/teams",
        status="503",
    )
    assert after == before + 1


def test_a_bug_that_is_not_an_outage_stays_a_500(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sa.ProgrammingError("SELECT nonsense", {}, ValueError("syntax error"))

    monkeypatch.setattr(services.db, "run_raw", broken)

    answer = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)

    assert (answer.status_code, answer.json()["code"]) == (500, "internal_error")
