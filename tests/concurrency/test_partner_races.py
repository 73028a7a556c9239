"""Offers under real concurrency: two servers (each with its own connection pool) on one
database, requests fired at once. Concurrent publications of one external id make one deal;
stock lowered while shoppers race for it never falls below what they hold.

The servers run in threads of this process, so that the one place standing in for the OAuth
server (``tests.partnering.acting_as_apps``) can tell them which app a key is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.deals.models import Deal
from pintuan.domain.apps import AppPrincipal
from pintuan.domain.roles import Role
from pintuan.domain.teams import LIVE_SEATS
from pintuan.events.models import OutboxEvent
from pintuan.kit.serving import Server, free_port, start_in_thread, stop_all
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.webhooks.models import WebhookEndpoint
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, create_shoppers
from tests.factories import create_account, create_merchant
from tests.partnering import ALL, acting_as_apps, create_app_record, install_app, offer_body

SERVERS = 2
KEY = "racing-app"


@pytest.fixture
def racing(settings: Settings, services: Services) -> Iterator[tuple[Cluster, str]]:
    """Servers that take ``Bearer racing-app`` as an app installed on a fresh merchant; the
    merchant's id."""
    shop = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=shop)
    app_id = create_app_record(services.db, staff.user_id)
    install_app(services.db, app_id, shop.id, staff.user_id)
    principal = AppPrincipal(app_id, ALL, staff.user_id, shop.id)
    servers: list[Server] = []
    pools = [build_services(settings) for _ in range(SERVERS)]
    try:
        for pool in pools:
            app = create_app(settings, pool)
            acting_as_apps(app)[KEY] = principal
            server = start_in_thread(app, free_port())
            servers.append(server)
            server.wait_ready("/healthz")
        yield Cluster(servers), shop.id
    finally:
        stop_all(servers)
        for pool in pools:
            pool.db.dispose()


def put(external_id: str, **body: Any) -> Call:
    return Call("PUT", f"/v1/partner/offers/{external_id}", token=KEY, json=offer_body(**body))


def offer_deals(services: Services, external_id: str) -> list[Deal]:
    return services.db.run_sync(
        lambda s: list(s.scalars(select(Deal).where(Deal.external_id == external_id))),
        write=False,
    )


def test_concurrent_publications_of_one_external_id_make_one_deal(
    racing: tuple[Cluster, str], services: Services
) -> None:
    cluster, _ = racing
    calls = [put("premiere", stock=40 + n % 4) for n in range(24)]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    assert Counter(r.status for r in replies)[201] == 1, [r.outcome for r in replies]
    assert {r.status for r in replies} == {200, 201}
    (deal,) = offer_deals(services, "premiere")
    assert {r.body["deal_id"] for r in replies} == {deal.id}
    published = services.db.run_sync(
        lambda s: s.scalar(select(func.count()).where(OutboxEvent.type == "offer.published")),
        write=False,
    )
    assert published == 1
    # the last write wins, and it is one of those sent
    assert deal.stock in {40, 41, 42, 43}


def test_stock_lowered_while_shoppers_race_never_falls_below_what_they_hold(
    racing: tuple[Cluster, str], services: Services
) -> None:
    cluster, _ = racing
    created = cluster.fire([put("matinee", stock=30, team_size=2)])
    assert created[0].status == 201, created[0].body
    deal_id = created[0].body["deal_id"]
    shoppers = create_shoppers(services, 40)
    starts = [Call("POST", f"/v1/deals/{deal_id}/teams", token=s.token) for s in shoppers]
    lowerings = [put("matinee", stock=stock, team_size=2) for stock in (24, 20, 16, 12, 8, 4)]
    # interleaved, so that lowerings land among the joins
    calls = [c for pair in zip(starts[::6], lowerings, strict=False) for c in pair] + [
        c for n, c in enumerate(starts) if n % 6
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    deal = services.db.run_sync(lambda s: s.get(Deal, deal_id), write=False)
    assert deal is not None
    live_seats = services.db.run_sync(
        lambda s: s.scalar(
            select(func.count()).where(
                Seat.deal_id == deal_id, Seat.status.in_([x.value for x in LIVE_SEATS])
            )
        ),
        write=False,
    )
    started = [r for r in replies if r.call.method == "POST" and r.status == 201]
    assert deal.committed == live_seats == len(started)
    assert deal.committed <= deal.stock
    outcomes = Counter(r.outcome for r in replies)
    assert set(outcomes) <= {"200", "201", "409 sold_out", "409 stock_below_committed"}, outcomes
    for r in replies:
        if r.code == "stock_below_committed":
            assert r.body["committed"] > r.call.json["stock"]
    accepted = [r.call.json["stock"] for r in replies if r.call.method == "PUT" and r.status == 200]
    assert deal.stock in {30, *accepted}


def test_concurrent_registrations_of_one_address_make_one_endpoint(
    racing: tuple[Cluster, str], services: Services
) -> None:
    cluster, _ = racing
    url = "https://cinema.example/webhooks"
    calls = [
        Call("POST", "/v1/webhook_endpoints", token=KEY, json={"url": url, "events": ["seat.paid"]})
        for _ in range(16)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    assert Counter(r.outcome for r in replies) == {
        "201": 1,
        "409 webhook_endpoint_exists": len(calls) - 1,
    }
    (endpoint,) = services.db.run_sync(
        lambda s: list(s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.url == url))),
        write=False,
    )
    assert {r.body.get("endpoint_id", r.body.get("id")) for r in replies} == {endpoint.id}
