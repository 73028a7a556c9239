"""Fulfilment of goods through the API: the address book, the address on the order, shipping one
or many, receipt by the shopper or by the worker, the timeline and the notifications."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.events.models import OutboxEvent
from pintuan.fulfilment.models import Shipment
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant
from tests.features.fulfilment import (
    US_ADDRESS,
    add_address,
    choose,
    goods_team,
    ship,
)
from tests.features.test_teams_api import start


def test_an_address_with_several_wrong_fields_names_every_one_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)

    response = client.post(
        "/v1/me/addresses",
        json={"country": "GB", "recipient": "Ann", "phone": "12", "postcode": "12345"},
        headers=shopper.headers,
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    fields = {e["field"]: e["reason"] for e in problem["errors"]}
    assert fields == {
        "line1": "required",
        "city": "required",
        "phone": "phone_format",
        "postcode": "postcode_format",
    }
    assert client.get("/v1/me/addresses", headers=shopper.headers).json()["data"] == []


def test_the_first_address_is_the_default_and_the_default_moves_when_asked_or_deleted(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    home = add_address(client, shopper)
    work = add_address(client, shopper, **US_ADDRESS)
    assert home["is_default"]
    assert not work["is_default"]
    assert work["region"] == "CA"
    assert work["lines"][-2] == "San Francisco, CA 94105"

    changed = client.patch(
        f"/v1/me/addresses/{work['id']}",
        json={"line2": "Suite 400", "is_default": True},
        headers=shopper.headers,
    )
    assert changed.status_code == 200, changed.text
    book = client.get("/v1/me/addresses", headers=shopper.headers).json()["data"]
    assert [(a["id"], a["is_default"]) for a in book] == [(work["id"], True), (home["id"], False)]
    assert book[0]["line2"] == "Suite 400"

    gone = client.delete(f"/v1/me/addresses/{work['id']}", headers=shopper.headers)
    assert gone.status_code == 204
    book = client.get("/v1/me/addresses", headers=shopper.headers).json()["data"]
    assert [(a["id"], a["is_default"]) for a in book] == [(home["id"], True)]


def test_another_shoppers_address_cannot_be_read_changed_or_used(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    theirs = add_address(client, order.shoppers[1])

    mine = order.shoppers[0]
    assert choose(client, mine, order.seat_ids[0], theirs["id"]).status_code == 404
    patched = client.patch(
        f"/v1/me/addresses/{theirs['id']}", json={"city": "x"}, headers=mine.headers
    )
    assert patched.status_code == 404
    assert (
        client.delete(f"/v1/me/addresses/{theirs['id']}", headers=mine.headers).status_code == 404
    )


def test_address_ship_receive_with_the_address_copied_onto_the_order(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id = order.shoppers[0], order.seat_ids[0]
    address = add_address(client, shopper)

    chosen = choose(client, shopper, seat_id, address["id"])
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["status"] == "addressed"
    # Editing the book afterwards never reaches the order.
    client.patch(
        f"/v1/me/addresses/{address['id']}", json={"line1": "Elsewhere 1"}, headers=shopper.headers
    )

    queue = client.get(
        f"/v1/merchants/{order.merchant.id}/shipments?state=to_ship", headers=order.staff.headers
    ).json()["data"]
    assert [(r["seat_id"], r["address"]["line1"]) for r in queue] == [
        (seat_id, "南京西路 1266 号 12 楼")
    ]
    waiting = client.get(
        f"/v1/merchants/{order.merchant.id}/shipments?state=awaiting_address",
        headers=order.staff.headers,
    ).json()["data"]
    assert [r["seat_id"] for r in waiting] == [order.seat_ids[1]]

    shipped = ship(client, order.staff, seat_id, "sf 1234 5678 90")
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["tracking_number"] == "SF1234567890"
    assert shipped.json()["address"]["line1"] == "南京西路 1266 号 12 楼"
    # The address can no longer change once shipped.
    refused = choose(client, shopper, seat_id, address["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "already_shipped"

    received = client.post(f"/v1/seats/{seat_id}/receipt", headers=shopper.headers)
    assert received.status_code == 200, received.text
    assert (received.json()["status"], received.json()["received_by"]) == ("received", "shopper")

    timeline = client.get(f"/v1/seats/{seat_id}/fulfilment", headers=shopper.headers).json()
    assert [s["step"] for s in timeline["timeline"]] == [
        "paid",
        "team_succeeded",
        "address",
        "shipped",
        "received",
    ]
    assert timeline["timeline"][3]["detail"] == {
        "carrier": "SF Express",
        "tracking_number": "SF1234567890",
    }
    Worker(services).run_until_idle()
    kinds = [
        n["kind"]
        for n in client.get("/v1/me/notifications", headers=shopper.headers).json()["data"]
    ]
    # Dispatched in one batch, so in no particular order: one notification per step.
    assert sorted(kinds) == ["address_chosen", "seat_received", "seat_shipped", "team_succeeded"]


def test_an_order_ships_only_after_its_team_succeeded_and_with_an_address(
    client: TestClient, services: Services
) -> None:
    forming = goods_team(client, services, succeed=False)
    shopper, seat_id = forming.shoppers[0], forming.seat_ids[0]
    address = add_address(client, shopper)
    # Chosen at checkout, before paying.
    assert choose(client, shopper, seat_id, address["id"]).status_code == 200

    early = ship(client, forming.staff, seat_id)
    assert early.status_code == 409
    assert early.json()["code"] == "not_ready_to_ship"

    done = goods_team(client, services)
    missing = ship(client, done.staff, done.seat_ids[0])
    assert missing.status_code == 409
    assert missing.json()["code"] == "address_missing"
    not_shipped = client.post(
        f"/v1/seats/{done.seat_ids[0]}/receipt", headers=done.shoppers[0].headers
    )
    assert not_shipped.status_code == 409
    assert not_shipped.json()["code"] == "not_shipped"


def test_shipping_twice_with_the_same_number_is_one_fact_and_with_another_is_refused(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    seat_id = order.seat_ids[0]
    choose(client, order.shoppers[0], seat_id, add_address(client, order.shoppers[0])["id"])

    assert ship(client, order.staff, seat_id).status_code == 200
    assert ship(client, order.staff, seat_id).status_code == 200
    other = ship(client, order.staff, seat_id, "SF999999999")
    assert other.status_code == 409
    assert other.json()["code"] == "already_shipped"
    assert _events(services, "seat.shipped") == 1


def test_another_merchants_staff_and_shoppers_cannot_ship_or_see_the_queue(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    seat_id = order.seat_ids[0]
    choose(client, order.shoppers[0], seat_id, add_address(client, order.shoppers[0])["id"])
    stranger = goods_team(client, services).staff

    assert ship(client, stranger, seat_id).status_code == 404
    assert ship(client, order.shoppers[0], seat_id).status_code == 404
    queue = client.get(f"/v1/merchants/{order.merchant.id}/shipments", headers=stranger.headers)
    assert queue.status_code == 404


def test_an_address_outside_the_merchants_country_or_a_food_order_is_refused(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services, succeed=False)
    abroad = add_address(client, order.shoppers[0], **US_ADDRESS)
    refused = choose(client, order.shoppers[0], order.seat_ids[0], abroad["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "address_not_served"

    food = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    seat = start(client, shopper, food.id)["seat"]
    own = add_address(client, shopper, **US_ADDRESS)
    refused = choose(client, shopper, seat["id"], own["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "nothing_to_deliver"


def test_bulk_shipping_ships_good_rows_and_bad_rows_change_nothing_and_say_why(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services, size=3)
    for shopper, seat_id in zip(order.shoppers[:2], order.seat_ids[:2], strict=True):
        choose(client, shopper, seat_id, add_address(client, shopper)["id"])
    rows = [
        {"seat_id": order.seat_ids[0], "carrier": "SF Express", "tracking_number": "SF100000001"},
        {"seat_id": order.seat_ids[1], "carrier": "", "tracking_number": "?"},
        {"seat_id": order.seat_ids[2], "carrier": "SF Express", "tracking_number": "SF100000003"},
        {"seat_id": "seat_nope", "carrier": "SF Express", "tracking_number": "SF100000004"},
        {"seat_id": order.seat_ids[0], "carrier": "SF Express", "tracking_number": "SF100000001"},
    ]

    report = client.post(
        f"/v1/merchants/{order.merchant.id}/shipments/bulk",
        json={"shipments": rows},
        headers=order.staff.headers,
    )

    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["shipped"], body["unchanged"], body["refused"]) == (1, 0, 4)
    assert [(r["row"], r["outcome"], r["code"]) for r in body["results"]] == [
        (1, "shipped", None),
        (2, "refused", "validation_error"),
        (3, "refused", "address_missing"),
        (4, "refused", "seat_not_found"),
        (5, "refused", "duplicate_row"),
    ]
    assert set(body["results"][1]["fields"]) == {"carrier", "tracking_number"}
    statuses = services.db.run_sync(
        lambda s: dict(s.execute(select(Shipment.seat_id, Shipment.status)).all())
    )
    assert statuses == {order.seat_ids[0]: "shipped", order.seat_ids[1]: "addressed"}


def test_receipt_is_confirmed_by_the_worker_after_the_waiting_days(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id = order.shoppers[0], order.seat_ids[0]
    choose(client, shopper, seat_id, add_address(client, shopper)["id"])
    ship(client, order.staff, seat_id)

    clock.advance(timedelta(days=services.settings.auto_receive_days) - timedelta(minutes=1))
    assert Worker(services).run_until_idle().receipts_confirmed == 0
    clock.advance(timedelta(minutes=2))
    assert Worker(services).run_until_idle().receipts_confirmed == 1

    found = client.get(f"/v1/seats/{seat_id}/fulfilment", headers=shopper.headers).json()
    assert found["status"] == "received"
    assert found["timeline"][-1]["detail"] == {"by": "auto"}
    late = client.post(f"/v1/seats/{seat_id}/receipt", headers=shopper.headers)
    assert late.status_code == 200
    assert late.json()["received_by"] == "auto"
    assert _events(services, "seat.received") == 1


def _events(services: Services, kind: str) -> int:
    return services.db.run_sync(
        lambda s: s.scalar(select(func.count()).where(OutboxEvent.type == kind))
    )


def test_an_order_whose_money_went_back_before_it_shipped_is_not_shipped(
    client: TestClient, services: Services
) -> None:
    """An order refunded in full (or a lottery's loser, whose money all goes back) leaves the
    shipping queue and is refused if shipped anyway: its goods were going out free. A partial
    refund ships, and an order already shipped stays listed whatever came after."""
    order = goods_team(client, services, size=3)
    for shopper, seat_id in zip(order.shoppers, order.seat_ids, strict=True):
        address = add_address(client, shopper)
        assert choose(client, shopper, seat_id, address["id"]).status_code == 200
    whole, part, shipped = order.seat_ids
    assert ship(client, order.staff, shipped).status_code == 200
    price = 1500  # the deal's group price
    for seat_id, amount in ((whole, price), (part, price // 2), (shipped, price)):
        refunded = client.post(
            f"/v1/seats/{seat_id}/refunds",
            json={"amount": amount, "reason": "out of stock"},
            headers={**order.staff.headers, "Idempotency-Key": f"back-{seat_id}"},
        )
        assert refunded.status_code == 201, refunded.text

    queue = client.get(f"/v1/merchants/{order.merchant.id}/shipments", headers=order.staff.headers)
    assert sorted(r["seat_id"] for r in queue.json()["data"]) == sorted([part, shipped])
    refused = ship(client, order.staff, whole)
    assert (refused.status_code, refused.json()["code"]) == (409, "order_refunded")
    # Its story so far stays told: paid, its team's success, its address.
    read = client.get(f"/v1/seats/{whole}/fulfilment", headers=order.shoppers[0].headers).json()
    assert [s["step"] for s in read["timeline"]] == ["paid", "team_succeeded", "address"]
    assert ship(client, order.staff, part).status_code == 200
