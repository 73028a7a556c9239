"""GET /v1/deals in the viewer's terms: sorted by ending soon, discount or popularity, filtered
by the merchant's country and the deal's currency, and paged without losing or repeating a
deal in any order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.deals.models import Deal
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.factories import create_deal, create_merchant


def set_deal(services: Services, deal_id: str, **values: object) -> None:
    services.db.run_sync(
        lambda s: s.execute(update(Deal).where(Deal.id == deal_id).values(**values))
    )


def titles(client: TestClient, query: str) -> list[str]:
    answer = client.get(f"/v1/deals?{query}")
    assert answer.status_code == 200, answer.text
    return [d["title"] for d in answer.json()["data"]]


@pytest.fixture
def catalogue(services: Services) -> dict[str, str]:
    """Four live deals: different ends, discounts and units taken, in three markets."""
    us = create_merchant(services.db)
    cn = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    de = create_merchant(services.db, currency="EUR", country="DE", time_zone="Europe/Berlin")
    now = utc_now()
    made = {
        "Soon": create_deal(services.db, us, title="Soon", list_price=1000, group_price=900),
        "Half": create_deal(services.db, cn, title="Half", list_price=1000, group_price=500),
        "Busy": create_deal(services.db, de, title="Busy", list_price=1000, group_price=800),
        "Late": create_deal(services.db, us, title="Late", list_price=1000, group_price=700),
    }
    ends = {"Soon": 1, "Half": 3, "Busy": 4, "Late": 6}
    taken = {"Soon": 1, "Half": 2, "Busy": 40, "Late": 0}
    for title, deal in made.items():
        set_deal(
            services, deal.id, ends_at=now + timedelta(days=ends[title]), committed=taken[title]
        )
    return {title: deal.id for title, deal in made.items()}


def test_deals_sort_by_ending_soon_discount_and_popularity(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    assert titles(client, "sort=ending_soon") == ["Soon", "Half", "Busy", "Late"]
    assert titles(client, "sort=discount") == ["Half", "Late", "Busy", "Soon"]
    assert titles(client, "sort=popular") == ["Busy", "Half", "Soon", "Late"]
    assert titles(client, "sort=newest") == ["Late", "Busy", "Half", "Soon"]
    assert titles(client, "") == titles(client, "sort=newest")


def test_deals_filter_by_country_and_currency(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    assert titles(client, "country=US&sort=ending_soon") == ["Soon", "Late"]
    assert titles(client, "currency=EUR") == ["Busy"]
    assert titles(client, "country=CN&currency=EUR") == []


@pytest.mark.parametrize("sort", ["newest", "ending_soon", "discount", "popular"])
def test_paging_through_any_order_shows_each_deal_once_in_that_order(
    client: TestClient, catalogue: dict[str, str], sort: str
) -> None:
    whole = titles(client, f"sort={sort}")
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        answer = client.get(f"/v1/deals?sort={sort}&limit=1{cursor}").json()
        seen += [d["title"] for d in answer["data"]]
        if answer["next_cursor"] is None:
            break
        cursor = f"&cursor={answer['next_cursor']}"

    assert seen == whole


def test_equal_sort_keys_are_paged_by_id_without_loss(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    same = [create_deal(services.db, merchant, title=f"Same {n}") for n in range(5)]
    ends = utc_now() + timedelta(days=2)
    for deal in same:
        set_deal(services, deal.id, ends_at=ends)
    seen: list[str] = []
    cursor = ""
    while True:
        answer = client.get(f"/v1/deals?sort=ending_soon&limit=2{cursor}").json()
        seen += [d["id"] for d in answer["data"]]
        if answer["next_cursor"] is None:
            break
        cursor = f"&cursor={answer['next_cursor']}"

    assert sorted(seen) == sorted(d.id for d in same)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "query",
    ["sort=cheapest", "country=usa", "currency=us", "sort=discount&cursor=ZGVhbF8x"],
)
def test_unknown_sorts_filters_and_cursors_are_refused(client: TestClient, query: str) -> None:
    answer = client.get(f"/v1/deals?{query}")

    assert answer.status_code == 422
