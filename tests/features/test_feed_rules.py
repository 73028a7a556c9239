"""Operators steer the feed: rules honoured in served slates (pins, a cap per merchant, a least
share per vertical), an A/B split logged per arm, and the worker's learning moving the model
that serving processes reload."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.feed.pool_log import slate_pools
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.console_data import form_post, log_in
from tests.factories import create_account, create_deal, create_merchant
from tests.features.feeding import (
    flush,
    impressions,
    learn,
    models,
    placements,
    rewards,
    runtime_of,
)


def rules(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "exploration": 0.1,
        "min_share": {},
        "pins": {},
        "boosts": {},
        "merchant_cap": None,
        "reward_weights": {},
    }
    return {**base, **overrides}


def put(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.put("/v1/operator/feed", json=body, headers=headers)


def test_pins_and_the_cap_per_merchant_hold_in_every_slate(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    big, small = create_merchant(services.db), create_merchant(services.db)
    for n in range(10):
        create_deal(services.db, big, title=f"Big {n}")
    pinned = create_deal(services.db, small, title="Pinned")
    create_deal(services.db, small, title="Small")

    saved = put(
        client,
        operator.headers,
        {
            "rules": rules(pins={"0": f"deal:{pinned.id}"}, merchant_cap=2),
            "arms": [{"name": "linucb", "kind": "linucb", "share": 1}],
        },
    )
    slates = [client.get("/v1/feed", params={"slots": 10}).json() for _ in range(20)]

    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    for slate in slates:
        first = slate["items"][0]
        assert (first["id"], first["propensity"], first["reason"]) == (pinned.id, 1.0, "pinned")
        per_merchant = Counter(card["merchant_id"] for card in slate["display"])
        assert max(per_merchant.values()) <= 2
        assert len(slate["items"]) == 4  # two of each merchant, then nothing is eligible


def test_a_small_vertical_gets_its_least_share_of_every_slate(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    for n in range(30):
        create_deal(services.db, merchant, title=f"Food {n}", list_price=2000, group_price=500)
    for n in range(3):
        create_deal(services.db, merchant, title=f"Film {n}", vertical=Vertical.MOVIES)
    put(
        client,
        operator.headers,
        {
            "rules": rules(min_share={"movies": 0.2}, exploration=0.0),
            "arms": [{"name": "pop", "kind": "popularity", "share": 1}],
        },
    )

    for _ in range(10):
        slate = client.get("/v1/feed", params={"slots": 10}).json()
        assert sum(item["vertical"] == "movies" for item in slate["items"]) >= 2


def test_an_ab_split_serves_each_viewer_one_arm_and_logs_it(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    merchant = create_merchant(services.db)
    for n in range(6):
        create_deal(services.db, merchant, title=f"Deal {n}")
    put(
        client,
        operator.headers,
        {
            "rules": rules(),
            "arms": [
                {"name": "bandit", "kind": "linucb", "params": {"alpha": 1.0}, "share": 0.5},
                {"name": "control", "kind": "random", "share": 0.5},
            ],
        },
    )
    shoppers = [create_account(services) for _ in range(16)]

    served = {
        s.user_id: {client.get("/v1/feed", headers=s.headers).json()["policy"] for _ in range(2)}
        for s in shoppers
    }
    flush(client)

    assert all(len(arms) == 1 for arms in served.values())  # a viewer stays in their arm
    assert set().union(*served.values()) == {"bandit", "control"}
    logged = Counter(i.policy for i in impressions(services))
    assert logged == Counter(arm for arms in served.values() for arm in arms for _ in range(2))
    random_slate = next(i for i in impressions(services) if i.policy == "control")
    # The random arm's propensities are its own: uniform over what was eligible at each slot.
    first = placements(services, random_slate.id)[0]
    pool = services.db.run_sync(
        lambda s: slate_pools(s, [(random_slate.pool_id, random_slate.pool)])[0]
    )
    assert pool
    assert abs(first.propensity - 1 / len(pool)) < 1e-9


def test_bad_rules_are_refused_whole_with_their_fields(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    shopper = create_account(services)
    arms = [
        {"name": "a", "kind": "linucb", "share": 0.6},
        {"name": "b", "kind": "random", "share": 0.3},
    ]

    unbalanced = put(client, operator.headers, {"rules": rules(), "arms": arms})
    odd = put(
        client,
        operator.headers,
        {
            "rules": rules(min_share={"pets": 0.5}, pins={"0": "deal:nope"}),
            "arms": [{"name": "a", "kind": "linucb", "params": {"gamma": 1}, "share": 1}],
        },
    )
    not_allowed = put(client, shopper.headers, {"rules": rules(), "arms": arms[:1]})
    stale = put(
        client,
        operator.headers,
        {"rules": rules(), "arms": [{**arms[0], "share": 1}], "version": 3},
    )

    assert unbalanced.status_code == 422
    assert unbalanced.json()["code"] == "feed_rules_invalid"
    assert odd.json()["code"] == "feed_rules_invalid"
    fields = {e["field"] for e in odd.json()["errors"]}
    assert fields == {"rules.min_share.pets", "rules.pins.0", "arms.0.params.gamma"}
    assert not_allowed.status_code == 403
    assert stale.status_code == 409
    assert stale.json()["code"] == "feed_rules_changed"
    config = client.get("/v1/operator/feed", headers=operator.headers).json()
    assert config["stored"] is False
    assert config["version"] == 0


def test_learning_moves_the_model_and_serving_reloads_it(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    for n in range(5):
        create_deal(services.db, merchant, title=f"Deal {n}")
    slates = [client.get("/v1/feed", params={"slots": 3}).json() for _ in range(4)]
    client.get(slates[0]["display"][0]["url"], follow_redirects=False)
    flush(client)

    assert learn(services) == 1  # the click; the other slots are not yet past the window
    first = models(services)["linucb"]
    later = utc_now() + timedelta(minutes=services.settings.feed_learn_after_minutes + 1)
    taught = learn(services, later)
    second = models(services)["linucb"]
    runtime_of(client).reload()

    assert first.version == 1
    assert first.state["learnt"] == 1
    assert any(value != 0 for value in first.state["b"])
    assert taught == 4  # the four slates, their eleven unrewarded slots taught as zero
    assert second.version == 2
    assert second.state["learnt"] == 12
    assert runtime_of(client).policies["linucb"].state()["learnt"] == 12
    assert learn(services, later) == 0  # nothing is taught twice
    assert len(rewards(services)) == 1


def test_the_console_page_saves_rules_and_a_split_and_names_bad_fields(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)
    page = client.get("/console/operator/feed/rules", headers={"accept": "text/html"})

    saved = form_post(
        client,
        "/console/operator/feed/rules",
        "/console/operator/feed/rules",
        {
            "exploration": "0.2",
            "merchant_cap": "4",
            "share_travel": "0.1",
            "weight_pay": "7",
            "arm_name_0": "bandit",
            "arm_kind_0": "linucb",
            "arm_share_0": "0.7",
            "arm_alpha_0": "0.8",
            "arm_name_1": "control",
            "arm_kind_1": "random",
            "arm_share_1": "0.3",
            "version": "0",
        },
    )
    refused = form_post(
        client,
        "/console/operator/feed/rules",
        "/console/operator/feed/rules",
        {
            "exploration": "lots",
            "arm_name_0": "bandit",
            "arm_kind_0": "linucb",
            "arm_share_0": "1",
            "version": "1",
        },
    )
    config = client.get("/v1/operator/feed", headers=operator.headers).json()

    assert page.status_code == 200
    assert 'name="arm_share_0"' in page.text
    assert saved.status_code == 303
    assert config["version"] == 1
    assert [(a["name"], a["share"]) for a in config["arms"]] == [("bandit", 0.7), ("control", 0.3)]
    assert config["rules"]["min_share"] == {"travel": 0.1}
    assert config["rules"]["reward_weights"]["pay"] == 7
    assert config["rules"]["merchant_cap"] == 4
    assert {a["name"] for a in config["arms"]} == set(runtime_of(client).policies)
    assert refused.status_code == 422
    assert "rules.exploration" in refused.text
