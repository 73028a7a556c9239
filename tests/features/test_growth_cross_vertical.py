"""Cross-vertical flow: paid orders by the vertical their buyer first came for.

The story (UTC; W49 = week of Mon 30 Nov 2026, W50 = week of Mon 7 Dec):

Mon W49 Alice starts a food team and pays: she came for food.
        Alice shares the movies deal; Bob opens her share, signed in (he came for movies).
Tue W49 a preview bot opens it too (never a shopper's first touch).
Mon W50 Alice starts a movies team and pays: food → movies, cross-vertical.
        Bob starts a food team and pays: movies → food, cross-vertical.
        Carol starts a travel team and pays: travel → travel.

By hand: W49 1 order (food → food), 1 buyer, none across. W50 3 orders, 2 across (Alice's,
Bob's), 3 buyers, 2 across; the movies merchant's staff see only Alice's movies order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.domain.traffic import Channel
from pintuan.services import Services
from tests.console_data import HTML, log_in
from tests.factories import create_account, create_merchant
from tests.features.sharing import WHATSAPP_PREVIEW, long_deal, move_to, pay, share, start, visit

W49 = datetime(2026, 11, 30, tzinfo=UTC)
W50 = W49 + timedelta(days=7)


@pytest.fixture
def story(services: Services) -> dict[str, str]:
    move_to(W49 + timedelta(hours=9))
    food_m, movies_m, travel_m = (create_merchant(services.db) for _ in range(3))
    food = long_deal(services, food_m, vertical=Vertical.FOOD, team_size=5)
    movies = long_deal(services, movies_m, vertical=Vertical.MOVIES, team_size=5)
    travel = long_deal(services, travel_m, vertical=Vertical.TRAVEL, team_size=5)
    alice, bob, carol = (create_account(services) for _ in range(3))

    move_to(W49 + timedelta(hours=10))
    pay(services, start(services, alice, food.id).seat.id)
    shared = share(services, alice, deal_id=movies.id, channel=Channel.WECHAT)
    move_to(W49 + timedelta(hours=11))
    visit(services, shared, user=bob)
    move_to(W49 + timedelta(days=1))
    visit(services, shared, user_agent=WHATSAPP_PREVIEW)

    move_to(W50 + timedelta(hours=10))
    pay(services, start(services, alice, movies.id).seat.id)
    pay(services, start(services, bob, food.id).seat.id)
    pay(services, start(services, carol, travel.id).seat.id)
    staff = create_account(services, role=Role.MERCHANT, merchant=movies_m)
    operator = create_account(services, role=Role.OPERATOR)
    shopper = create_account(services)
    return {
        "operator": operator.token,
        "staff": staff.token,
        "shopper": shopper.token,
        "movies_merchant": movies_m.id,
    }


def get(client: TestClient, token: str, **params: str) -> dict:
    response = client.get(
        "/v1/growth/cross-vertical",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_orders_are_credited_to_the_vertical_their_buyer_first_came_for(
    client: TestClient, story: dict[str, str]
) -> None:
    weeks = get(client, story["operator"], **{"from": "2026-W49", "to": "2026-W50"})["data"]

    assert [w["week"] for w in weeks] == ["2026-W49", "2026-W50"]
    w49, w50 = weeks
    assert (w49["orders"], w49["cross_orders"], w49["buyers"], w49["cross_buyers"]) == (1, 0, 1, 0)
    assert w49["flows"] == [{"entry": "food", "vertical": "food", "orders": 1, "buyers": 1}]
    assert (w50["orders"], w50["cross_orders"], w50["buyers"], w50["cross_buyers"]) == (3, 2, 3, 2)
    assert w50["cross_share"] == pytest.approx(2 / 3)
    flows = {(f["entry"], f["vertical"]): f["orders"] for f in w50["flows"]}
    assert flows == {("food", "movies"): 1, ("movies", "food"): 1, ("travel", "travel"): 1}


def test_a_range_of_weeks_and_a_merchant_narrow_the_flow(
    client: TestClient, story: dict[str, str]
) -> None:
    only_w50 = get(client, story["operator"], **{"from": "2026-W50", "to": "2026-W50"})["data"]
    movies_staff = get(client, story["staff"])["data"]
    as_csv = client.get(
        "/v1/growth/cross-vertical",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {story['operator']}"},
    )

    assert [w["week"] for w in only_w50] == ["2026-W50"]
    assert len(movies_staff) == 1
    assert movies_staff[0]["flows"] == [
        {"entry": "food", "vertical": "movies", "orders": 1, "buyers": 1}
    ]
    assert as_csv.status_code == 200
    assert as_csv.text.splitlines()[0] == "week,entry,vertical,orders,buyers"
    assert len(as_csv.text.splitlines()) == 1 + 4


def test_shoppers_may_not_read_the_flow(client: TestClient, story: dict[str, str]) -> None:
    refused = client.get(
        "/v1/growth/cross-vertical", headers={"Authorization": f"Bearer {story['shopper']}"}
    )
    bad_week = client.get(
        "/v1/growth/cross-vertical",
        params={"from": "last week"},
        headers={"Authorization": f"Bearer {story['operator']}"},
    )

    assert refused.status_code == 403
    assert bad_week.status_code == 422


def test_the_operators_growth_page_shows_the_flow(
    client: TestClient, services: Services, story: dict[str, str]
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)

    page = client.get("/console/operator/growth", params={"weeks": "26"}, headers=HTML).text

    assert 'id="cross-vertical"' in page
    assert "Food → Movies: 1" in page
    assert "Movies → Food: 1" in page
