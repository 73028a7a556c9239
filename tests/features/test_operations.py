"""Health probes and request ids."""

from __future__ import annotations

from fastapi.testclient import TestClient


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
