"""One Idempotency-Key, ten requests at once over three API processes: exactly one payment and
one provider checkout, and every answer is either the first one, replayed, or 409
``idempotency_in_progress``. Checkouts are counted at the sandbox provider's own records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent
from pintuan.services import Services
from tests.concurrency.cluster import (
    Call,
    Cluster,
    Reply,
    assert_no_server_errors,
    create_shoppers,
    running_cluster,
)
from tests.factories import create_deal, create_merchant

SERVERS = 3
RACERS = 10


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def count(services: Services, table: Any) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(table))))


def assert_one_answer_or_in_progress(cluster: Cluster, replies: Sequence[Reply]) -> None:
    assert_no_server_errors(cluster, replies)
    answered = [r for r in replies if r.status == 201]
    others = [r for r in replies if r.status != 201]
    assert answered, cluster.logs()
    assert all(r.body == answered[0].body for r in answered)
    assert all(r.outcome == "409 idempotency_in_progress" for r in others), others


def test_ten_payments_of_a_seat_with_one_key_make_one_payment_and_one_checkout(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    [shopper] = create_shoppers(services, 1)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    seat_id = started.json()["seat"]["id"]
    key = (("Idempotency-Key", "pay-once"),)

    replies = cluster.fire(
        [Call("POST", f"/v1/seats/{seat_id}/payments", shopper.token, {}, headers=key)] * RACERS
    )

    assert_one_answer_or_in_progress(cluster, replies)
    assert count(services, Payment) == 1
    assert count(services, SandboxIntent) == 1


def test_ten_top_ups_with_one_key_make_one_payment_and_one_checkout(
    cluster: Cluster, services: Services
) -> None:
    [shopper] = create_shoppers(services, 1)
    body = {"amount": {"amount": 5000, "currency": "USD"}}
    key = (("Idempotency-Key", "top-up-once"),)

    replies = cluster.fire(
        [Call("POST", "/v1/me/wallet/topups", shopper.token, body, headers=key)] * RACERS
    )

    assert_one_answer_or_in_progress(cluster, replies)
    assert count(services, Payment) == 1
    assert count(services, SandboxIntent) == 1
