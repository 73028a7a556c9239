"""The aggregated feed served: who sees what (live, in stock, their market, almost full teams),
the answer's shape and propensities, every slate logged in batches, and rewards credited to the
slot that showed the item."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.feed import Candidate
from pintuan.domain.roles import Role
from pintuan.feed import tasks
from pintuan.feed.models import FeedImpression, FeedPool
from pintuan.feed.pool_log import decode_pool, read_candidates, slate_pools
from pintuan.feed.serving import FeedAsk, FeedRuntime, pseudonym
from pintuan.feed.snapshot import Market, Place, Snapshot, build_snapshot, refresh_from_outbox
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import join_over_api, pay_over_api, start_over_api
from tests.factories import create_account, create_deal, create_merchant
from tests.features.feeding import credit, flush, impressions, placements, rewards

ITEM_KEYS = {"kind", "id", "vertical", "position", "propensity", "reason"}


def feed(client: TestClient, **params: object) -> dict[str, Any]:
    response = client.get("/v1/feed", params={"slots": 20, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shown_ids(body: dict[str, Any]) -> set[str]:
    items = body["items"]
    assert isinstance(items, list)
    return {item["id"] for item in items}


def test_the_feed_shows_live_deals_in_stock_of_merchants_not_suspended(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    live = create_deal(services.db, merchant, title="Live")
    draft = create_deal(services.db, merchant, title="Draft", live=False)
    sold_out = create_deal(services.db, merchant, title="Sold out", stock=5)
    paused = create_deal(services.db, merchant, title="Paused")
    suspended_shop = create_merchant(services.db)
    of_suspended = create_deal(services.db, suspended_shop, title="Suspended")
    ended = create_deal(services.db, merchant, title="Past")

    def change(session: Session) -> None:
        past = utc_now() - timedelta(seconds=1)
        for deal_id, values in (
            (sold_out.id, {"committed": 5}),
            (paused.id, {"status": "paused"}),
            (of_suspended.id, {"merchant_suspended": True}),
            (ended.id, {"starts_at": past - timedelta(days=1), "ends_at": past}),
        ):
            session.execute(update(Deal).where(Deal.id == deal_id).values(**values))

    services.db.run_sync(change)

    body = feed(client)

    assert shown_ids(body) == {live.id}
    assert draft.id not in shown_ids(body)


def test_the_feed_keeps_to_the_viewers_market_and_place(
    client: TestClient, services: Services
) -> None:
    berlin = create_merchant(services.db, currency="EUR", country="DE", time_zone="Europe/Berlin")
    paris = create_merchant(services.db, currency="EUR", country="FR", time_zone="Europe/Paris")
    china = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    cinema = create_deal(services.db, berlin, title="Cinema", vertical=Vertical.MOVIES)
    far_cinema = create_deal(services.db, berlin, title="Far cinema", vertical=Vertical.MOVIES)
    croissants = create_deal(services.db, paris, title="Croissants")
    dumplings = create_deal(services.db, china, title="Dumplings")
    services.db.run_sync(
        lambda s: (
            s.execute(
                update(Deal)
                .where(Deal.id == cinema.id)
                .values(location_lat=52.52, location_lon=13.40)
            ),
            s.execute(
                update(Deal)
                .where(Deal.id == far_cinema.id)
                .values(location_lat=48.14, location_lon=11.58)  # Munich, 500 km away
            ),
        )
    )

    german = client.get("/v1/feed", headers={"cf-ipcountry": "DE"}).json()
    chinese = client.get("/v1/feed", params={"country": "CN"}).json()
    everywhere = feed(client)
    near_berlin = client.get(
        "/v1/feed", params={"lat": 52.5, "lon": 13.4}, headers={"cf-ipcountry": "DE"}
    ).json()

    assert shown_ids(german) == {cinema.id, far_cinema.id, croissants.id}  # DE, or priced in EUR
    assert shown_ids(chinese) == {dumplings.id}
    assert shown_ids(everywhere) == {cinema.id, far_cinema.id, croissants.id, dumplings.id}
    assert shown_ids(near_berlin) == {cinema.id, croissants.id}  # no place: shipped anywhere
    assert near_berlin["display"][0] is not None


def test_teams_one_or_two_seats_from_full_are_candidates_of_their_own(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    trio = create_deal(services.db, merchant, title="For three", team_size=3)
    five = create_deal(services.db, merchant, title="For five", team_size=5)
    almost = start_over_api(client, create_account(services), trio.id)
    join_over_api(client, create_account(services), almost.team_id)  # 1 seat left
    barely = start_over_api(client, create_account(services), five.id)  # 4 seats left

    body = feed(client)

    items = {item["id"]: item for item in body["items"]}
    assert items[almost.team_id]["kind"] == "team"
    assert items[almost.team_id]["vertical"] == "food"
    assert barely.team_id not in items
    assert {trio.id, five.id} <= set(items)
    card = body["display"][[i["id"] for i in body["items"]].index(almost.team_id)]
    assert card["seats_left"] == 1
    assert card["url"].endswith(f"/{almost.team_id}")


def test_the_answer_has_the_documented_shape_and_propensities_in_0_1(
    client: TestClient, services: Services
) -> None:
    merchants = [create_merchant(services.db) for _ in range(4)]
    made = {
        create_deal(services.db, merchants[n % 4], title=f"Deal {n}", vertical=vertical).id
        for n, vertical in enumerate(list(Vertical) * 6)
    }

    first = feed(client, slots=12)
    second = feed(client, slots=12, cursor=first["next_cursor"])

    assert set(first) == {"impression_id", "policy", "items", "next_cursor", "display"}
    items = first["items"]
    assert isinstance(items, list)
    assert len(items) == 12
    assert all(set(item) == ITEM_KEYS for item in items)
    assert [item["position"] for item in items] == list(range(12))
    assert all(0 < item["propensity"] <= 1 for item in items)
    assert first["policy"] == "linucb"
    assert second["impression_id"] != first["impression_id"]
    assert not shown_ids(first) & shown_ids(second)  # the continuation shows new items
    assert shown_ids(first) | shown_ids(second) <= made


def test_bad_feed_requests_are_refused_with_stable_codes(client: TestClient) -> None:
    cases = {
        "slots=0": "validation_error",
        "slots=51": "validation_error",
        "vertical=pets": "validation_error",
        "lat=52.5": "feed_location_incomplete",
        "cursor=bm90LWEtY3Vyc29y": "invalid_cursor",
        "cursor=%%%": "invalid_cursor",
    }
    for query, code in cases.items():
        response = client.get(f"/v1/feed?{query}")
        assert response.status_code == 422, query
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code, query
    # An unknown token is refused, not served as a visitor.
    unknown = client.get("/v1/feed", headers={"Authorization": "Bearer pt_not_a_token"})
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_token")


def test_the_feeds_documented_parameters_are_its_query_alone(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/feed"]["get"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        (name, "query") for name in ("slots", "vertical", "country", "lat", "lon", "cursor")
    ]


def logged_candidates(services: Services, row: FeedImpression) -> list[Candidate]:
    """A logged slate's pool, read as evaluation and learning read it."""

    def read(session: Session) -> list[Candidate] | None:
        pools = slate_pools(session, [(row.pool_id, row.pool)])
        return decode_pool(pools[0], read_candidates(session, pools))

    candidates = services.db.run_sync(read)
    assert candidates is not None
    return candidates


