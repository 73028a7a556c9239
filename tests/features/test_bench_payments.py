"""The payments benchmark's seed and its check after the runs (``bench/seed_payments.py``).

The benchmark trusts its figures only when the check passes, so the check must pass on what one
delivery of each notification leaves, and must fail on anything else.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from bench import seed_payments
from pintuan.events.service import record_event
from pintuan.kit.rawsql import raw_tx
from pintuan.payments.providers.sandbox import SIGNATURE_HEADER, sign
from pintuan.services import Services
from pintuan.teams.models import Seat

TEAM_SIZE = 3


def deliver(client: TestClient, services: Services, row: dict[str, str]) -> dict[str, Any]:
    body = row["body"].encode()
    signature = sign(services.settings.sandbox_secret(), body, int(time.time()))
    response = client.post(
        "/v1/webhooks/sandbox",
        content=body,
        headers={SIGNATURE_HEADER: signature, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_seeded_notifications_are_distinct_and_the_check_passes_before_any_delivery(
    services: Services,
) -> None:
    seeded = seed_payments.seed(services, 2 * TEAM_SIZE, TEAM_SIZE, 2)

    found = seed_payments.verify(services, seeded)

    rows = seeded["payments"]
    assert len({r["payment"] for r in rows}) == len({r["event"] for r in rows}) == 2 * TEAM_SIZE
    assert [json.loads(r["body"])["type"] for r in rows] == ["payment.authorized"] * len(rows)
    assert found["ok"], found["problems_shown"]
    assert found["not_delivered"] == 2 * TEAM_SIZE
    assert found["teams_forming"] == 2


def test_check_passes_after_each_notification_is_delivered_once_and_some_again(
    client: TestClient, services: Services
) -> None:
    seeded = seed_payments.seed(services, 2 * TEAM_SIZE, TEAM_SIZE, 2)
    rows = seeded["payments"]
    # The whole first team and one seat of the second; then the first two again.
    answers = [deliver(client, services, row) for row in rows[: TEAM_SIZE + 1]]
    again = [deliver(client, services, row) for row in rows[:2]]

    found = seed_payments.verify(services, seeded)

    assert [a["duplicate"] for a in answers] == [False] * (TEAM_SIZE + 1)
    assert [a["duplicate"] for a in again] == [True, True]
    assert found["ok"], found["problems_shown"]
    assert found["delivered"] == found["authorized_once"] == TEAM_SIZE + 1
    assert (found["seats_confirmed"], found["seats_paid"]) == (TEAM_SIZE, 1)
    assert (found["teams_full"], found["teams_succeeded"], found["teams_forming"]) == (1, 1, 1)
    assert found["not_delivered"] == TEAM_SIZE - 1
    assert found["ledger_breaches"] == 0


def test_check_fails_when_a_payment_was_announced_twice(
    client: TestClient, services: Services
) -> None:
    seeded = seed_payments.seed(services, TEAM_SIZE, TEAM_SIZE, 1)
    row = seeded["payments"][0]
    deliver(client, services, row)
    services.db.run_sync(
        lambda s: record_event(raw_tx(s), "payment.authorized", row["payment"], seat_id=row["seat"])
    )

    found = seed_payments.verify(services, seeded)

    assert not found["ok"]
    assert any(row["payment"] in problem for problem in found["problems_shown"])


def test_check_fails_when_a_seat_is_paid_without_its_notification(
    services: Services,
) -> None:
    seeded = seed_payments.seed(services, TEAM_SIZE, TEAM_SIZE, 1)
    row = seeded["payments"][1]
    services.db.run_sync(
        lambda s: s.execute(update(Seat).where(Seat.id == row["seat"]).values(status="paid"))
    )

    found = seed_payments.verify(services, seeded)

    assert not found["ok"]
    assert found["problems_shown"] == [
        f"seat {row['seat']} of undelivered payment {row['payment']} is paid"
    ]
