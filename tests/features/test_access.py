"""Every write endpoint refuses callers who may not touch that merchant's data."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body


def snapshot(services: Services) -> list[tuple[Any, ...]]:
    """Everything a refused write could have changed."""

    def read(session: Any) -> list[tuple[Any, ...]]:
        deals = session.execute(select(Deal.id, Deal.status, Deal.title, Deal.stock)).all()
        merchants = session.execute(select(Merchant.id, Merchant.status)).all()
        return sorted(map(tuple, deals)) + sorted(map(tuple, merchants))

    return services.db.run_sync(read)


@pytest.fixture
def world(services: Services) -> dict[str, Any]:
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    return {
        "mine": mine,
        "theirs": theirs,
        "staff": create_account(services, role=Role.MERCHANT, merchant=mine),
        "shopper": create_account(services),
        "their_live": create_deal(services.db, theirs, live=True),
        "their_draft": create_deal(services.db, theirs, live=False),
    }


WRITES = [
    ("post", "/v1/deals", "deal_body_theirs"),
    ("patch", "/v1/deals/{their_live}", {"title": "hijacked"}),
    ("patch", "/v1/deals/{their_draft}", {"title": "hijacked"}),
    ("post", "/v1/deals/{their_live}/pause", None),
    ("post", "/v1/deals/{their_live}/end", None),
    ("post", "/v1/deals/{their_draft}/publish", None),
    ("post", "/v1/merchants/{theirs}/approve", None),
    ("post", "/v1/merchants/{theirs}/suspend", None),
    ("post", "/v1/merchants/{theirs}/staff", {"email": "someone@example.com"}),
    (
        "post",
        "/v1/merchants",
        {
            "name": "X",
            "slug": "x",
            "country": "DE",
            "currency": "EUR",
            "time_zone": "Europe/Berlin",
        },
    ),
]


def _request(
    client: TestClient,
    world: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    account: Account | None,
) -> Any:
    ids = {k: getattr(v, "id", None) for k, v in world.items()}
    if body == "deal_body_theirs":
        body = deal_body(world["theirs"].id)
    headers = account.headers if account else {}
    return client.request(method, path.format(**ids), json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("who", ["staff", "shopper", "anonymous"])
def test_writes_to_another_merchant_are_refused_and_change_nothing(
    client: TestClient,
    services: Services,
    world: dict[str, Any],
    who: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    account = None if who == "anonymous" else world[who]
    before = snapshot(services)

    response = _request(client, world, method, path, body, account)

    expected = {401} if who == "anonymous" else {403, 404}
    assert response.status_code in expected, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(services) == before


def test_shoppers_cannot_create_deals_even_for_an_existing_merchant(
    client: TestClient, services: Services, world: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/deals", json=deal_body(world["mine"].id), headers=world["shopper"].headers
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_merchant_staff"


def test_another_merchants_draft_looks_like_it_does_not_exist(
    client: TestClient, world: dict[str, Any]
) -> None:
    response = client.get(f"/v1/deals/{world['their_draft'].id}", headers=world["staff"].headers)

    assert response.status_code == 404
    assert response.json()["code"] == "deal_not_found"


def test_staff_can_still_manage_their_own_merchants_deals(
    client: TestClient, services: Services, world: dict[str, Any]
) -> None:
    deal = create_deal(services.db, world["mine"], live=True)

    response = client.post(f"/v1/deals/{deal.id}/pause", headers=world["staff"].headers)

    assert response.status_code == 200
