"""A long report never stalls a join: on SQLite, where reads run on the event loop, reports run
in a worker thread; on PostgreSQL every unit of work already does. Nor does the audit, a pass
over every table, hold up the lists run as reports: it runs in a lane of its own.

The report is made long the one way a test can without a day of data: its query takes a second
and a half longer (a blocking sleep in the service, as a slow scan blocks). Had it run on the
event loop, the join sent meanwhile would have waited for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pintuan.app import create_app
from pintuan.audit import api as audit_api
from pintuan.domain.roles import Role
from pintuan.growth import service as growth
from pintuan.kit.serving import free_port, start_in_thread
from pintuan.services import Services
from tests.factories import create_account, create_deal, create_merchant

REPORT_SECONDS = 1.5


@pytest.fixture
def served(services: Services) -> Iterator[str]:
    port = free_port()
    server = start_in_thread(create_app(services.settings, services), port)
    try:
        yield server.wait_ready("/healthz")
    finally:
        server.stop()


def test_a_join_completes_while_a_long_report_runs(
    served: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3)
    operator = create_account(services, role=Role.OPERATOR)
    leader, member = create_account(services), create_account(services)
    real_funnel = growth.funnel
    report_started = threading.Event()

    def long_funnel(*args: Any, **kwargs: Any) -> Any:
        report_started.set()
        time.sleep(REPORT_SECONDS)
        return real_funnel(*args, **kwargs)

    monkeypatch.setattr(growth, "funnel", long_funnel)
    with httpx.Client(base_url=served, timeout=30) as client:
        team = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers)
        assert team.status_code == 201, team.text
        team_id = team.json()["team"]["id"]
        report: dict[str, Any] = {}

        def run_report() -> None:
            answer = client.get("/v1/growth/funnel", headers=operator.headers)
            report.update(status=answer.status_code, finished=time.monotonic())

        reporter = threading.Thread(target=run_report)
        reporter.start()
        assert report_started.wait(10)
        started = time.monotonic()
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=member.headers)
        join_finished = time.monotonic()
        reporter.join(30)
    assert joined.status_code == 201, joined.text
    assert report["status"] == 200
    assert join_finished < report["finished"], "the join waited for the report"
    assert join_finished - started < REPORT_SECONDS / 2


def test_a_merchants_orders_answer_while_an_audit_runs(
    served: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an audit that goes on until the test lets it end (as one over a big database would)
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    operator = create_account(services, role=Role.OPERATOR)
    real_audit = audit_api.audit_database
    audit_started, audit_may_end = threading.Event(), threading.Event()

    def long_audit(*args: Any) -> Any:
        audit_started.set()
        audit_may_end.wait(REPORT_SECONDS * 4)
        return real_audit(*args)

    monkeypatch.setattr(audit_api, "audit_database", long_audit)
    with httpx.Client(base_url=served, timeout=30) as client:
        audit: dict[str, Any] = {}

        def run_audit() -> None:
            answer = client.post("/v1/audit/runs", headers=operator.headers)
            audit.update(status=answer.status_code)

        auditor = threading.Thread(target=run_audit)
        auditor.start()
        try:
            assert audit_started.wait(10)
            # when the merchant's staff read their orders, also a report, meanwhile
            orders = client.get(
                f"/v1/merchants/{merchant.id}/orders",
                headers=staff.headers,
                timeout=REPORT_SECONDS * 2,
            )
            # then they are answered while the audit still runs, in a lane of its own
            assert orders.status_code == 200, orders.text
            assert "status" not in audit
        finally:
            audit_may_end.set()
            auditor.join(30)
    assert audit["status"] == 201
