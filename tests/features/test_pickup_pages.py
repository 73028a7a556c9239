"""The pages of pickup points: a shopper applies to lead one from "Lead a pickup point"; an
operator approves it in the console; the leader's page lists the day's orders with their codes,
marks the goods arrived and hands an order over by its code (in English and Chinese); the
shopper's order shows the point, the code and its QR code; the team page chooses the point."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.pickups.models import PickupPoint
from pintuan.services import Services
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account
from tests.features.pickingup import commission, pickup_world
from tests.features.test_ledger import wallet
from tests.features.vouchering import sound


def test_a_shopper_applies_and_an_operator_approves_in_the_console(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, shopper)
    empty = client.get("/pickup-points", headers=HTML)
    assert empty.status_code == 200
    assert "Apply for a pickup point" in empty.text

    refused = form_post(
        client,
        "/pickup-points",
        "/pickup-points",
        {"name": "", "address": "12 Maple Court", "opening_hours": "9-21", "capacity_per_day": "x"},
    )
    assert refused.status_code == 422
    assert "Check the fields" in refused.text
    applied = form_post(
        client,
        "/pickup-points",
        "/pickup-points",
        {
            "name": "Maple Court lobby",
            "address": "12 Maple Court",
            "opening_hours": "Daily 9-21",
            "capacity_per_day": "25",
        },
    )
    assert applied.status_code == 303
    mine = client.get(applied.headers["location"], headers=HTML)
    assert "waits for an operator" in mine.text
    assert "Maple Court lobby" in mine.text
    assert "Waiting for approval" in mine.text

    log_in(client, operator)
    listed = client.get("/console/operator/pickup-points", headers=HTML)
    assert "Maple Court lobby" in listed.text
    (point_id,) = services.db.run_sync(lambda s: list(s.scalars(select(PickupPoint.id))))
    approved = form_post(
        client,
        "/console/operator/pickup-points",
        f"/console/operator/pickup-points/{point_id}/approve",
        {"status": "pending"},
    )
    assert approved.status_code == 303
    status = services.db.run_sync(lambda s: s.get(PickupPoint, point_id).status)
    assert status == "approved"
    log_in(client, shopper)
    assert "Orders and hand-over" in client.get("/pickup-points", headers=HTML).text


def test_the_leader_page_marks_arrival_and_hands_over_by_code(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services)
    first, second = world.codes(client)
    page = f"/pickup-points/{world.point['id']}"
    log_in(client, world.leader)

    opened = client.get(page, headers=HTML)
    assert opened.status_code == 200
    assert first in opened.text
    assert second in opened.text
    assert opened.text.count("On its way") == 2
    early = form_post(client, page, f"{page}/handover", {"code": first, "next": page})
    assert "error=pickup_not_arrived" in early.headers["location"]
    said = client.get(early.headers["location"], headers=HTML)
    assert "not been marked as arrived" in said.text

    arrived = form_post(client, page, f"{page}/arrivals", {"deal_id": world.deal_id})
    assert arrived.status_code == 303
    assert client.get(page, headers=HTML).text.count("Ready to collect") == 2
    done = form_post(client, page, f"{page}/handover", {"code": first.lower()})
    assert "done=handed_over" in done.headers["location"]
    after = client.get(done.headers["location"], headers=HTML).text
    assert "your commission is frozen until the order&#39;s refund window closes" in after
    assert commission() == 75
    assert "1 orders handed over: $0.75, of which $0.75 is frozen" in after
    assert wallet(services, world.leader.user_id) == 0

    # Another shopper (no leader of this point) is refused the page.
    log_in(client, world.shoppers[0])
    assert client.get(page, headers=HTML).status_code == 403
    sound(services)


def test_the_leader_page_speaks_chinese(client: TestClient, services: Services) -> None:
    world = pickup_world(client, services)
    speak_chinese(services, world.leader)
    log_in(client, world.leader)
    page = client.get(f"/pickup-points/{world.point['id']}", headers=HTML)
    assert "交付订单" in page.text
    assert "配送中" in page.text


def test_the_shopper_sees_the_point_and_code_and_chooses_on_the_team_page(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services)
    shopper = world.shoppers[0]
    code = world.codes(client)[0]
    log_in(client, shopper)
    orders = client.get("/orders", headers=HTML)
    assert world.point["name"] in orders.text
    assert code in orders.text

    world.arrive(client)
    ready = client.get("/orders", headers=HTML).text
    assert "<svg" in ready  # the QR code to show at the point
    assert "Ready to collect" in ready

    # A second order: the team page asks for a point, and the choice gives it a code.
    started = client.post(f"/v1/deals/{world.deal_id}/teams", headers=shopper.headers).json()
    team_page = f"/teams/{started['team']['id']}"
    asking = client.get(team_page, headers=HTML).text
    assert "Choose a pickup point" in asking
    assert world.point["name"] in asking
    chosen = form_post(
        client,
        team_page,
        f"/seats/{started['seat']['id']}/pickup",
        {"pickup_point_id": world.point["id"], "next": team_page},
    )
    assert chosen.status_code == 303
    assert "pickup=chosen" in chosen.headers["location"]
    shown = client.get(chosen.headers["location"], headers=HTML).text
    assert "Your pickup code" in shown
    assert "will wait for you at this pickup point" in shown