def test_every_slate_is_logged_in_batches_with_the_pool_the_policy_saw(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    for n in range(8):
        create_deal(services.db, merchant, title=f"Deal {n}")
    served = [feed(client, slots=5) for _ in range(6)]

    assert impressions(services) == []  # nothing written on the request path
    assert flush(client) == 6

    logged = {i.id: i for i in impressions(services)}
    assert set(logged) == {body["impression_id"] for body in served}
    for body in served:
        row = logged[str(body["impression_id"])]
        slots = placements(services, row.id)
        assert [(p.kind, p.item_id, p.position, p.propensity, p.reason) for p in slots] == [
            (i["kind"], i["id"], i["position"], i["propensity"], i["reason"]) for i in body["items"]
        ]
        pool = logged_candidates(services, row)
        assert {c.item_id for c in pool} >= shown_ids(body)
        assert row.pool_id is not None  # the pool is its own row, named
        assert row.pool == []
        assert row.viewer.startswith("anon_")
        assert row.policy == body["policy"]
        assert row.rules["merchant_cap"] is None


def test_the_slates_of_one_second_and_one_ask_share_their_pool_and_each_is_drawn_anew(
    services: Services,
) -> None:
    """A busy process draws the pool of an ask once a second (its random part included) and
    every slate of that second from it; an ask with a place or a cursor, a new second or a new
    snapshot draws its own. Every slate is logged with the pool it was drawn from."""
    merchant = create_merchant(services.db)
    for n in range(120):  # more than a pool holds, so that pools drawn anew differ
        create_deal(services.db, merchant, title=f"Deal {n}")
    runtime = FeedRuntime(services.settings, services.db, random.Random(5))
    snapshot = services.db.run_sync(lambda s: build_snapshot(s, utc_now(), 1), write=False)
    runtime.snapshot = snapshot
    runtime.reload()
    now = utc_now().replace(microsecond=0)

    def ask(**changes: Any) -> FeedAsk:
        return replace(FeedAsk("anon_a", Market(None, None), None, None, 10), **changes)

    def pool_of(slate: Any) -> str:
        return str(logged[slate.impression_id]["pool_id"])

    one_second = [
        runtime.serve(ask(pseudonym=f"anon_{n}"), runtime.no_history, now) for n in range(6)
    ]
    later = now + timedelta(milliseconds=999)
    one_second.append(runtime.serve(ask(), runtime.no_history, later))
    elsewhere = runtime.serve(ask(place=Place(0.0, 0.0)), runtime.no_history, now)
    continued = runtime.serve(
        ask(exclude=frozenset({"deal_x"}), continues="imp_x"), runtime.no_history, now
    )
    next_second = runtime.serve(ask(), runtime.no_history, now + timedelta(seconds=1))
    runtime.snapshot = services.db.run_sync(lambda s: build_snapshot(s, utc_now(), 2), write=False)
    new_snapshot = runtime.serve(ask(), runtime.no_history, later)
    logged = {slate.impression["id"]: slate.impression for slate in runtime._slates}

    assert len({pool_of(slate) for slate in one_second}) == 1
    assert len({tuple(s.item.item_id for s in slate.shown) for slate in one_second}) > 1
    others = (elsewhere, continued, next_second, new_snapshot)
    pools = {pool_of(s) for s in (one_second[0], *others)}
    assert len(pools) == 5
    assert json.loads(str(logged[continued.impression_id]["filters"]))["continues"] == "imp_x"

    assert runtime.flush() == 11
    # Each pool is written once, however many slates name it.
    written = services.db.run_sync(lambda s: list(s.scalars(select(FeedPool.id))))
    assert sorted(written) == sorted({pool_of(slate) for slate in (*one_second, *others)})
    for row in impressions(services):
        pool_ids = {c.item_id for c in logged_candidates(services, row)}
        assert {p.item_id for p in placements(services, row.id)} <= pool_ids


def test_a_click_is_credited_once_to_the_slot_that_showed_the_item(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deals = [create_deal(services.db, merchant, title=f"Deal {n}").id for n in range(3)]
    body = feed(client, slots=3)
    first = body["items"][0]
    url = body["display"][0]["url"]
    other = next(d for d in deals if d != first["id"])

    opened = client.get(url, follow_redirects=False)
    client.get(url, follow_redirects=False)  # twice: still one click
    client.get(  # a made-up link naming another item is not credited
        f"/feed/go/{body['impression_id']}/0/{other}", follow_redirects=False
    )
    flush(client)

    assert opened.status_code == 303
    assert opened.headers["location"] == f"/deals/{first['id']}"
    assert rewards(services) == [(body["impression_id"], 0, "click")]


def test_joins_payments_and_team_success_are_credited_to_the_slate_that_showed_them(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    pair = create_deal(services.db, merchant, title="For two", team_size=2)
    leader, joiner = create_account(services), create_account(services)
    seen = client.get("/v1/feed", headers=leader.headers).json()
    assert pair.id in shown_ids(seen)
    flush(client)

    started = start_over_api(client, leader, pair.id)
    pay_over_api(client, leader, started.seat_id)
    joiner_saw = client.get("/v1/feed", headers=joiner.headers).json()
    team_slot = [i for i in joiner_saw["items"] if i["id"] == started.team_id]
    assert team_slot
    assert team_slot[0]["kind"] == "team"
    flush(client)
    joined = join_over_api(client, joiner, started.team_id)
    pay_over_api(client, joiner, joined.seat_id)  # fills the team: it succeeds
    credit(services)

    leader_slot = next(i["position"] for i in seen["items"] if i["id"] == pair.id)
    got = set(rewards(services))
    assert {
        (seen["impression_id"], leader_slot, "join"),
        (seen["impression_id"], leader_slot, "pay"),
        (seen["impression_id"], leader_slot, "team_success"),
        (joiner_saw["impression_id"], team_slot[0]["position"], "join"),
        (joiner_saw["impression_id"], team_slot[0]["position"], "pay"),
        (joiner_saw["impression_id"], team_slot[0]["position"], "team_success"),
    } == got
    assert credit(services) == 0  # read once


def test_a_join_long_after_the_slate_is_not_credited(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, title="Later")
    shopper = create_account(services)
    client.get("/v1/feed", headers=shopper.headers)
    flush(client)
    services.db.run_sync(
        lambda s: s.execute(update(FeedImpression).values(served_at=utc_now() - timedelta(days=2)))
    )
    start_over_api(client, shopper, deal.id)
    credit(services)

    assert rewards(services) == []


def test_a_join_is_credited_to_the_latest_slate_that_showed_it_past_many_that_did_not(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, title="Seen once")
    shopper = create_account(services)
    saw = client.get("/v1/feed", headers=shopper.headers).json()
    slot = next(item["position"] for item in saw["items"] if item["id"] == deal.id)
    seen = utc_now()
    flush(client)
    viewer = pseudonym(services.settings, user_id=shopper.user_id)
    other = [[0, "deal", "deal_other", "food", "mer_other", 1.0, "best"]]
    newer = 2 * tasks._CREDIT_PAGE + 3

    def newer_slates(session: Session) -> None:
        # More slates since than the crediting reads at a time, none showing the deal.
        step = (utc_now() - seen) / (newer + 1)
        for number in range(newer):
            session.add(
                FeedImpression(
                    id=f"imp_later_{number:03d}",
                    served_at=seen + step * (number + 1),
                    viewer=viewer,
                    policy="linucb",
                    slots=1,
                    filters={},
                    viewer_features=[],
                    pool=[],
                    rules={},
                    placements=other,
                )
            )

    services.db.run_sync(newer_slates)
    start_over_api(client, shopper, deal.id)
    credit(services)

    assert rewards(services) == [(saw["impression_id"], slot, "join")]


def test_a_join_is_credited_to_the_teams_own_card_when_its_deal_showed_first(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    trio = create_deal(services.db, merchant, title="For three", team_size=3)
    team = start_over_api(client, create_account(services), trio.id)
    join_over_api(client, create_account(services), team.team_id)  # one seat from full
    pinned = client.put(
        "/v1/operator/feed",
        json={
            "rules": {
                "exploration": 0.0,
                "min_share": {},
                "pins": {"0": f"deal:{trio.id}"},
                "boosts": {},
                "merchant_cap": None,
                "reward_weights": {},
            },
            "arms": [{"name": "linucb", "kind": "linucb", "share": 1}],
        },
        headers=operator.headers,
    )
    assert pinned.status_code == 200, pinned.text
    shopper = create_account(services)
    saw = client.get("/v1/feed", headers=shopper.headers).json()
    slots = {item["id"]: item["position"] for item in saw["items"]}
    assert slots[trio.id] == 0
    assert slots[team.team_id] > 0
    flush(client)

    join_over_api(client, shopper, team.team_id)
    credit(services)

    assert rewards(services) == [(saw["impression_id"], slots[team.team_id], "join")]


def test_a_refresh_from_the_outbox_follows_starts_and_joins(
    client: TestClient, services: Services
) -> None:
    """What the outbox says (a team started, a seat taken) reaches the snapshot at the next
    refresh, for the deals it names and no other."""
    merchant = create_merchant(services.db)
    watched = create_deal(services.db, merchant, title="Watched", team_size=4)
    quiet = create_deal(services.db, merchant, title="Quiet")
    db = services.db
    before = db.run_sync(lambda s: build_snapshot(s, utc_now(), 1), write=False)
    assert not [t for t in before.teams.values() if t.deal_id == watched.id]

    def refreshed(snapshot: Snapshot) -> Snapshot | None:
        return db.run_sync(lambda s: refresh_from_outbox(s, snapshot, utc_now()), write=False)

    team_id = start_over_api(client, create_account(services), watched.id).team_id
    started = refreshed(before)
    assert started is not None
    assert (started.teams[team_id].deal_id, started.teams[team_id].taken) == (watched.id, 1)
    join_over_api(client, create_account(services), team_id)
    joined = refreshed(started)
    assert joined is not None
    assert joined.teams[team_id].taken == 2
    assert joined.last_event_id > started.last_event_id > before.last_event_id
    assert joined.deals[quiet.id] is before.deals[quiet.id]
    assert refreshed(joined) is None  # nothing new since


def test_slates_older_than_the_log_window_are_forgotten_with_their_placements_and_rewards(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    for n in range(3):
        create_deal(services.db, merchant, title=f"Deal {n}")
    old = feed(client, slots=3)
    recent = feed(client, slots=2)
    client.get(old["display"][0]["url"], follow_redirects=False)
    client.get(recent["display"][0]["url"], follow_redirects=False)
    flush(client)
    days = services.settings.feed_log_days
    now = utc_now()
    long_ago = now - timedelta(days=days, minutes=1)
    old_pool = services.db.run_sync(
        lambda s: s.scalar(
            select(FeedImpression.pool_id).where(FeedImpression.id == old["impression_id"])
        )
    )

    def age(session: Session) -> None:
        session.execute(
            update(FeedImpression)
            .where(FeedImpression.id == old["impression_id"])
            .values(served_at=long_ago)
        )
        # Its pool was made with it (the recent slate asked for two slots: a pool of its own).
        session.execute(update(FeedPool).where(FeedPool.id == old_pool).values(created_at=long_ago))

    services.db.run_sync(age)
    assert services.db.run_sync(tasks.feed_work_due, now, services.settings).forget

    forgotten = services.db.run_sync(tasks.forget_old_slates, services.settings, now, 500)

    assert forgotten == 1
    assert [i.id for i in impressions(services)] == [recent["impression_id"]]
    assert placements(services, old["impression_id"]) == []
    assert len(placements(services, recent["impression_id"])) == 2
    assert rewards(services) == [(recent["impression_id"], 0, "click")]
    pools = services.db.run_sync(lambda s: list(s.scalars(select(FeedPool.id))))
    assert old_pool not in pools
    assert len(pools) == 1  # the recent slate's
    assert not services.db.run_sync(tasks.feed_work_due, now, services.settings).forget
    assert services.db.run_sync(tasks.forget_old_slates, services.settings, now, 500) == 0


def test_the_worker_forgets_old_slates_a_batch_at_a_time(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    create_deal(services.db, merchant, title="Deal")
    served = [feed(client, slots=1)["impression_id"] for _ in range(5)]
    flush(client)
    long_ago = utc_now() - timedelta(days=services.settings.feed_log_days + 1)
    services.db.run_sync(
        lambda s: s.execute(
            update(FeedImpression)
            .where(FeedImpression.id.in_(served[:4]))
            .values(served_at=long_ago)
        )
    )
    worker = Worker(services)
    worker.batch = 3

    first = worker.tick()
    second = worker.tick()

    assert (first.feed_slates_forgotten, second.feed_slates_forgotten) == (3, 1)
    assert [i.id for i in impressions(services)] == [served[4]]


def test_a_failed_batch_is_written_with_the_next_and_keeps_its_pools(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = create_merchant(services.db)
    for n in range(5):
        create_deal(services.db, merchant, title=f"Deal {n}")
    runtime = FeedRuntime(services.settings, services.db, random.Random(3))
    runtime.snapshot = services.db.run_sync(lambda s: build_snapshot(s, utc_now(), 1), write=False)
    runtime.reload()
    now = utc_now()
    ask = FeedAsk("anon_a", Market(None, None), None, None, 3)
    first = [runtime.serve(ask, runtime.no_history, now) for _ in range(3)]
    real_run_sync = runtime.db.run_sync
    calls = 0

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return real_run_sync(*args, **kwargs)

    monkeypatch.setattr(runtime.db, "run_sync", failing_once)
    with pytest.raises(RuntimeError):
        runtime.flush()
    # Slates of the same pool served after the failure name the pool the failed batch held.
    later = runtime.serve(ask, runtime.no_history, now)
    assert runtime.flush() == 4

    rows = {row.id: row for row in impressions(services)}
    assert set(rows) == {slate.impression_id for slate in (*first, later)}
    for row in rows.values():
        assert logged_candidates(services, row)  # its pool is there


def test_a_slow_snapshot_read_never_replaces_one_that_started_after_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The maintenance thread's rebuild started before a deal was made, and finished after a
    request had read a snapshot with the deal in it: the request's stays in place."""
    import asyncio
    import threading

    runtime = FeedRuntime(services.settings, services.db, random.Random(1))
    before = services.db.run_sync(lambda s: build_snapshot(s, utc_now(), 1), write=False)
    started, finish = threading.Event(), threading.Event()

    def slow_read(work: Any) -> Any:
        started.set()
        finish.wait(10)
        return before  # what the database held when this read began: no deal

    monkeypatch.setattr(services.db, "read_stale_sync", slow_read)
    rebuilding = threading.Thread(target=runtime.rebuild)
    rebuilding.start()
    assert started.wait(10)
    deal = create_deal(services.db, create_merchant(services.db), title="Made meanwhile")
    asyncio.run(runtime.ensure_ready())
    finish.set()
    rebuilding.join(10)

    assert deal.id in runtime.snapshot.deals
    assert runtime.snapshot.countries
