"""Fulfilment's transitions under real concurrency: API processes on one database, requests fired
at once, and the worker's auto-receipt sweeping while shoppers confirm.

Two staff marking the same order shipped, each with their own tracking number, must leave it
shipped once, with one of the two numbers and one event; a shopper confirming receipt at the
instant the sweep confirms it must leave it received once, by one of them, with one event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pintuan.domain.roles import Role
from pintuan.events.models import OutboxEvent
from pintuan.fulfilment.models import Shipment
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.worker import Worker
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, running_cluster
from tests.factories import create_account
from tests.features.fulfilment import add_address, choose, goods_team, ship

SERVERS = 3


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def events(services: Services, kind: str) -> dict[str, int]:
    """How many events of ``kind`` each subject has."""
    return services.db.run_sync(
        lambda s: dict(
            s.execute(
                select(OutboxEvent.subject_id, func.count())
                .where(OutboxEvent.type == kind)
                .group_by(OutboxEvent.subject_id)
            ).all()
        )
    )


def test_two_staff_shipping_the_same_orders_at_once_ship_each_once_with_one_number(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    order = goods_team(client, services, size=4)
    second = create_account(services, role=Role.MERCHANT, merchant=order.merchant)
    for shopper, seat_id in zip(order.shoppers, order.seat_ids, strict=True):
        assert (
            choose(client, shopper, seat_id, add_address(client, shopper)["id"]).status_code == 200
        )
    calls = [
        Call(
            "POST",
            f"/v1/seats/{seat_id}/shipment",
            staff.token,
            {"carrier": carrier, "tracking_number": f"{prefix}{n:09d}"},
        )
        for n, seat_id in enumerate(order.seat_ids)
        for staff, carrier, prefix in ((order.staff, "SF Express", "SF"), (second, "EMS", "EE"))
        for _ in range(5)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    shipped = services.db.run_sync(
        lambda s: {r.seat_id: r for r in s.scalars(select(Shipment)).all()}
    )
    for n, seat_id in enumerate(order.seat_ids):
        mine = [r for r in replies if r.call.path.endswith(f"{seat_id}/shipment")]
        won = shipped[seat_id]
        assert won.status == "shipped"
        assert won.tracking_number in (f"SF{n:09d}", f"EE{n:09d}")
        for reply in mine:
            same = reply.call.json["tracking_number"] == won.tracking_number
            # The winner's copies all answer the shipment; the loser's are all refused.
            assert reply.outcome == ("200" if same else "409 already_shipped"), reply
    assert events(services, "seat.shipped") == dict.fromkeys(order.seat_ids, 1)


def test_shoppers_confirming_receipt_as_the_sweep_confirms_it_end_received_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    orders = [goods_team(client, services, size=2) for _ in range(4)]
    seats = []
    for order in orders:
        for shopper, seat_id in zip(order.shoppers, order.seat_ids, strict=True):
            choose(client, shopper, seat_id, add_address(client, shopper)["id"])
            assert ship(client, order.staff, seat_id).status_code == 200
            seats.append((shopper, seat_id))
    # Every parcel's waiting time runs out in the middle of the burst.
    due = utc_now() + timedelta(seconds=1)
    services.db.run_sync(lambda s: s.execute(update(Shipment).values(receive_due_at=due)))
    worker = Worker(services)

    def sweep_around_due() -> int:
        ticks = 0
        while utc_now() < due + timedelta(milliseconds=300):
            ticks += 1
            worker.tick()
            time.sleep(0.002)
        return ticks

    async def both() -> tuple[list, int]:
        calls = [Call("POST", f"/v1/seats/{seat_id}/receipt", s.token) for s, seat_id in seats]
        at = [due + timedelta(milliseconds=(i % 5) * 20 - 40) for i in range(len(calls))]
        return await asyncio.gather(
            cluster.fire_async(calls, at), asyncio.to_thread(sweep_around_due)
        )

    replies, ticks = asyncio.run(both())

    assert ticks > 0
    assert_no_server_errors(cluster, replies)
    assert {r.outcome for r in replies} == {"200"}
    stored = services.db.run_sync(
        lambda s: {r.seat_id: (r.status, r.received_by) for r in s.scalars(select(Shipment))}
    )
    for reply in replies:
        seat_id = reply.call.path.split("/")[3]
        status, by = stored[seat_id]
        assert status == "received"
        # Whoever won, the shopper's answer tells the truth about who confirmed it.
        assert reply.body["received_by"] == by
    assert events(services, "seat.received") == {seat_id: 1 for _, seat_id in seats}
