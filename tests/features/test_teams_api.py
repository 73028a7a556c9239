"""The group-buy engine through the API: start, join, pay, succeed, fail and refund."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pintuan.app import create_app
from pintuan.audit.service import audit_database
from pintuan.bootstrap import build_services
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent
from pintuan.services import Services
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant


def start(client: TestClient, account: Account, deal_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


def join(client: TestClient, account: Account, team_id: str) -> Any:
    return client.post(f"/v1/teams/{team_id}/seats", headers=account.headers)


def pay(client: TestClient, account: Account, seat_id: str, outcome: str = "succeed") -> dict:
    payment = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=account.headers
    )
    assert payment.status_code == 201, payment.text
    result = client.post(
        f"/v1/test_helpers/payments/{payment.json()['id']}/{outcome}", headers=account.headers
    )
    assert result.status_code == 200, result.text
    return result.json()


def audit_clean(services: Services) -> None:
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def test_a_team_of_three_fills_pays_and_succeeds_and_its_holds_are_captured(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    leader, *others = (create_account(services) for _ in range(3))

    started = start(client, leader, deal.id)
    seats = [started["seat"]] + [
        join(client, a, started["team"]["id"]).json()["seat"] for a in others
    ]
    for account, seat in zip([leader, *others], seats, strict=True):
        pay(client, account, seat["id"])
    Worker(services).run_until_idle()

    team = client.get(f"/v1/teams/{started['team']['id']}").json()
    assert team["status"] == "succeeded"
    assert (team["seats_taken"], team["seats_paid"], team["seats_left"]) == (3, 3, 0)
    assert next(m["display_name"] for m in team["members"]) == team["leader"]["display_name"]
    assert "email" not in str(team)
    statuses = services.db.run_sync(lambda s: [p.status for p in s.query(Payment).all()])
    assert statuses == ["captured"] * 3
    notices = client.get("/v1/me/notifications", headers=leader.headers).json()["data"]
    assert [n["kind"] for n in notices] == ["team_succeeded"]
    audit_clean(services)


def test_a_team_that_does_not_fill_in_time_fails_and_every_payment_is_voided(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    leader, friend = create_account(services), create_account(services)
    started = start(client, leader, deal.id)
    seat = join(client, friend, started["team"]["id"]).json()["seat"]
    pay(client, leader, started["seat"]["id"])
    pay(client, friend, seat["id"])

    clock.advance(timedelta(days=2))
    Worker(services).run_until_idle()

    team = client.get(f"/v1/teams/{started['team']['id']}").json()
    assert team["status"] == "failed"
    assert team["seats_taken"] == 0
    intents = services.db.run_sync(lambda s: [i.status for i in s.query(SandboxIntent).all()])
    assert intents == ["voided", "voided"]
    # one notice for the one outcome, saying where the money goes
    (notice,) = client.get("/v1/me/notifications", headers=friend.headers).json()["data"]
    assert notice["kind"] == "team_failed"
    assert [(m["how"], m["by_you"], m["amount"]) for m in notice["data"]["money"]] == [
        ("hold", True, 1500)
    ]
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 0
    audit_clean(services)


@pytest.fixture
def wallet_client(database_url: str, services: Services) -> Iterator[TestClient]:
    """The sandbox charging on join and refunding on failure, like a wallet."""
    settings = make_settings(database_url, sandbox_style="charge")
    wallet = build_services(settings, services.db)
    with TestClient(create_app(settings, wallet)) as client:
        yield client


def test_wallet_style_charges_are_refunded_when_the_team_fails(
    wallet_client: TestClient, services: Services
) -> None:
    client = wallet_client
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    leader = create_account(services)
    started = start(client, leader, deal.id)
    assert pay(client, leader, started["seat"]["id"])["status"] == "charged"

    clock.advance(timedelta(days=2))
    Worker(services).run_until_idle()

    payment = services.db.run_sync(lambda s: s.query(Payment).one())
    assert payment.status == "refunded"
    audit_clean(services)


def test_joining_refusals_have_stable_codes(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, stock=3)
    leader, friend, late = (create_account(services) for _ in range(3))
    team_id = start(client, leader, deal.id)["team"]["id"]

    assert join(client, leader, team_id).json()["code"] == "already_member"
    assert join(client, friend, team_id).status_code == 201
    full = join(client, late, team_id)
    missing = join(client, late, "team_nope")

    assert (full.status_code, full.json()["code"]) == (409, "team_full")
    assert (missing.status_code, missing.json()["code"]) == (404, "team_not_found")


def test_a_deal_sells_out_and_a_closed_window_refuses_joins(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(
        services.db, create_merchant(services.db), team_size=5, stock=1, per_user_limit=5
    )
    a, b = create_account(services), create_account(services)
    team_id = start(client, a, deal.id)["team"]["id"]

    sold_out = client.post(f"/v1/deals/{deal.id}/teams", headers=b.headers)
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    clock.advance(timedelta(days=2))
    closed = join(client, b, team_id)
    assert closed.json()["code"] in ("team_closed", "deal_not_live", "sold_out")


def test_the_per_user_limit_counts_seats_across_teams(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), per_user_limit=1)
    shopper = create_account(services)
    start(client, shopper, deal.id)

    again = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)

    assert (again.status_code, again.json()["code"]) == (409, "limit_reached")


def test_a_held_seat_expires_and_a_late_payment_is_returned_without_a_place(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    leader = create_account(services)
    started = start(client, leader, deal.id)
    payment = client.post(
        f"/v1/seats/{started['seat']['id']}/payments",
        json={"provider": "sandbox"},
        headers=leader.headers,
    ).json()

    clock.advance(timedelta(minutes=11))
    Worker(services).run_until_idle()
    late = client.post(f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=leader.headers)
    Worker(services).run_until_idle()

    assert late.status_code == 200
    team = client.get(f"/v1/teams/{started['team']['id']}").json()
    assert team["seats_taken"] == 0
    assert services.db.run_sync(lambda s: s.get(Payment, payment["id"]).status) == "voided"
    audit_clean(services)


def test_cancelling_a_paid_seat_frees_the_place_and_voids_the_hold(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    leader = create_account(services)
    started = start(client, leader, deal.id)
    pay(client, leader, started["seat"]["id"])

    cancelled = client.post(f"/v1/seats/{started['seat']['id']}/cancel", headers=leader.headers)
    Worker(services).run_until_idle()

    assert cancelled.json()["status"] == "refunded"
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["seats_taken"] == 0
    audit_clean(services)


def test_new_shopper_teams_refuse_shoppers_who_bought_before(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    veteran, newbie, leader = (create_account(services) for _ in range(3))
    first = create_deal(services.db, merchant, team_size=2)
    team = start(client, veteran, first.id)
    seat = join(client, newbie, team["team"]["id"]).json()["seat"]
    pay(client, veteran, team["seat"]["id"])
    pay(client, newbie, seat["id"])
    newcomers = create_deal(services.db, merchant, team_size=3, new_shoppers_only=True)
    team_id = start(client, leader, newcomers.id)["team"]["id"]

    refused = join(client, veteran, team_id)

    assert (refused.status_code, refused.json()["code"]) == (403, "not_eligible")


def test_the_joinable_list_shows_the_nearest_to_full_first(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=4, per_user_limit=3)
    a, b = create_account(services), create_account(services)
    emptier = start(client, a, deal.id)["team"]["id"]
    fuller = start(client, b, deal.id)["team"]["id"]
    join(client, a, fuller)

    listed = client.get(f"/v1/deals/{deal.id}/teams", params={"joinable": "true"}).json()["data"]

    assert [t["id"] for t in listed] == [fuller, emptier]
    assert listed[0]["seats_left"] == 2


def test_my_seats_lists_my_orders_with_their_team_status(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    start(client, shopper, deal.id)

    mine = client.get("/v1/me/seats", headers=shopper.headers).json()["data"]

    assert [(s["status"], s["team_status"]) for s in mine] == [("held", "forming")]
