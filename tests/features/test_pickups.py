"""Pickup points and their team leaders: a shopper applies, operators decide; a pickup deal's
shoppers choose a point (within its daily capacity); the leader marks the goods arrived and
hands each order over by its code, earning the deal's commission from the merchant's payable,
frozen until the order's refund window closes and then paid into their wallet, shrunk by
refunds before that; orders not collected in time are refunded in full by the worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.audit.ledger import check_ledger
from pintuan.audit.pickups import paid_at_hand_over
from pintuan.commissions.models import Commission
from pintuan.domain import ledger as rules
from pintuan.domain.commissions import CommissionKind
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.roles import Role
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import clock, utc_now
from pintuan.ledger.commissions import NewCommission, freeze
from pintuan.ledger.service import NewJournal, credit_wallets, post
from pintuan.notifications.models import Notification
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.payments.refunds import EARNED_OF_SEAT, EarnedPayment
from pintuan.pickups.models import Pickup
from pintuan.pickups.service import HAND_OVER, NOTE_COMMISSION
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant, deal_body
from tests.features.pickingup import (
    LEADER_BPS,
    PRICE,
    PickupWorld,
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
from tests.features.test_refund_notices import deliver, payment_of, sandbox
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

    # Frozen, not yet the leader's: the order may still be refunded.
    assert done.json()["commission_status"] == "frozen"
    assert wallet(services, world.leader.user_id) == 0
    assert -balance(services, f"commissions_frozen:{world.leader.user_id}") == commission()
    payable = f"merchant_payable:{world.merchant.id}"
    assert -balance(services, payable) == 2 * merchant_part() - commission()
    (frozen,) = leader_commissions(services)
    assert (frozen.kind, frozen.seat_id, frozen.sharer_id, frozen.amount, frozen.share_id) == (
        "pickup",
        world.seat_ids[0],
        world.leader.user_id,
        commission(),
        None,
    )
    earnings = client.get("/v1/me/pickup-earnings", headers=world.leader.headers).json()
    money = {"amount": commission(), "currency": "USD"}
    assert earnings["data"] == [{"orders": 1, "commission": money, "frozen": money}]
    # A sharer's list of referral commissions does not show it.
    mine = client.get("/v1/me/commissions", headers=world.leader.headers).json()
    assert mine["data"] == []
    assert second
    sound(services)


def leader_commissions(services: Services) -> list[Commission]:
    return services.db.run_sync(
        lambda s: list(s.scalars(select(Commission).where(Commission.kind == "pickup"))),
        write=False,
    )


def settle(services: Services) -> None:
    """The worker does everything due, and its housekeeping's commission sweep."""
    worker = Worker(services)
    worker.run_until_idle()
    worker.sweep_commissions(utc_now())


def staff_refund(
    client: TestClient, world: PickupWorld, seat_id: str, amount: int, key: str
) -> Any:
    return client.post(
        f"/v1/seats/{seat_id}/refunds",
        json={"amount": amount, "reason": "damaged in the box"},
        headers={**world.staff.headers, "Idempotency-Key": key},
    )


