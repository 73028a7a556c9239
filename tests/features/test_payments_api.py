"""Paying through the sandbox: signed webhooks, duplicates, hosted checkout, retries."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pintuan.domain.payments import ProviderError
from pintuan.kit.time import utc_now
from pintuan.payments.models import Payment, WebhookEvent
from pintuan.payments.providers.sandbox import (
    SIGNATURE_HEADER,
    SandboxOperation,
    SandboxProvider,
    sign,
)
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.round_trips import counted


def held_seat_with_payment(
    client: TestClient, services: Services, team_size: int = 2
) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    deal = create_deal(services.db, create_merchant(services.db), team_size=team_size)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers).json()
    payment = client.post(
        f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=shopper.headers
    )
    assert payment.status_code == 201, payment.text
    return shopper, started, payment.json()


def sandbox(services: Services) -> SandboxProvider:
    provider = services.providers["sandbox"]
    assert isinstance(provider, SandboxProvider)
    return provider


def stored_events(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(WebhookEvent)))


def test_a_payment_offers_the_hosted_checkout_and_is_reused_until_finished(
    client: TestClient, services: Services
) -> None:
    shopper, started, payment = held_seat_with_payment(client, services)

    again = client.post(
        f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=shopper.headers
    ).json()
    page = client.get(payment["next_action"]["url"].removeprefix("http://127.0.0.1:8000"))

    assert payment["status"] == "requires_action"
    assert payment["style"] == "hold"
    assert payment["amount"] == {"amount": 1500, "currency": "USD"}
    assert again["id"] == payment["id"]
    assert page.status_code == 200
    assert "$15.00" in page.text
    assert "Pay" in page.text


def test_paying_on_the_hosted_page_authorises_through_the_webhook(
    client: TestClient, services: Services
) -> None:
    _, started, payment = held_seat_with_payment(client, services)
    ref = payment["next_action"]["url"].rsplit("/", 1)[1]

    response = client.post(f"/sandbox/checkout/{ref}/pay", follow_redirects=False)

    assert response.status_code == 303
    assert services.db.run_sync(lambda s: s.get(Payment, payment["id"]).status) == "authorized"
    team = client.get(f"/v1/teams/{started['team']['id']}").json()
    assert team["seats_paid"] == 1
    assert stored_events(services) == 1


def test_a_webhook_with_a_bad_signature_is_refused_and_stored_nowhere(
    client: TestClient, services: Services
) -> None:
    _, _, payment = held_seat_with_payment(client, services)
    ref = payment["next_action"]["url"].rsplit("/", 1)[1]
    body = json.dumps(
        {"id": "evt_forged", "type": "payment.authorized", "data": {"ref": ref}}
    ).encode()
    now = int(time.time())

    forged = client.post(
        "/v1/webhooks/sandbox",
        content=body,
        headers={SIGNATURE_HEADER: sign("wrong secret", body, now)},
    )
    unsigned = client.post("/v1/webhooks/sandbox", content=body)

    assert (forged.status_code, forged.json()["code"]) == (400, "invalid_signature")
    assert unsigned.status_code == 400
    assert stored_events(services) == 0
    assert services.db.run_sync(lambda s: s.get(Payment, payment["id"]).status) == (
        "requires_action"
    )


def test_a_stale_webhook_is_refused(client: TestClient, services: Services) -> None:
    _, _, payment = held_seat_with_payment(client, services)
    ref = payment["next_action"]["url"].rsplit("/", 1)[1]
    body = json.dumps(
        {"id": "evt_old", "type": "payment.authorized", "data": {"ref": ref}}
    ).encode()
    old = int(time.time()) - 301

    response = client.post(
        "/v1/webhooks/sandbox",
        content=body,
        headers={SIGNATURE_HEADER: sign(services.settings.sandbox_secret(), body, old)},
    )

    assert (response.status_code, response.json()["code"]) == (400, "stale_signature")
    assert stored_events(services) == 0


def test_a_duplicated_webhook_changes_nothing_the_second_time(
    client: TestClient, services: Services
) -> None:
    _, started, payment = held_seat_with_payment(client, services)
    ref = payment["next_action"]["url"].rsplit("/", 1)[1]
    body, headers = sandbox(services).complete_checkout(ref, approve=True)

    first = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
    second = client.post("/v1/webhooks/sandbox", content=body, headers=headers)

    assert first.json() == {"received": True, "duplicate": False}
    assert second.json() == {"received": True, "duplicate": True}
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["seats_paid"] == 1
    assert stored_events(services) == 1


def test_a_declined_payment_leaves_the_seat_held_for_another_try(
    client: TestClient, services: Services
) -> None:
    shopper, started, payment = held_seat_with_payment(client, services)

    failed = client.post(
        f"/v1/test_helpers/payments/{payment['id']}/fail", headers=shopper.headers
    ).json()
    retry = client.post(
        f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=shopper.headers
    ).json()

    assert failed["status"] == "failed"
    assert retry["id"] != payment["id"]
    assert retry["status"] == "requires_action"


def test_another_shoppers_seat_cannot_be_paid_for(client: TestClient, services: Services) -> None:
    _, started, _ = held_seat_with_payment(client, services)
    stranger = create_account(services)

    response = client.post(
        f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=stranger.headers
    )

    assert response.status_code == 404


def test_an_unknown_provider_is_a_clear_error(client: TestClient, services: Services) -> None:
    shopper, started, _ = held_seat_with_payment(client, services)

    response = client.post(
        f"/v1/seats/{started['seat']['id']}/payments",
        json={"provider": "paypal"},
        headers=shopper.headers,
    )

    assert (response.status_code, response.json()["code"]) == (422, "unknown_provider")


def test_a_failing_capture_is_retried_with_backoff_and_done_once(
    client: TestClient, services: Services, monkeypatch: Any
) -> None:
    shopper, started, payment = held_seat_with_payment(client, services, team_size=2)
    friend = create_account(services)
    seat = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers).json()[
        "seat"
    ]
    friend_payment = client.post(
        f"/v1/seats/{seat['id']}/payments", json={}, headers=friend.headers
    ).json()
    client.post(f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=shopper.headers)
    client.post(f"/v1/test_helpers/payments/{friend_payment['id']}/succeed", headers=friend.headers)
    real_capture = SandboxProvider.capture
    outage = {"left": 3}

    def flaky_capture(self: SandboxProvider, ref: str, amount: int, key: str) -> None:
        if outage["left"]:
            outage["left"] -= 1
            raise ProviderError("sandbox: 503 Service Unavailable")
        real_capture(self, ref, amount, key)

    monkeypatch.setattr(SandboxProvider, "capture", flaky_capture)
    worker = Worker(services)
    first = worker.tick()
    attempts = services.db.run_sync(lambda s: [p.attempts for p in s.query(Payment).all()])
    services.db.run_sync(lambda s: s.execute(update(Payment).values(next_attempt_at=utc_now())))
    worker.run_until_idle()
    services.db.run_sync(lambda s: s.execute(update(Payment).values(next_attempt_at=utc_now())))
    worker.run_until_idle()

    assert first.provider_failures == 2
    assert sorted(attempts) == [1, 1]
    statuses = services.db.run_sync(lambda s: sorted(p.status for p in s.query(Payment).all()))
    assert statuses == ["captured", "captured"]
    operations = services.db.run_sync(
        lambda s: s.scalar(select(func.count()).select_from(SandboxOperation))
    )
    assert operations == 2  # one capture per payment, however many tries


def test_a_confirmation_on_postgresql_takes_three_round_trips_and_a_repeat_two(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    """The notification stored with its payment found; the locks, the payment's news and its
    seat, team and deal read under them (the team's count and the deal's tipping point
    included, so the payment knows at once whether it fills the team); its journal, its event,
    the seat paid and the team's count with the COMMIT. The seat that fills the team takes two
    more: its event and the team's end with its seats confirmed and the deal's options read;
    the team's event with the captures owed and the charges to earn. A repeat: the store that
    finds it there, and the COMMIT."""
    if services.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    _, started, payment = held_seat_with_payment(client, services, team_size=2)
    friend = create_account(services)
    seat = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
    friend_payment = client.post(
        f"/v1/seats/{seat.json()['seat']['id']}/payments", json={}, headers=friend.headers
    ).json()
    client.get("/healthz")

    def deliver(paid: dict[str, Any], name: str, again: bool = False) -> list[int]:
        """The round trips of the notification's delivery, then of its repeat when ``again``."""
        ref = paid["next_action"]["url"].rsplit("/", 1)[1]
        body, headers = sandbox(services).complete_checkout(ref, approve=True)
        with counted(services, tmp_path / f"{name}.trace") as trips:
            answer = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
        assert answer.json() == {"received": True, "duplicate": False}
        if again:
            with counted(services, tmp_path / f"{name}-again.trace") as repeated:
                answer = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
            assert answer.json() == {"received": True, "duplicate": True}
            trips += repeated
        return trips

    assert deliver(payment, "first", again=True) == [3, 2]
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["seats_paid"] == 1
    assert deliver(friend_payment, "last") == [5]
    team = client.get(f"/v1/teams/{started['team']['id']}").json()
    assert team["status"] == "succeeded"
    statuses = services.db.run_sync(
        lambda s: sorted((p.status, p.pending_action) for p in s.query(Payment).all())
    )
    assert statuses == [("authorized", "capture"), ("authorized", "capture")]
    assert stored_events(services) == 2
