"""Pickup points and their team leaders: a shopper applies, operators decide; a pickup deal's
shoppers choose a point (within its daily capacity); the leader marks the goods arrived and
hands each order over by its code, earning the deal's commission from the merchant's payable
into their wallet; orders not collected in time are refunded in full by the worker."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.ledger.models import Journal
from pintuan.notifications.models import Notification
from pintuan.payments.refund_models import Refund
from pintuan.pickups.models import Pickup
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant, deal_body
from tests.features.pickingup import (
    LEADER_BPS,
    PRICE,
    choose,
    commission,
    hand_over,
    merchant_part,
    open_point,
    pickup_deal,
    pickup_world,
    take_seats,
)
from tests.features.test_ledger import balance, wallet
from tests.features.vouchering import sound


def _code(response: object) -> str:
    return str(response.json()["code"])  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- points


def test_a_shopper_applies_and_operators_approve_suspend_and_reopen(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    shopper = create_account(services)
    applied = client.post(
        "/v1/pickup-points",
        json={
            "name": " Maple  Court ",
            "address": "12 Maple Court",
            "opening_hours": "Daily 9-21",
            "capacity_per_day": 30,
        },
        headers=shopper.headers,
    )
    assert applied.status_code == 201, applied.text
    point = applied.json()
    assert (point["status"], point["name"], point["leader_id"]) == (
        "pending",
        "Maple Court",
        shopper.user_id,
    )
    # Not open yet: shoppers choosing see no such point; its leader sees it as theirs.
    assert client.get("/v1/pickup-points").json()["data"] == []
    mine = client.get("/v1/me/pickup-points", headers=shopper.headers).json()["data"]
    assert [p["id"] for p in mine] == [point["id"]]
    pending = client.get("/v1/pickup-points?status=pending", headers=operator.headers)
    assert [p["id"] for p in pending.json()["data"]] == [point["id"]]
    refused = client.get("/v1/pickup-points?status=pending", headers=shopper.headers)
    assert (refused.status_code, _code(refused)) == (403, "operator_only")
    by_shopper = client.post(
        f"/v1/pickup-points/{point['id']}/decision", json={"approve": True}, headers=shopper.headers
    )
    assert (by_shopper.status_code, _code(by_shopper)) == (403, "operator_only")

    def decide(approve: bool) -> object:
        return client.post(
            f"/v1/pickup-points/{point['id']}/decision",
            json={"approve": approve, "reason": "checked the lobby"},
            headers=operator.headers,
        )

    approved = decide(True)
    assert approved.json()["status"] == "approved"  # type: ignore[attr-defined]
    listed = client.get("/v1/pickup-points").json()["data"]
    assert [p["id"] for p in listed] == [point["id"]]
    assert listed[0]["leader_id"] is None  # shoppers choosing do not see who leads it
    again = decide(True)
    assert (again.status_code, _code(again)) == (409, "pickup_point_already_decided")  # type: ignore[attr-defined]
    assert decide(False).json()["status"] == "suspended"  # type: ignore[attr-defined]
    assert client.get("/v1/pickup-points").json()["data"] == []
    assert decide(True).json()["status"] == "approved"  # type: ignore[attr-defined]
    missing = client.post(
        "/v1/pickup-points/pp_nope/decision", json={"approve": True}, headers=operator.headers
    )
    assert (missing.status_code, _code(missing)) == (404, "pickup_point_not_found")


def test_an_application_names_every_wrong_field(client: TestClient, services: Services) -> None:
    shopper = create_account(services)
    body = {"name": "   ", "address": "x", "opening_hours": "\t", "capacity_per_day": 5}
    refused = client.post("/v1/pickup-points", json=body, headers=shopper.headers)
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert {"name", "opening_hours"} <= fields
    too_many = client.post(
        "/v1/pickup-points",
        json={**body, "name": "ok", "opening_hours": "ok", "capacity_per_day": 0},
        headers=shopper.headers,
    )
    assert too_many.status_code == 422
    assert client.post("/v1/pickup-points", json=body).status_code == 401
    assert client.get("/v1/me/pickup-points", headers=shopper.headers).json()["data"] == []


def test_approved_points_are_listed_a_page_at_a_time(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    ids = [open_point(client, services, operator)[1]["id"] for _ in range(3)]
    first = client.get("/v1/pickup-points?limit=2").json()
    second = client.get(f"/v1/pickup-points?limit=2&cursor={first['next_cursor']}").json()
    assert [p["id"] for p in first["data"] + second["data"]] == sorted(ids)
    assert second["next_cursor"] is None


def test_a_pickup_deal_is_goods_and_no_voucher(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    terms = {"commission_bps": 800, "unclaimed_days": 5}

    food = client.post(
        "/v1/deals", json=deal_body(merchant.id, pickup=terms), headers=staff.headers
    )
    assert food.status_code == 422
    both = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, vertical="local", pickup=terms, voucher={"valid_days": 5}),
        headers=staff.headers,
    )
    assert both.status_code == 422
    assert any(e["field"] == "pickup" for e in both.json()["errors"])
    for wrong in ({"commission_bps": 3001, "unclaimed_days": 5}, {**terms, "unclaimed_days": 0}):
        bad = client.post(
            "/v1/deals",
            json=deal_body(merchant.id, vertical="goods", pickup=wrong),
            headers=staff.headers,
        )
        assert bad.status_code == 422
    made = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, vertical="goods", pickup=terms),
        headers=staff.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["pickup"] == terms
    deal_id = made.json()["id"]
    dropped = client.patch(f"/v1/deals/{deal_id}", json={"pickup": None}, headers=staff.headers)
    assert dropped.json()["pickup"] is None
    back = client.patch(f"/v1/deals/{deal_id}", json={"pickup": terms}, headers=staff.headers)
    assert back.json()["pickup"] == terms
    client.post(f"/v1/deals/{deal_id}/publish", headers=staff.headers)
    frozen = client.patch(f"/v1/deals/{deal_id}", json={"pickup": None}, headers=staff.headers)
    assert (frozen.status_code, _code(frozen)) == (409, "deal_not_editable")


# ---------------------------------------------------------------------------- choosing


def test_choosing_a_point_gives_the_seat_a_code_and_may_change_until_arrival(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services)
    _, other = open_point(client, services, world.operator)
    shopper, seat_id = world.shoppers[0], world.seat_ids[0]
    read = client.get(f"/v1/seats/{seat_id}/pickup", headers=shopper.headers).json()
    assert read["status"] == "waiting"
    assert len(read["code"]) == 11
    assert read["code"][5] == "-"
    assert read["point"]["id"] == world.point["id"]
    assert read["day"] == utc_now().date().isoformat()

    moved = choose(client, shopper, seat_id, other["id"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["point"]["id"] == other["id"]
    assert moved.json()["code"] == read["code"]
    assert choose(client, shopper, seat_id, other["id"]).json() == moved.json()
    choose(client, shopper, seat_id, world.point["id"])
    assert world.arrive(client) == 2
    late = choose(client, shopper, seat_id, other["id"])
    assert (late.status_code, _code(late)) == (409, "pickup_not_changeable")
    # Another shopper's seat is no seat of theirs.
    stranger = choose(client, world.shoppers[1], seat_id, other["id"])
    assert (stranger.status_code, _code(stranger)) == (404, "seat_not_found")
    missing = choose(client, shopper, seat_id, "pp_nope")
    assert (missing.status_code, _code(missing)) == (404, "pickup_point_not_found")
    sound(services)


def test_only_an_approved_point_of_a_pickup_deal_is_chosen(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    _, point = open_point(client, services, operator)
    pending = client.post(
        "/v1/pickup-points",
        json={"name": "B", "address": "b", "opening_hours": "9-5", "capacity_per_day": 5},
        headers=create_account(services).headers,
    ).json()
    deal_id = pickup_deal(client, staff, merchant.id)
    shopper = create_account(services)
    (seat_id,) = take_seats(client, deal_id, [shopper])
    shut = choose(client, shopper, seat_id, pending["id"])
    assert (shut.status_code, _code(shut)) == (409, "pickup_point_not_approved")
    assert choose(client, shopper, seat_id, point["id"]).status_code == 200
    # A seat its shopper left is collected nowhere.
    cancel = client.post(f"/v1/seats/{seat_id}/cancel", headers=shopper.headers)
    assert cancel.status_code == 200, cancel.text
    ended = choose(client, shopper, seat_id, point["id"])
    assert (ended.status_code, _code(ended)) == (409, "order_closed")


def test_a_seat_of_another_deal_has_no_pickup(client: TestClient, services: Services) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    _, point = open_point(client, services, operator)
    merchant = create_merchant(services.db)
    plain = create_deal(services.db, merchant, team_size=2)
    shopper = create_account(services)
    (seat_id,) = take_seats(client, plain.id, [shopper])
    refused = choose(client, shopper, seat_id, point["id"])
    assert (refused.status_code, _code(refused)) == (409, "not_a_pickup_deal")


def test_a_point_takes_no_more_orders_a_day_than_its_capacity(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    _, point = open_point(client, services, operator, capacity=2)
    _, spare = open_point(client, services, operator, capacity=2)
    deal_id = pickup_deal(client, staff, merchant.id, size=4)
    shoppers = [create_account(services) for _ in range(4)]
    seats = take_seats(client, deal_id, shoppers)

    answers = [
        choose(client, s, seat, point["id"]) for s, seat in zip(shoppers, seats, strict=True)
    ]

    assert [a.status_code for a in answers] == [200, 200, 409, 409]
    assert _code(answers[2]) == "pickup_point_full"
    # A seat that leaves frees its place for the day.
    left = client.post(f"/v1/seats/{seats[0]}/cancel", headers=shoppers[0].headers)
    assert left.status_code == 200, left.text
    assert choose(client, shoppers[2], seats[2], point["id"]).status_code == 200
    # Moving away frees a place too; moving to a full point is refused.
    assert choose(client, shoppers[1], seats[1], spare["id"]).status_code == 200
    assert choose(client, shoppers[3], seats[3], point["id"]).status_code == 200
    full = choose(client, shoppers[1], seats[1], point["id"])
    assert (full.status_code, _code(full)) == (409, "pickup_point_full")


# ---------------------------------------------------------------------------- the leader


def test_the_leader_marks_arrival_and_hands_over_once_earning_the_commission(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services)
    first, second = world.codes(client)
    not_yet = hand_over(client, world.leader, first)
    assert (not_yet.status_code, _code(not_yet)) == (409, "pickup_not_arrived")
    assert world.arrive(client) == 2
    assert world.arrive(client) == 0  # nothing waits any more

    key = {"Idempotency-Key": "hand-over-1"}
    done = hand_over(client, world.leader, first.lower().replace("-", " "), **key)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "handed_over"
    assert done.json()["commission"] == {"amount": commission(), "currency": "USD"}
    replay = hand_over(client, world.leader, first.lower().replace("-", " "), **key)
    assert replay.json() == done.json()
    again = hand_over(client, world.leader, first)
    assert (again.status_code, _code(again)) == (409, "pickup_already_handed_over")
    assert again.json()["handed_over_at"]

    assert wallet(services, world.leader.user_id) == commission()
    payable = f"merchant_payable:{world.merchant.id}"
    assert -balance(services, payable) == 2 * merchant_part() - commission()
    journals = services.db.run_sync(
        lambda s: list(s.scalars(select(Journal.id).where(Journal.kind == "pickup_commission")))
    )
    assert journals == [f"{world.seat_ids[0]}:pickup_commission"]
    earnings = client.get("/v1/me/pickup-earnings", headers=world.leader.headers).json()
    assert earnings["data"] == [
        {"orders": 1, "commission": {"amount": commission(), "currency": "USD"}}
    ]
    assert second
    sound(services)


def test_hand_over_refuses_wrong_and_foreign_codes(client: TestClient, services: Services) -> None:
    world = pickup_world(client, services)
    code = world.codes(client)[0]
    world.arrive(client)
    other_leader, _ = open_point(client, services, world.operator)

    wrong = hand_over(client, world.leader, "ZZZZZ-ZZZZZ")
    assert (wrong.status_code, _code(wrong)) == (404, "pickup_not_found")
    assert _code(hand_over(client, world.leader, "not a code!")) == "pickup_not_found"
    foreign = hand_over(client, other_leader, code)
    assert (foreign.status_code, _code(foreign)) == (403, "pickup_of_another_point")
    own = hand_over(client, world.shoppers[0], code)
    assert (own.status_code, _code(own)) == (403, "pickup_of_another_point")
    assert hand_over(client, world.leader, "").status_code == 422
    assert client.post("/v1/pickups/handover", json={"code": code}).status_code == 401
    assert wallet(services, other_leader.user_id) == 0
    sound(services)


def test_the_leader_reads_the_points_orders_of_a_day_a_page_at_a_time(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services, size=3)
    url = f"/v1/pickup-points/{world.point['id']}/orders"
    first = client.get(f"{url}?limit=2", headers=world.leader.headers).json()
    rest = client.get(
        f"{url}?limit=2&cursor={first['next_cursor']}", headers=world.leader.headers
    ).json()
    seats = [o["seat_id"] for o in first["data"] + rest["data"]]
    assert seats == sorted(world.seat_ids)
    assert {o["code"] for o in first["data"] + rest["data"]} == set(world.codes(client))
    day = utc_now().date()
    tomorrow = client.get(
        f"{url}?day={(day + timedelta(days=2)).isoformat()}", headers=world.leader.headers
    )
    assert tomorrow.json()["data"] == []
    by_operator = client.get(f"{url}?day={day.isoformat()}", headers=world.operator.headers)
    assert len(by_operator.json()["data"]) == 3
    for stranger in (world.shoppers[0], world.staff):
        refused = client.get(url, headers=stranger.headers)
        assert (refused.status_code, _code(refused)) == (403, "not_pickup_leader")
        arrival = client.post(
            f"/v1/pickup-points/{world.point['id']}/arrivals",
            json={"deal_id": world.deal_id},
            headers=stranger.headers,
        )
        assert (arrival.status_code, _code(arrival)) == (403, "not_pickup_leader")
    assert client.get(url).status_code == 401


def test_orders_not_collected_in_time_are_refunded_and_cannot_be_handed_over(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services, unclaimed_days=2, refund_to="wallet")
    first, second = world.codes(client)
    world.arrive(client)
    assert hand_over(client, world.leader, first).status_code == 200

    clock.offset = timedelta(days=2, minutes=1)
    Worker(services).run_until_idle()

    stored = services.db.run_sync(
        lambda s: {p.seat_id: p.status for p in s.scalars(select(Pickup))}
    )
    assert stored == {world.seat_ids[0]: "handed_over", world.seat_ids[1]: "refunded"}
    late = hand_over(client, world.leader, second)
    assert (late.status_code, _code(late)) == (409, "pickup_refunded")
    refunds = services.db.run_sync(
        lambda s: [(r.seat_id, r.amount) for r in s.scalars(select(Refund))]
    )
    assert refunds == [(world.seat_ids[1], PRICE)]
    assert wallet(services, world.shoppers[1].user_id) == PRICE
    assert wallet(services, world.leader.user_id) == commission()
    kinds = services.db.run_sync(
        lambda s: [
            n.kind
            for n in s.scalars(
                select(Notification).where(Notification.user_id == world.shoppers[1].user_id)
            )
        ]
    )
    assert "pickup_arrived" in kinds
    assert "pickup_unclaimed" in kinds
    sound(services)


def test_orders_whose_goods_never_arrive_are_refunded_after_the_deals_end(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services, unclaimed_days=1)
    clock.offset = timedelta(days=10)  # the deal ends after 14 days
    Worker(services).run_until_idle()
    assert {p["status"] for p in _pickups(client, world)} == {"waiting"}
    clock.offset = timedelta(days=15, minutes=5)
    Worker(services).run_until_idle()
    assert {p["status"] for p in _pickups(client, world)} == {"refunded"}
    assert -balance(services, f"merchant_payable:{world.merchant.id}") == 0
    sound(services)


def _pickups(client: TestClient, world: object) -> list[dict[str, object]]:
    found = []
    for shopper, seat_id in zip(world.shoppers, world.seat_ids, strict=True):  # type: ignore[attr-defined]
        found.append(client.get(f"/v1/seats/{seat_id}/pickup", headers=shopper.headers).json())
    return found


def test_leader_commission_is_the_deals_basis_points_of_what_the_seat_kept(
    client: TestClient, services: Services
) -> None:
    world = pickup_world(client, services, leader_bps=3000)
    world.arrive(client)
    code = world.codes(client)[1]
    done = hand_over(client, world.leader, code)
    assert done.json()["commission"]["amount"] == commission(bps=3000) == 450
    assert LEADER_BPS != 3000
    sound(services)
