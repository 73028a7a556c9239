"""Pickups under real concurrency: API processes on one database, requests fired at once, and
the worker's unclaimed-refund sweep running while leaders hand orders over.

Twenty hand-overs of one code hand it over once and pay one commission; a hand-over racing the
unclaimed refund ends each order in exactly one state, and the money follows the winner (the
leader's commission for a hand-over, the whole price back to the payer for a refund); shoppers
choosing a nearly full point at once never take it past its capacity. The ledger's checks and
the engine's audit pass after each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.commissions.models import Commission
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.payments.refund_models import Refund
from pintuan.pickups.models import Pickup
from pintuan.services import Services
from pintuan.worker import Worker
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, running_cluster
from tests.concurrency.test_races import sweep
from tests.factories import create_account, create_merchant
from tests.features.pickingup import (
    PRICE,
    PickupWorld,
    commission,
    merchant_part,
    open_point,
    pickup_deal,
    pickup_world,
    take_seats,
)
from tests.features.test_ledger import balance, wallet
from tests.features.vouchering import sound

SERVERS = 3


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def stored(services: Services) -> dict[str, Pickup]:
    return services.db.run_sync(lambda s: {p.seat_id: p for p in s.scalars(select(Pickup))})


def money_follows_the_winner(services: Services, world: PickupWorld) -> None:
    pickups = stored(services)
    handed = [p for p in pickups.values() if p.status == "handed_over"]
    refunded = {p.seat_id for p in pickups.values() if p.status == "refunded"}
    full_refunds = Counter(
        services.db.run_sync(
            lambda s: list(s.scalars(select(Refund.seat_id).where(Refund.amount == PRICE)))
        )
    )
    assert full_refunds == Counter(refunded)
    commissions = services.db.run_sync(
        lambda s: Counter(s.scalars(select(Commission.seat_id).where(Commission.kind == "pickup")))
    )
    assert commissions == Counter(p.seat_id for p in handed)
    # Frozen until the orders' refund windows close.
    frozen = -balance(services, f"commissions_frozen:{world.leader.user_id}")
    assert frozen == len(handed) * commission()
    assert wallet(services, world.leader.user_id) == 0
    kept = len(pickups) - len(refunded)
    assert -balance(services, f"merchant_payable:{world.merchant.id}") == (
        kept * merchant_part() - len(handed) * commission()
    )
    sound(services)


def test_twenty_hand_overs_of_one_code_hand_it_over_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    world = pickup_world(client, services)
    world.arrive(client)
    code = world.codes(client)[0]
    calls = [
        Call("POST", "/v1/pickups/handover", world.leader.token, {"code": code}) for _ in range(20)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes == {"200": 1, "409 pickup_already_handed_over": 19}, outcomes
    (handed,) = [p for p in stored(services).values() if p.status == "handed_over"]
    assert handed.handed_over_by == world.leader.user_id
    money_follows_the_winner(services, world)


def test_hand_overs_racing_the_unclaimed_sweep_end_each_order_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    world = pickup_world(client, services, size=8)
    world.arrive(client)
    codes = world.codes(client)
    due = utc_now() + timedelta(seconds=1)
    services.db.run_sync(lambda s: s.execute(update(Pickup).values(claim_due_at=due)))
    worker = Worker(services)

    async def both() -> tuple[list, int]:
        calls = [
            Call("POST", "/v1/pickups/handover", world.leader.token, {"code": c}) for c in codes
        ]
        at = [due + timedelta(milliseconds=(i % 5) * 20 - 40) for i in range(len(calls))]
        return await asyncio.gather(
            cluster.fire_async(calls, at),
            asyncio.to_thread(sweep, worker, utc_now(), due + timedelta(milliseconds=300)),
        )

    replies, ticks = asyncio.run(both())
    Worker(services).run_until_idle()

    assert ticks > 0
    assert_no_server_errors(cluster, replies)
    final = stored(services)
    for reply, seat_id in zip(replies, world.seat_ids, strict=True):
        won = final[seat_id]
        assert won.status in ("handed_over", "refunded")
        assert reply.outcome == ("200" if won.status == "handed_over" else "409 pickup_refunded")
    money_follows_the_winner(services, world)


def test_shoppers_choosing_a_nearly_full_point_at_once_never_overfill_it(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    _, point = open_point(client, services, operator, capacity=3)
    deal_id = pickup_deal(client, staff, merchant.id, size=12)
    shoppers = [create_account(services) for _ in range(12)]
    seats = take_seats(client, deal_id, shoppers)
    calls = [
        Call("POST", f"/v1/seats/{seat}/pickup", shopper.token, {"pickup_point_id": point["id"]})
        for shopper, seat in zip(shoppers, seats, strict=True)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes == {"200": 3, "409 pickup_point_full": 9}, outcomes
    assert len(stored(services)) == 3
    sound(services)


def test_a_refund_racing_the_hand_over_never_leaves_the_leader_paid_on_a_refunded_order(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    """Invariant 11. Each of eight orders is handed over while its merchant's staff refund it
    in full, the two requests at once on different processes. Whichever commits first, the
    leader keeps nothing of a refunded order: the refund came first and the hand-over froze
    nothing, or the hand-over froze the commission and the refund clawed it all back. Once the
    orders' refund windows have closed, the leader's wallet is still empty."""
    world = pickup_world(client, services, size=8)
    world.arrive(client)
    calls = []
    for code, seat_id in zip(world.codes(client), world.seat_ids, strict=True):
        calls.append(Call("POST", "/v1/pickups/handover", world.leader.token, {"code": code}))
        calls.append(
            Call(
                "POST",
                f"/v1/seats/{seat_id}/refunds",
                world.staff.token,
                {"amount": PRICE, "reason": "the box came crushed"},
                headers=(("Idempotency-Key", f"crushed-{seat_id}"),),
            )
        )

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    assert {r.outcome for r in replies[0::2]} == {"200"}
    assert {r.outcome for r in replies[1::2]} == {"201"}
    kept = services.db.run_sync(
        lambda s: {
            c.seat_id: (c.status, c.amount - c.clawed_back)
            for c in s.scalars(select(Commission).where(Commission.kind == "pickup"))
        },
        write=False,
    )
    assert all(left == 0 for _, left in kept.values()), kept
    assert all(status == "clawed_back" for status, _ in kept.values()), kept
    sound(services)
    later = utc_now() + timedelta(days=services.settings.refund_window_days, minutes=1)
    Worker(services).sweep_commissions(later)
    assert wallet(services, world.leader.user_id) == 0
    assert balance(services, f"commissions_frozen:{world.leader.user_id}") == 0
    sound(services)
