"""Events out: endpoints registered by apps hear their merchants' events, signed as Standard
Webhooks, at least once, in order, retried, logged, replayable, and turned off when they keep
failing. Receivers are real HTTP servers on loopback; signatures are checked by the
``standardwebhooks`` library itself."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pintuan.app import create_app
from pintuan.config import Environment
from pintuan.domain.apps import AppStatus
from pintuan.domain.roles import Role
from pintuan.errors import InvalidInput
from pintuan.kit.time import clock, utc_now
from pintuan.notifications.models import Notification
from pintuan.services import Services
from pintuan.webhooks import tasks
from pintuan.webhooks.addresses import check_url
from pintuan.webhooks.models import WebhookDelivery, WebhookEndpoint
from pintuan.webhooks.service import ensure_manifest_endpoint
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes.webhook_receiver import Receiver
from tests.features.test_teams_api import join, pay, start
from tests.features.webhooks_world import (
    AppHeaders,
    PartnerApp,
    app_client,
    app_token,
    create_partner_app,
    revoke_installations,
    serving_apps,
    set_app,
)

__all__ = ["app_client"]  # the fixture, used by name

ALL_EVENTS = ["order.created", "seat.paid", "seat.refunded", "team.failed", "team.succeeded"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().up()
    yield found
    found.down()


def register(
    client: TestClient, headers: AppHeaders, app: PartnerApp, url: str, events: list[str]
) -> dict[str, Any]:
    response = client.post(
        "/v1/webhook_endpoints", json={"url": url, "events": events}, headers=headers(app.id)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def a_team_that_succeeds(client: TestClient, services: Services, merchant: Any) -> str:
    """Two shoppers fill a team of two and pay: two orders, two payments, one success."""
    deal = create_deal(services.db, merchant, team_size=2)
    leader, friend = create_account(services), create_account(services)
    started = start(client, leader, deal.id)
    seat = join(client, friend, started["team"]["id"]).json()["seat"]
    pay(client, leader, started["seat"]["id"])
    pay(client, friend, seat["id"])
    return str(started["team"]["id"])


def verified(secret: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every request the receiver got, checked by the Standard Webhooks verifier."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]


def deliveries_of(services: Services, endpoint_id: str) -> list[WebhookDelivery]:
    return services.db.run_sync(
        lambda s: list(
            s.query(WebhookDelivery)
            .filter_by(endpoint_id=endpoint_id)
            .order_by(WebhookDelivery.seq)
        )
    )


def endpoint_row(services: Services, endpoint_id: str) -> WebhookEndpoint:
    found = services.db.run_sync(lambda s: s.get(WebhookEndpoint, endpoint_id))
    assert found is not None
    return found


def retry_after_backoff(services: Services, *, minutes: int = 10) -> None:
    clock.advance(timedelta(minutes=minutes))
    Worker(services).run_until_idle()


# ---------------------------------------------------------------------------- the endpoints API


def test_an_app_registers_reads_changes_and_removes_an_endpoint(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    app = create_partner_app(services, create_account(services))

    created = register(client, headers, app, receiver.url, ["team.succeeded", "seat.paid"])

    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["seat.paid", "team.succeeded"]
    assert created["enabled"] is True
    listed = client.get("/v1/webhook_endpoints", headers=headers(app.id)).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    one = client.get(f"/v1/webhook_endpoints/{created['id']}", headers=headers(app.id)).json()
    assert one["secret"] == created["secret"]
    changed = client.patch(
        f"/v1/webhook_endpoints/{created['id']}",
        json={"events": ["order.created"], "enabled": False},
        headers=headers(app.id),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["order.created"]
    assert changed.json()["disabled_reason"] == "app"
    gone = client.delete(f"/v1/webhook_endpoints/{created['id']}", headers=headers(app.id))
    assert gone.status_code == 204
    assert client.get("/v1/webhook_endpoints", headers=headers(app.id)).json()["data"] == []


def test_an_app_listens_at_an_address_through_one_endpoint(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    app = create_partner_app(services, create_account(services))
    first = register(client, headers, app, receiver.url, ["seat.paid"])
    other = register(client, headers, app, receiver.url + "/other", ["team.succeeded"])

    again = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "events": ["team.failed"]},
        headers=headers(app.id),
    )
    moved = client.patch(
        f"/v1/webhook_endpoints/{other['id']}", json={"url": receiver.url}, headers=headers(app.id)
    )

    for refused in (again, moved):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "webhook_endpoint_exists"
        assert refused.json()["endpoint_id"] == first["id"]
    rows = {
        e.id: (e.url, e.events)
        for e in services.db.run_sync(lambda s: list(s.query(WebhookEndpoint)))
    }
    assert rows == {
        first["id"]: (receiver.url, ["seat.paid"]),
        other["id"]: (receiver.url + "/other", ["team.succeeded"]),
    }
    # another app may listen at the same address: each has its own endpoint and secret
    register(
        client,
        headers,
        create_partner_app(services, create_account(services)),
        receiver.url,
        ["seat.paid"],
    )


def test_an_unknown_event_type_is_refused_and_nothing_is_registered(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    app = create_partner_app(services, create_account(services))

    response = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "events": ["team.succeeded", "team.exploded"]},
        headers=headers(app.id),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unknown_event_type"
    assert client.get("/v1/webhook_endpoints", headers=headers(app.id)).json()["data"] == []


def test_another_apps_endpoint_looks_as_if_it_did_not_exist(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    owner = create_account(services)
    mine, theirs = create_partner_app(services, owner), create_partner_app(services, owner)
    endpoint = register(client, headers, theirs, receiver.url, ["seat.paid"])

    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/deliveries"),
        ("POST", "/rotate_secret"),
    ]:
        answer = client.request(
            method,
            f"/v1/webhook_endpoints/{endpoint['id']}{path}",
            json={"enabled": False} if method == "PATCH" else None,
            headers=headers(mine.id),
        )
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "webhook_endpoint_not_found"
    assert endpoint_row(services, endpoint["id"]).enabled is True


def test_an_app_without_the_webhooks_scope_is_refused(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    app = create_partner_app(services, create_account(services))

    response = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "events": ["seat.paid"]},
        headers=headers(app.id, scopes=("offers:read",)),
    )

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


# ---------------------------------------------------------------------------- delivery


def test_a_merchants_events_reach_the_endpoint_signed_in_order_and_once(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    endpoint = register(client, headers, app, receiver.url, ALL_EVENTS)

    team_id = a_team_that_succeeds(client, services, merchant)
    Worker(services).run_until_idle()

    messages = verified(endpoint["secret"], receiver)
    assert [m["type"] for m in messages] == [
        "order.created",
        "order.created",
        "seat.paid",
        "seat.paid",
        "team.succeeded",
    ]
    assert messages[-1]["data"]["team_id"] == team_id
    assert messages[-1]["data"]["merchant_id"] == merchant.id
    assert messages[0]["data"]["price"] == {"amount": 1500, "currency": "USD"}
    assert all(m["timestamp"].endswith("Z") for m in messages)
    # Shoppers are never named to apps.
    assert not any("user_id" in m["data"] or "member_ids" in m["data"] for m in messages)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == 5
    Worker(services).run_until_idle()
    assert len(receiver.received) == 5  # at least once, and here exactly once


def test_only_subscribed_types_of_installed_merchants_of_approved_apps_are_heard(
    app_client: tuple[TestClient, AppHeaders], services: Services
) -> None:
    client, headers = app_client
    merchant, elsewhere = create_merchant(services.db), create_merchant(services.db)
    owner = create_account(services)
    picky = create_partner_app(services, owner, installed_on=(merchant,))
    stranger = create_partner_app(services, owner, installed_on=(elsewhere,))
    revoked = create_partner_app(services, owner, installed_on=(merchant,))
    pending = create_partner_app(services, owner, installed_on=(merchant,))
    receivers = {name: Receiver().up() for name in ("picky", "stranger", "revoked", "pending")}
    try:
        register(client, headers, picky, receivers["picky"].url, ["team.succeeded"])
        register(client, headers, stranger, receivers["stranger"].url, ALL_EVENTS)
        register(client, headers, revoked, receivers["revoked"].url, ALL_EVENTS)
        register(client, headers, pending, receivers["pending"].url, ALL_EVENTS)
        revoke_installations(services, revoked.id)
        set_app(services, pending.id, status=AppStatus.PENDING.value)

        a_team_that_succeeds(client, services, merchant)
        Worker(services).run_until_idle()

        assert [json.loads(r.body)["type"] for r in receivers["picky"].received] == [
            "team.succeeded"
        ]
        assert receivers["stranger"].received == []
        assert receivers["revoked"].received == []
        assert receivers["pending"].received == []
    finally:
        for found in receivers.values():
            found.down()


def test_a_receiver_down_then_up_gets_every_event_once_in_order(
    app_client: tuple[TestClient, AppHeaders], services: Services
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    receiver = Receiver()  # not listening yet: connections are refused
    endpoint = register(client, headers, app, receiver.url, ALL_EVENTS)
    a_team_that_succeeds(client, services, merchant)

    Worker(services).run_until_idle()
    retry_after_backoff(services)
    pending = deliveries_of(services, endpoint["id"])
    assert [d.status for d in pending] == ["pending"] * 5
    # In order: only the first was tried, the others wait behind it.
    assert [d.attempts for d in pending] == [2, 0, 0, 0, 0]
    assert "ConnectError" in (pending[0].last_error or "")

    receiver.up()
    try:
        retry_after_backoff(services)
        messages = verified(endpoint["secret"], receiver)
    finally:
        receiver.down()

    assert [m["type"] for m in messages] == [d.event_type for d in pending]
    assert [r.headers["webhook-id"] for r in receiver.received] == [d.message_id for d in pending]
    assert [d.status for d in deliveries_of(services, endpoint["id"])] == ["delivered"] * 5


def test_a_slow_receiver_times_out_and_the_delivery_is_retried(
    database_url: str, services: Services
) -> None:
    settings = make_settings(database_url, webhook_timeout_seconds=0.3)
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    receiver = Receiver(delays=[1.5]).up()
    try:
        with serving_apps(settings, services) as (client, headers):
            endpoint = register(client, headers, app, receiver.url, ["order.created"])
            deal = create_deal(services.db, merchant)
            start(client, create_account(services), deal.id)
            worker = Worker(Services(settings, services.db, services.passwords))
            worker.run_until_idle()
            first = deliveries_of(services, endpoint["id"])[0]
            clock.advance(timedelta(minutes=1))
            worker.run_until_idle()
    finally:
        receiver.down()

    assert first.status == "pending"
    assert "timed out" in (first.last_error or "")
    assert first.next_attempt_at is not None
    log = client_log(services, endpoint["id"])
    assert log["status"] == "delivered"
    assert [a["status_code"] for a in log["attempts"]] == [None, 204]
    assert log["attempts"][0]["duration_ms"] >= 250
    assert len(receiver.received) == 2
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def client_log(services: Services, endpoint_id: str) -> dict[str, Any]:
    """The newest delivery as the log shows it, read through the service."""
    from pintuan.webhooks.schemas import DeliveryOut
    from pintuan.webhooks.service import list_deliveries

    app_id = endpoint_row(services, endpoint_id).app_id
    rows = services.db.run_sync(lambda s: list_deliveries(s, app_id, endpoint_id, None, 1))
    return DeliveryOut.of(rows[0]).model_dump(mode="json")


def test_a_tampered_or_stale_message_is_rejected_by_the_verifier(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    endpoint = register(client, headers, app, receiver.url, ["order.created"])
    start(client, create_account(services), create_deal(services.db, merchant).id)
    Worker(services).run_until_idle()
    [got] = receiver.received
    verifier = Webhook(endpoint["secret"])
    assert verifier.verify(got.body, got.headers)["type"] == "order.created"

    tampered = got.body.replace(b'"amount":1500', b'"amount":1')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, got.headers)
    stale = int(got.headers["webhook-timestamp"]) - 600
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(got.body, {**got.headers, "webhook-timestamp": str(stale)})
    # Re-signed by someone who knows another secret: still no match.
    forged = Webhook("whsec_" + "A" * 43).sign(
        got.headers["webhook-id"], datetime.now(UTC), got.body.decode()
    )
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(
            got.body,
            {
                **got.headers,
                "webhook-signature": forged,
                "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
            },
        )


def test_a_delivery_is_replayed_from_the_log_as_the_same_message(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    endpoint = register(client, headers, app, receiver.url, ["order.created"])
    start(client, create_account(services), create_deal(services.db, merchant).id)
    Worker(services).run_until_idle()
    log = client.get(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", headers=headers(app.id)
    ).json()
    [original] = log["data"]
    assert original["status"] == "delivered"
    assert original["attempts"][0]["status_code"] == 204

    replay = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries/{original['id']}/replay",
        headers=headers(app.id),
    )
    assert replay.status_code == 201, replay.text
    Worker(services).run_until_idle()

    first, again = receiver.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == original["message_id"]
    assert first.body == again.body
    assert Webhook(endpoint["secret"]).verify(again.body, again.headers)
    newest = client.get(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries?limit=1", headers=headers(app.id)
    ).json()
    assert newest["data"][0]["replay_of"] == original["id"]
    assert newest["data"][0]["status"] == "delivered"
    assert newest["next_cursor"] is not None
    older = client.get(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries?limit=1&cursor={newest['next_cursor']}",
        headers=headers(app.id),
    ).json()
    assert [d["id"] for d in older["data"]] == [original["id"]]
    missing = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries/whd_nothing/replay",
        headers=headers(app.id),
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "webhook_delivery_not_found"


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owner_told(
    app_client: tuple[TestClient, AppHeaders], services: Services
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    owner = create_account(services)
    app = create_partner_app(services, owner, installed_on=(merchant,))
    receiver = Receiver(status=500).up()
    try:
        endpoint = register(client, headers, app, receiver.url, ["order.created"])
        start(client, create_account(services), create_deal(services.db, merchant).id)
        Worker(services).run_until_idle()
        for _ in range(4 * 24):
            retry_after_backoff(services, minutes=60)
            if not endpoint_row(services, endpoint["id"]).enabled:
                break
        attempts_by_then = len(receiver.received)
        start(client, create_account(services), create_deal(services.db, merchant).id)
        retry_after_backoff(services, minutes=60)
    finally:
        receiver.down()

    row = endpoint_row(services, endpoint["id"])
    assert (row.enabled, row.disabled_reason) == (False, "failing")
    given_up = deliveries_of(services, endpoint["id"])[0]
    assert given_up.status == "failed"
    assert given_up.last_status_code == 500
    # Backoff: a handful of attempts a day once the waits reach hours, not one per tick.
    assert 10 <= given_up.attempts <= 40
    assert len(receiver.received) == attempts_by_then, [
        (d.id, d.status, d.attempts, d.event_type) for d in deliveries_of(services, endpoint["id"])
    ]
    notices = services.db.run_sync(
        lambda s: [
            (n.kind, n.data["subject_id"])
            for n in s.query(Notification).filter_by(user_id=owner.user_id)
        ]
    )
    assert notices == [("webhook_endpoint_disabled", endpoint["id"])]
    # Events while it was off are not kept for it; turned on again, it hears the next ones.
    receiver.status = 204
    receiver.up()
    try:
        on = client.patch(
            f"/v1/webhook_endpoints/{endpoint['id']}",
            json={"enabled": True},
            headers=headers(app.id),
        )
        assert on.status_code == 200
        assert on.json()["disabled_reason"] is None
        start(client, create_account(services), create_deal(services.db, merchant).id)
        Worker(services).run_until_idle()
    finally:
        receiver.down()
    assert [d.status for d in deliveries_of(services, endpoint["id"])] == ["failed", "delivered"]


def test_a_rotated_secret_signs_alongside_the_new_one_for_the_overlap(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    endpoint = register(client, headers, app, receiver.url, ["order.created"])
    rotated = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", headers=headers(app.id)
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != endpoint["secret"]

    start(client, create_account(services), create_deal(services.db, merchant).id)
    Worker(services).run_until_idle()
    clock.advance(timedelta(hours=25))
    start(client, create_account(services), create_deal(services.db, merchant).id)
    Worker(services).run_until_idle()

    during, after = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(endpoint["secret"]).verify(during.body, during.headers)
    assert Webhook(new_secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new_secret).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(after.body, after.headers)


# ---------------------------------------------------------------------------- leases


def test_two_workers_claiming_at_once_never_take_the_same_delivery(
    app_client: tuple[TestClient, AppHeaders], services: Services
) -> None:
    client, headers = app_client
    owner = create_account(services)
    merchant = create_merchant(services.db)
    # Many endpoints, one event: each endpoint's delivery is due at once.
    for _ in range(12):
        app = create_partner_app(services, owner, installed_on=(merchant,))
        register(client, headers, app, "http://127.0.0.1:9/never", ["order.created"])
    start(client, create_account(services), create_deal(services.db, merchant).id)
    services.db.run_sync(tasks.fan_out_events, utc_now(), 100)
    barrier = threading.Barrier(4)
    claims: list[list[str]] = []

    def claim() -> None:
        barrier.wait()
        taken = services.db.run_sync(tasks.claim_due_deliveries, utc_now(), 100)
        claims.append([d.id for d in taken])

    racers = [threading.Thread(target=claim) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    everything = [d for taken in claims for d in taken]
    assert len(everything) == 12
    assert len(set(everything)) == 12
    # And none is claimable again until its lease runs out.
    assert services.db.run_sync(tasks.claim_due_deliveries, utc_now(), 100) == []
    later = utc_now() + tasks.LEASE + timedelta(seconds=1)
    assert len(services.db.run_sync(tasks.claim_due_deliveries, later, 100)) == 12


# ---------------------------------------------------------------------------- the SSRF guard


def test_production_refuses_private_addresses_at_registration_and_at_send_time(
    database_url: str, services: Services, receiver: Receiver
) -> None:
    prod = make_settings(
        database_url, env=Environment.PROD, secret_key="p" * 40, sandbox_enabled=False
    )
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    for url in (
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:192.168.0.1]/hooks",
        "https://localhost/hooks",
        receiver.url,  # plain http
    ):
        with pytest.raises(InvalidInput) as refused:
            check_url(url, Environment.PROD)
        assert refused.value.code == "webhook_url_not_allowed"
    prod_services = Services(prod, services.db, services.passwords)
    with serving_apps(prod, prod_services) as (client, headers):
        answer = client.post(
            "/v1/webhook_endpoints",
            json={"url": "https://127.0.0.1:8443/hooks", "events": ["order.created"]},
            headers=headers(app.id),
        )
        assert answer.status_code == 422
        assert answer.json()["code"] == "webhook_url_not_allowed"
        assert client.get("/v1/webhook_endpoints", headers=headers(app.id)).json()["data"] == []

    # Registered where loopback is allowed, then sent by a production worker: refused there too.
    with serving_apps(make_settings(database_url), services) as (client, headers):
        endpoint = register(client, headers, app, receiver.url, ["order.created"])
        start(client, create_account(services), create_deal(services.db, merchant).id)
    Worker(prod_services).run_until_idle()

    assert receiver.received == []
    [delivery] = deliveries_of(services, endpoint["id"])
    assert delivery.status == "pending"
    assert (delivery.last_error or "").startswith("address refused")


def test_development_allows_loopback_receivers(receiver: Receiver) -> None:
    check_url(receiver.url, Environment.DEV)
    check_url(receiver.url, Environment.TEST)


# ---------------------------------------------------------------------------- the manifest


def test_the_manifest_endpoint_follows_the_apps_manifest(
    services: Services, receiver: Receiver
) -> None:
    app = create_partner_app(
        services,
        create_account(services),
        webhook_url=receiver.url,
        webhook_events=("team.succeeded",),
    )

    def ensure(session: Any) -> WebhookEndpoint | None:
        from pintuan.apps.models import App

        return ensure_manifest_endpoint(session, session.get(App, app.id), env=Environment.TEST)

    created = services.db.run_sync(ensure)
    assert created is not None
    assert (created.url, created.events, created.from_manifest) == (
        receiver.url,
        ["team.succeeded"],
        True,
    )
    again = services.db.run_sync(ensure)
    assert again is not None
    assert (again.id, again.secret) == (created.id, created.secret)

    set_app(services, app.id, webhook_events=["seat.paid", "team.failed"])
    changed = services.db.run_sync(ensure)
    assert changed is not None
    assert (changed.id, changed.events) == (created.id, ["seat.paid", "team.failed"])

    set_app(services, app.id, webhook_url=None)
    assert services.db.run_sync(ensure) is None
    assert services.db.run_sync(lambda s: s.query(WebhookEndpoint).count()) == 0


def test_the_manifest_endpoint_refuses_a_private_url_in_production(services: Services) -> None:
    app = create_partner_app(
        services,
        create_account(services),
        webhook_url="https://192.168.1.10/hooks",
        webhook_events=("team.succeeded",),
    )

    def ensure(session: Any) -> WebhookEndpoint | None:
        from pintuan.apps.models import App

        return ensure_manifest_endpoint(session, session.get(App, app.id), env=Environment.PROD)

    with pytest.raises(InvalidInput):
        services.db.run_sync(ensure)
    assert services.db.run_sync(lambda s: s.query(WebhookEndpoint).count()) == 0


def test_a_failed_team_is_heard_with_its_refunded_seats_counted(
    app_client: tuple[TestClient, AppHeaders], services: Services, receiver: Receiver
) -> None:
    client, headers = app_client
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    endpoint = register(client, headers, app, receiver.url, ["seat.refunded", "team.failed"])
    deal = create_deal(services.db, merchant, team_size=3)
    leader: Account = create_account(services, role=Role.SHOPPER)
    started = start(client, leader, deal.id)
    pay(client, leader, started["seat"]["id"])

    clock.advance(timedelta(days=2))
    Worker(services).run_until_idle()

    messages = verified(endpoint["secret"], receiver)
    assert [m["type"] for m in messages] == ["team.failed"]
    assert messages[0]["data"]["team_id"] == started["team"]["id"]
    assert messages[0]["data"]["refunded_seats"] == 1


def test_a_join_never_waits_for_a_slow_receiver(services: Services, settings: Any) -> None:
    """The server's own worker is busy with a receiver that takes seconds to answer; joins
    meanwhile answer as fast as ever, since a join only writes its outbox row."""
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    receiver = Receiver(delay=3.0).up()
    application = create_app(settings, services, run_worker=True)
    try:
        with TestClient(application, raise_server_exceptions=False) as client:
            answer = client.post(
                "/v1/webhook_endpoints",
                json={"url": receiver.url, "events": ["order.created"]},
                headers={"Authorization": f"Bearer {app_token(services, app.id)}"},
            )
            assert answer.status_code == 201, answer.text
            deal = create_deal(services.db, merchant, team_size=10)
            started = start(client, create_account(services), deal.id)
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.received, "the worker should be sending by now"
            timings = []
            for _ in range(5):
                begun = time.perf_counter()
                joined = join(client, create_account(services), started["team"]["id"])
                timings.append(time.perf_counter() - begun)
                assert joined.status_code == 201, joined.text
    finally:
        receiver.down()

    assert max(timings) < 1.0, timings


def test_approving_an_app_sets_up_its_manifest_endpoint_once_the_worker_reads_it(
    client: TestClient, services: Services
) -> None:
    from pintuan.domain.roles import Role
    from tests.apps_support import approved_app, client_credentials

    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    app = approved_app(
        client,
        developer,
        operator,
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_events=["team.succeeded", "offer.*"],
    )
    # Before the worker reads the approval the app registers the same address itself...
    token = client_credentials(client, app, scope="webhooks:manage")
    own = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["seat.paid"]},
        headers=token.headers,
    )
    assert own.status_code == 201, own.text
    services.db.run_sync(tasks.fan_out_events, utc_now(), 100)

    endpoints = services.db.run_sync(lambda s: list(s.query(WebhookEndpoint)))
    # ...and that endpoint, with the secret the app holds, is the manifest's: not a second one.
    assert len(endpoints) == 1
    (endpoint,) = endpoints
    assert endpoint.id == own.json()["id"]
    assert endpoint.secret == own.json()["secret"]
    assert endpoint.from_manifest
    assert endpoint.events == sorted(
        {"seat.paid", "team.succeeded", "offer.published", "offer.updated", "offer.withdrawn"}
    )


def test_an_app_approved_without_an_endpoint_of_its_own_gets_the_manifests(
    client: TestClient, services: Services
) -> None:
    from pintuan.domain.roles import Role
    from tests.apps_support import approved_app

    app = approved_app(
        client,
        create_account(services),
        create_account(services, role=Role.OPERATOR),
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_events=["team.succeeded"],
    )
    assert services.db.run_sync(lambda s: s.query(WebhookEndpoint).count()) == 0
    services.db.run_sync(tasks.fan_out_events, utc_now(), 100)
    endpoint = services.db.run_sync(lambda s: s.query(WebhookEndpoint).one())
    assert (endpoint.app_id, endpoint.url, endpoint.events, endpoint.from_manifest) == (
        app.id,
        "http://127.0.0.1:9/hooks",
        ["team.succeeded"],
        True,
    )


def test_an_app_registering_its_manifests_address_after_the_worker_did_reads_that_endpoint(
    client: TestClient, services: Services
) -> None:
    from pintuan.domain.roles import Role
    from tests.apps_support import approved_app, client_credentials

    app = approved_app(
        client,
        create_account(services),
        create_account(services, role=Role.OPERATOR),
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_events=["team.succeeded"],
    )
    services.db.run_sync(tasks.fan_out_events, utc_now(), 100)
    token = client_credentials(client, app, scope="webhooks:manage")

    again = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["seat.paid"]},
        headers=token.headers,
    )

    # not a second endpoint with a second secret: the app reads the one that signs its events
    assert again.status_code == 409, again.text
    manifest = services.db.run_sync(lambda s: s.query(WebhookEndpoint).one())
    assert again.json()["endpoint_id"] == manifest.id
    read = client.get(f"/v1/webhook_endpoints/{manifest.id}", headers=token.headers)
    assert read.json()["secret"] == manifest.secret
