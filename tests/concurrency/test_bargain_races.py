"""Bargains under real concurrency: API processes on one database, requests fired at once.

Fifty friends (fifty accounts, devices and network addresses, through a trusted proxy) cut one
bargain that needs twenty cuts: exactly twenty succeed, at positions 1 to 20 with the amounts
its seed schedules, the price lands exactly on the floor, and the other thirty hear
``bargain_complete``. Its owner's purchase fired ten times at once makes one seat, at the floor
price, even though the deal would let them hold five; paid, the bargain reads bought. The
bargains' audit, the ledger's checks and the engine's audit pass after each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.bargains.models import BargainCut
from pintuan.domain.bargains import cut_schedule
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    create_shoppers,
    running_cluster,
)
from tests.factories import create_account
from tests.features.test_bargains import (
    FLOOR,
    LIST_PRICE,
    audit_clean,
    bargain_deal,
    open_bargain,
    stored,
)
from tests.features.test_ledger import pay

SERVERS = 3
HELPERS_NEEDED = 20
FRIENDS = 50


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # The test's requests come from loopback, a trusted proxy: X-Forwarded-For names each
    # friend's own network address.
    with running_cluster(
        database_url, SERVERS, tmp_path_factory.mktemp("servers"), trusted_proxies="127.0.0.1"
    ) as running:
        yield running


def cuts_of(services: Services, bargain_id: str) -> list[BargainCut]:
    return services.db.run_sync(
        lambda s: list(
            s.scalars(
                select(BargainCut)
                .where(BargainCut.bargain_id == bargain_id)
                .order_by(BargainCut.position)
            )
        ),
        write=False,
    )


def test_fifty_friends_cutting_at_once_make_exactly_the_cuts_needed(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    world = bargain_deal(client, services, helpers=HELPERS_NEEDED)
    bargain_id = open_bargain(client, create_account(services), world.deal.id)["id"]
    friends = create_shoppers(services, FRIENDS)
    calls = [
        Call(
            "POST",
            f"/v1/bargains/{bargain_id}/cuts",
            friend.token,
            headers=(("X-Forwarded-For", f"198.51.100.{n + 1}"), ("X-Device-Id", f"phone-{n}")),
        )
        for n, friend in enumerate(friends)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes == {"201": HELPERS_NEEDED, "409 bargain_complete": FRIENDS - HELPERS_NEEDED}
    bargain = stored(services, bargain_id)
    assert (bargain.cuts, bargain.price_amount) == (HELPERS_NEEDED, FLOOR)
    made = cuts_of(services, bargain_id)
    assert [c.position for c in made] == list(range(1, HELPERS_NEEDED + 1))
    schedule = cut_schedule(bargain.seed, LIST_PRICE - FLOOR, HELPERS_NEEDED)
    assert [c.amount for c in made] == schedule
    winners = {r.call.token for r in replies if r.status == 201}
    assert {c.helper_id for c in made} == {f.user_id for f in friends if f.token in winners}
    # Each success said the position and the price it left, one after the other.
    said = sorted(
        (r.body["position"], r.body["price"]["amount"]) for r in replies if r.status == 201
    )
    assert said == [(k, LIST_PRICE - sum(schedule[:k])) for k in range(1, HELPERS_NEEDED + 1)]
    audit_clean(services)


def test_the_owners_purchase_fired_ten_times_at_once_makes_one_seat(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    world = bargain_deal(client, services, helpers=2, per_user_limit=5)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    for n, friend in enumerate(create_shoppers(services, 2)):
        cut = TestClient(client.app, client=(f"203.0.113.{n + 1}", 40000)).post(
            f"/v1/bargains/{bargain_id}/cuts", headers=friend.headers
        )
        assert cut.status_code == 201, cut.text
    calls = [Call("POST", f"/v1/bargains/{bargain_id}/purchase", owner.token) for _ in range(10)]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes == {"201": 1, "409 bargain_already_bought": 9}, outcomes
    (won,) = [r for r in replies if r.status == 201]
    seats = services.db.run_sync(
        lambda s: list(s.scalars(select(Seat).where(Seat.deal_id == world.deal.id))), write=False
    )
    assert [(s.id, s.user_id, s.price_amount) for s in seats] == [
        (won.body["seat"]["id"], owner.user_id, FLOOR)
    ]
    assert {r.body["seat_id"] for r in replies if r.status == 409} == {seats[0].id}
    bargain = stored(services, bargain_id)
    assert (bargain.seat_id, bargain.bought_price_amount) == (seats[0].id, FLOOR)

    pay(client, owner, seats[0].id)
    Worker(services).run_until_idle()

    assert client.get(f"/v1/bargains/{bargain_id}").json()["status"] == "bought"
    audit_clean(services)