def test_the_leaders_commission_is_paid_when_the_refund_window_closes_and_never_after_a_refund(
    client: TestClient, services: Services
) -> None:
    """Invariant 11: a commission is never released for an order that was refunded. A refund
    after the hand-over shrinks the leader's frozen commission (a full one takes it all back);
    the rest reaches the wallet once the order's refund window has closed, and a refund asked
    for later is refused."""
    world = pickup_world(client, services)
    world.arrive(client)
    refunded_code, kept_code = world.codes(client)
    assert hand_over(client, world.leader, refunded_code).status_code == 200
    assert hand_over(client, world.leader, kept_code).status_code == 200
    refunded_seat, kept_seat = world.seat_ids
    part = staff_refund(client, world, kept_seat, PRICE // 3, "part")
    assert part.status_code == 201, part.text
    whole = staff_refund(client, world, refunded_seat, PRICE, "whole")
    assert whole.status_code == 201, whole.text
    settle(services)

    by_seat = {c.seat_id: c for c in leader_commissions(services)}
    kept = commission(PRICE - PRICE // 3)
    assert (by_seat[refunded_seat].status, by_seat[refunded_seat].clawed_back) == (
        "clawed_back",
        commission(),
    )
    assert by_seat[kept_seat].status == "frozen"
    assert by_seat[kept_seat].amount - by_seat[kept_seat].clawed_back == kept
    order = client.get(f"/v1/seats/{refunded_seat}/pickup", headers=world.shoppers[0].headers)
    assert order.json()["commission_status"] == "clawed_back"
    sound(services)

    # A minute before the window closes nothing is paid; a minute after, the rest is.
    window = timedelta(days=services.settings.refund_window_days)
    clock.offset = window - timedelta(minutes=1)
    settle(services)
    assert wallet(services, world.leader.user_id) == 0
    clock.offset = window + timedelta(minutes=1)
    settle(services)
    by_seat = {c.seat_id: c for c in leader_commissions(services)}
    assert (by_seat[kept_seat].status, by_seat[refunded_seat].status) == (
        "released",
        "clawed_back",
    )
    assert wallet(services, world.leader.user_id) == kept
    assert balance(services, f"commissions_frozen:{world.leader.user_id}") == 0
    earnings = client.get("/v1/me/pickup-earnings", headers=world.leader.headers).json()
    assert earnings["data"] == [
        {
            "orders": 2,
            "commission": {"amount": kept, "currency": "USD"},
            "frozen": {"amount": 0, "currency": "USD"},
        }
    ]
    late = staff_refund(client, world, kept_seat, 100, "late")
    assert (late.status_code, _code(late)) == (409, "refund_window_closed")
    assert wallet(services, world.leader.user_id) == kept
    sound(services)


def test_a_seat_a_share_brought_to_a_pickup_deal_pays_its_sharer_and_its_leader_each_once(
    client: TestClient, services: Services
) -> None:
    """A seat may have two commissions, a sharer's and its leader's: a refund shrinks both, and
    each is released once, to its own earner."""
    sharer = create_account(services)
    world = pickup_world(client, services, referral_bps=1000, sharer=sharer)
    world.arrive(client)
    code = world.codes(client)[0]
    seat_id = world.seat_ids[0]
    settle(services)  # the sharer's commission is frozen once the seat is earned
    assert hand_over(client, world.leader, code).status_code == 200
    again = hand_over(client, world.leader, code)
    assert _code(again) == "pickup_already_handed_over"
    refund = staff_refund(client, world, seat_id, PRICE // 2, "half")
    assert refund.status_code == 201, refund.text
    settle(services)
    mine = services.db.run_sync(
        lambda s: {
            c.kind: (c.sharer_id, c.status, c.amount - c.clawed_back)
            for c in s.scalars(select(Commission).where(Commission.seat_id == seat_id))
        },
        write=False,
    )
    half = PRICE - PRICE // 2
    assert mine == {
        "referral": (sharer.user_id, "frozen", half * 1000 // 10_000),
        "pickup": (world.leader.user_id, "frozen", half * LEADER_BPS // 10_000),
    }
    clock.offset = timedelta(days=services.settings.refund_window_days, minutes=1)
    settle(services)
    assert wallet(services, sharer.user_id) == half * 1000 // 10_000
    assert wallet(services, world.leader.user_id) == half * LEADER_BPS // 10_000
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
    assert -balance(services, f"commissions_frozen:{world.leader.user_id}") == commission()
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


def _paid_at_hand_over(tx: RawTx, world: PickupWorld, seat_id: str) -> None:
    """Hand an order over as the code before commissions froze did: the commission noted on
    the pickup and paid into the leader's wallet at once by its own journal."""
    now = utc_now()
    handed = tx.scalar(
        HAND_OVER, {"seat_id": seat_id, "by": world.leader.user_id, "now": tx.instant(now)}
    )
    assert handed == seat_id
    tx.execute(NOTE_COMMISSION, {"seat_id": seat_id, "base": PRICE, "amount": commission()})
    credit_wallets(tx, [(world.leader.user_id, "USD", commission())], now)
    post(
        tx,
        [
            NewJournal(
                id=paid_at_hand_over(seat_id),
                kind=JournalKind.PICKUP_COMMISSION,
                status=JournalStatus.POSTED,
                currency="USD",
                amount=commission(),
                entries=rules.pickup_commission(
                    world.merchant.id, world.leader.user_id, commission()
                ),
                merchant_id=world.merchant.id,
                user_id=world.leader.user_id,
            )
        ],
        now,
    )


def test_a_commission_paid_at_the_hand_over_before_commissions_froze_stays_sound(
    client: TestClient, services: Services
) -> None:
    """Orders handed over before this change were paid at once: the audit accepts each such
    journal as its order's commission, and finds an order that has one and a frozen
    commission too."""
    world = pickup_world(client, services)
    world.arrive(client)
    seat_id = world.seat_ids[0]
    services.db.run_raw_sync(_paid_at_hand_over, world, seat_id)
    assert wallet(services, world.leader.user_id) == commission()
    order = client.get(f"/v1/seats/{seat_id}/pickup", headers=world.shoppers[0].headers).json()
    assert (order["status"], order["commission_status"]) == ("handed_over", "released")
    sound(services)

    def frozen_too(tx: RawTx) -> None:
        payment = tx.one_as(EarnedPayment, EARNED_OF_SEAT, {"seat_id": seat_id})
        assert payment is not None
        made = freeze(
            tx,
            NewCommission(
                kind=CommissionKind.PICKUP,
                seat_id=seat_id,
                payment_id=payment.id,
                deal_id=world.deal_id,
                merchant_id=world.merchant.id,
                sharer_id=world.leader.user_id,
                buyer_id=world.shoppers[0].user_id,
                share_id=None,
                currency="USD",
                base=PRICE,
                rate_bps=LEADER_BPS,
                amount=commission(),
            ),
            utc_now(),
        )
        assert made

    services.db.run_raw_sync(frozen_too)
    found = [b.detail for b in services.db.run_sync(check_ledger, write=False).breaches]
    assert found == [f"pickup {seat_id} was paid at the hand-over and has a commission too"]


def test_the_leaders_commission_rounds_down_and_a_refund_takes_back_only_its_share(
    client: TestClient, services: Services
) -> None:
    """Frozen and shrunk by one rule, as a sharer's: 3.33 % of 15.00 is 0.4995, so 0.49; a
    refund of one cent leaves the commission on 14.99 (0.4991...), still 0.49, and takes
    nothing back."""
    world = pickup_world(client, services, leader_bps=333)
    world.arrive(client)
    done = hand_over(client, world.leader, world.codes(client)[0])
    assert done.json()["commission"]["amount"] == commission(bps=333) == 49
    cent = staff_refund(client, world, world.seat_ids[0], 1, "a cent")
    assert cent.status_code == 201, cent.text
    (c,) = leader_commissions(services)
    assert (c.amount, c.clawed_back, c.status) == (49, 0, "frozen")
    sound(services)


def test_a_dispute_the_bank_won_before_the_hand_over_is_not_paid_a_commission(
    client: TestClient, services: Services
) -> None:
    """Money the payer's bank took back for good is not paid on, as it is not for a sharer:
    a hand-over after a lost dispute of half the payment earns the commission on the other
    half only."""
    world = pickup_world(client, services)
    world.arrive(client)
    seat_id = world.seat_ids[0]
    ref = payment_of(services, seat_id).provider_ref
    half = PRICE // 2
    deliver(client, sandbox(services).dispute(ref, "dp_pickup", half))
    deliver(client, sandbox(services).dispute(ref, "dp_pickup", half, "lost"))
    done = hand_over(client, world.leader, world.codes(client)[0])
    assert done.status_code == 200, done.text
    assert done.json()["commission"]["amount"] == commission(PRICE - half)
    (c,) = leader_commissions(services)
    assert (c.base, c.amount) == (PRICE - half, commission(PRICE - half))
    sound(services)


def test_the_audit_finds_a_frozen_commission_on_money_no_longer_paid(
    client: TestClient, services: Services
) -> None:
    """Had a refund left the leader's frozen commission whole (as a hand-over racing it did,
    before the hand-over locked the payment), the audit says so."""
    world = pickup_world(client, services)
    world.arrive(client)
    assert hand_over(client, world.leader, world.codes(client)[0]).status_code == 200
    sound(services)
    (c,) = leader_commissions(services)
    services.db.run_sync(
        lambda s: s.execute(
            update(Payment).where(Payment.id == c.payment_id).values(refunded_amount=PRICE)
        )
    )
    found = [b.detail for b in services.db.run_sync(check_ledger, write=False).breaches]
    assert (
        f"pickup commission {c.id} keeps {commission()} USD, more than 0 on the 0 its payment "
        "still pays"
    ) in found
