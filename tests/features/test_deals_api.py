"""Deals through the API: create, edit, the status machine, listing and visibility."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.factories import create_account, create_deal, create_merchant, deal_body


def count_deals(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Deal)))


def test_staff_create_a_draft_deal_in_their_merchants_currency(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="USD")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    response = client.post("/v1/deals", json=deal_body(merchant.id), headers=staff.headers)

    assert response.status_code == 201, response.text
    deal = response.json()
    assert deal["id"].startswith("deal_")
    assert deal["status"] == "draft"
    assert deal["group_price"] == {"amount": 5900, "currency": "USD"}
    assert deal["team_window_minutes"] == 1440
    assert deal["starts_at"].endswith("Z")


def test_a_deal_in_jpy_and_one_in_bhd_keep_their_minor_units(
    client: TestClient, services: Services
) -> None:
    for currency, list_amount, group_amount in (("JPY", 3000, 1980), ("BHD", 12500, 9875)):
        merchant = create_merchant(services.db, currency=currency)
        staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
        body = deal_body(
            merchant.id,
            list_price={"amount": list_amount, "currency": currency},
            group_price={"amount": group_amount, "currency": currency},
        )

        response = client.post("/v1/deals", json=body, headers=staff.headers)

        assert response.status_code == 201, response.text
        assert response.json()["group_price"] == {"amount": group_amount, "currency": currency}


def test_a_deal_goes_live_pauses_resumes_and_ends(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, live=False)

    statuses = []
    for action in ("publish", "pause", "publish", "end"):
        response = client.post(f"/v1/deals/{deal.id}/{action}", headers=staff.headers)
        assert response.status_code == 200, response.text
        statuses.append(response.json()["status"])

    assert statuses == ["live", "paused", "live", "ended"]
    refused = client.post(f"/v1/deals/{deal.id}/publish", headers=staff.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_deal_transition"


def test_a_pending_merchants_deal_cannot_go_live(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db, approved=False)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, live=False)

    response = client.post(f"/v1/deals/{deal.id}/publish", headers=staff.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "merchant_not_approved"


def test_a_live_deals_price_is_frozen_but_its_copy_and_stock_may_change(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, live=True)

    price = client.patch(
        f"/v1/deals/{deal.id}",
        json={"group_price": {"amount": 100, "currency": "USD"}},
        headers=staff.headers,
    )
    copy = client.patch(
        f"/v1/deals/{deal.id}",
        json={"title": "Dumplings, now with tea", "stock": 500},
        headers=staff.headers,
    )

    assert price.status_code == 409
    assert price.json()["code"] == "deal_not_editable"
    assert copy.status_code == 200, copy.text
    assert (copy.json()["title"], copy.json()["stock"]) == ("Dumplings, now with tea", 500)
    assert copy.json()["group_price"]["amount"] == 1500


def test_a_draft_can_change_its_prices_but_not_to_a_group_price_above_the_list_price(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, live=False)

    good = client.patch(
        f"/v1/deals/{deal.id}",
        json={"group_price": {"amount": 999, "currency": "USD"}, "team_size": 5},
        headers=staff.headers,
    )
    bad = client.patch(
        f"/v1/deals/{deal.id}",
        json={"group_price": {"amount": 5000, "currency": "USD"}},
        headers=staff.headers,
    )

    assert good.status_code == 200, good.text
    assert (good.json()["group_price"]["amount"], good.json()["team_size"]) == (999, 5)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "group_price.amount"
    assert (
        client.get(f"/v1/deals/{deal.id}", headers=staff.headers).json()["group_price"]["amount"]
        == 999
    )


def test_null_in_a_patch_is_refused(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, live=False)

    response = client.patch(f"/v1/deals/{deal.id}", json={"title": None}, headers=staff.headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"


def test_drafts_are_invisible_to_the_public(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    draft = create_deal(services.db, merchant, live=False)
    live = create_deal(services.db, merchant, live=True)

    listed = client.get("/v1/deals").json()["data"]

    assert [d["id"] for d in listed] == [live.id]
    assert client.get(f"/v1/deals/{draft.id}").status_code == 404
    assert client.get("/v1/deals", params={"status": "draft"}).status_code == 403


def test_staff_list_their_drafts(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    draft = create_deal(services.db, merchant, live=False)

    response = client.get(
        "/v1/deals", params={"merchant_id": merchant.id, "status": "draft"}, headers=staff.headers
    )

    assert [d["id"] for d in response.json()["data"]] == [draft.id]


def test_the_list_filters_by_vertical_merchant_and_text(
    client: TestClient, services: Services
) -> None:
    a = create_merchant(services.db)
    b = create_merchant(services.db)
    noodles = create_deal(services.db, a, title="Hand-pulled noodles")
    cinema = create_deal(services.db, b, title="Cinema night", vertical=Vertical.MOVIES)

    assert ids(client, vertical="movies") == [cinema.id]
    assert ids(client, merchant_id=a.id) == [noodles.id]
    assert ids(client, text="NOODLE") == [noodles.id]
    assert ids(client, text="100%") == []


def ids(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/deals", params=params)
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["data"]]


def test_cursor_pagination_walks_every_deal_once_newest_first(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    made = [create_deal(services.db, merchant, title=f"Deal {i}").id for i in range(7)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/deals", params=params).json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(made, reverse=True)


def test_a_bad_cursor_is_a_clear_error(client: TestClient) -> None:
    response = client.get("/v1/deals", params={"cursor": "not-a-cursor!"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"
