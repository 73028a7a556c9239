"""Health probes and request ids."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.app import create_app
from pintuan.deals.models import Deal
from pintuan.deals.tasks import end_past_deals
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.roles import Role
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_every_answer_carries_a_request_id_and_keeps_the_callers(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    kept = client.get("/healthz", headers={"X-Request-ID": "trace-123"}).headers["x-request-id"]

    assert generated.startswith("req_")
    assert kept == "trace-123"


def test_the_openapi_document_lists_the_deal_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/v1/deals", "/v1/deals/{deal_id}", "/v1/deals/{deal_id}/publish"} <= set(paths)


def test_a_client_that_leaves_mid_request_is_not_an_internal_error(services: Services) -> None:
    staff = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    app = create_app(services.settings, services)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/deals/deal_x/publish",
        "raw_path": b"/v1/deals/deal_x/publish",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
        "headers": [
            (b"authorization", f"Bearer {staff.token}".encode()),
            (b"idempotency-key", b"k1"),
        ],
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]


def statuses_of_deals(services: Services) -> list[str]:
    return services.db.run_sync(lambda s: sorted(s.scalars(select(Deal.status))), write=False)


def test_the_deal_sweep_ends_at_most_one_batch_per_transaction(services: Services) -> None:
    merchant = create_merchant(services.db)
    for _ in range(5):
        create_deal(services.db, merchant)
    clock.offset = timedelta(days=8)  # every deal's end has passed

    ended = services.db.run_raw_sync(end_past_deals, 2)

    assert ended == 2
    assert statuses_of_deals(services).count(DealStatus.ENDED.value) == 2
    assert Worker(services).run_until_idle().deals_ended == 3
    assert statuses_of_deals(services) == [DealStatus.ENDED.value] * 5


# The plan that runs a ``LIMIT`` subquery again for each row of a nested loop: each run passes
# over the rows the last one locked and took, so an ``IN (SELECT … LIMIT)`` update takes them all.
NESTED_LOOP_ONLY = (
    "enable_hashjoin",
    "enable_mergejoin",
    "enable_material",
    "enable_hashagg",
    "enable_sort",
)


def test_the_sweep_keeps_to_its_batch_whatever_plan_postgresql_chooses(services: Services) -> None:
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL's plans; SQLite has one writer and no row locks")
    merchant = create_merchant(services.db)
    for _ in range(5):
        create_deal(services.db, merchant)
    clock.offset = timedelta(days=8)

    def sweep_in_nested_loops(tx: RawTx) -> int:
        for setting in NESTED_LOOP_ONLY:
            tx.execute(Sql(f"SET LOCAL {setting} = off"))
        return end_past_deals(tx, 2)

    assert services.db.run_raw_sync(sweep_in_nested_loops) == 2
    assert statuses_of_deals(services).count(DealStatus.ENDED.value) == 2
