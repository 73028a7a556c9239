"""Suspending a merchant stops its selling at once and returns its shoppers' money; an operator's
moderation stops one deal until an operator releases it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.service import audit_database
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant


def start(client: TestClient, account: Account, deal_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def open_payment(client: TestClient, account: Account, seat_id: str) -> str:
    response = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def succeed(client: TestClient, account: Account, payment_id: str) -> None:
    paid = client.post(f"/v1/test_helpers/payments/{payment_id}/succeed", headers=account.headers)
    assert paid.status_code == 200, paid.text


def audit_clean(services: Services) -> None:
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def payment_statuses(services: Services) -> dict[str, str]:
    rows = services.db.run_sync(lambda s: s.execute(select(Payment.id, Payment.status)).all())
    return dict(rows)


def selling_merchant(services: Services) -> tuple[Merchant, Account, Account]:
    merchant = create_merchant(services.db)
    return (
        merchant,
        create_account(services, role=Role.OPERATOR),
        create_account(services, role=Role.MERCHANT, merchant=merchant),
    )


def test_a_suspended_merchants_deals_take_no_new_teams_or_joins_until_approved_again(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    deal = create_deal(services.db, merchant, team_size=3)
    leader, joiner, later = (create_account(services) for _ in range(3))
    team_id = start(client, leader, deal.id)["team"]["id"]

    suspended = client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)
    joined = client.post(f"/v1/teams/{team_id}/seats", headers=joiner.headers)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=later.headers)

    assert suspended.status_code == 200, suspended.text
    assert (joined.status_code, joined.json()["code"]) == (409, "deal_not_live")
    assert (started.status_code, started.json()["code"]) == (409, "deal_not_live")
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 0

    client.post(f"/v1/merchants/{merchant.id}/approve", headers=operator.headers)
    assert client.post(f"/v1/deals/{deal.id}/teams", headers=later.headers).status_code == 201


def test_suspension_fails_forming_teams_and_every_payment_ends_with_the_money_returned(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    deal = create_deal(services.db, merchant, team_size=3)
    leader, paid_member, waiting = (create_account(services) for _ in range(3))
    started = start(client, leader, deal.id)
    team_id = started["team"]["id"]
    succeed(client, leader, open_payment(client, leader, started["seat"]["id"]))
    member_seat = client.post(f"/v1/teams/{team_id}/seats", headers=paid_member.headers).json()
    succeed(client, paid_member, open_payment(client, paid_member, member_seat["seat"]["id"]))
    waiting_seat = client.post(f"/v1/teams/{team_id}/seats", headers=waiting.headers).json()
    unpaid = open_payment(client, waiting, waiting_seat["seat"]["id"])

    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)
    team = services.db.run_sync(lambda s: s.get(Team, team_id))
    seats = services.db.run_sync(lambda s: dict(s.execute(select(Seat.user_id, Seat.status)).all()))
    Worker(services).run_until_idle()

    assert team is not None
    assert team.status == "failed"
    assert seats == {
        leader.user_id: "refunded",
        paid_member.user_id: "refunded",
        waiting.user_id: "released",
    }
    statuses = payment_statuses(services)
    assert statuses.pop(unpaid) == "requires_action"  # nothing was taken: nothing to return
    assert set(statuses.values()) == {"voided"}
    assert client.get(f"/v1/deals/{deal.id}").json()["committed"] == 0
    audit_clean(services)


def test_money_arriving_after_suspension_for_a_seat_is_owed_back(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    deal = create_deal(services.db, merchant, team_size=2)
    leader = create_account(services)
    started = start(client, leader, deal.id)
    payment_id = open_payment(client, leader, started["seat"]["id"])

    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)
    succeed(client, leader, payment_id)
    Worker(services).run_until_idle()

    assert payment_statuses(services)[payment_id] == "voided"
    audit_clean(services)


def test_no_payment_starts_for_a_seat_of_a_suspended_merchant(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    deal = create_deal(services.db, merchant, team_size=2)
    leader = create_account(services)
    seat_id = start(client, leader, deal.id)["seat"]["id"]

    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)
    refused = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=leader.headers
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "seat_not_payable")
    assert payment_statuses(services) == {}


def test_a_suspended_merchants_staff_can_change_none_of_its_deals(
    client: TestClient, services: Services
) -> None:
    merchant, operator, staff = selling_merchant(services)
    live = create_deal(services.db, merchant)
    draft = create_deal(services.db, merchant, live=False)
    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)
    body = client.get(f"/v1/deals/{draft.id}", headers=staff.headers).json()
    new_deal = {
        k: body[k]
        for k in ("merchant_id", "title", "description", "vertical", "list_price", "group_price")
    } | {k: body[k] for k in ("team_size", "stock", "per_user_limit", "starts_at", "ends_at")}

    answers = [
        client.patch(f"/v1/deals/{live.id}", json={"stock": 999_999}, headers=staff.headers),
        client.post(f"/v1/deals/{live.id}/pause", headers=staff.headers),
        client.post(f"/v1/deals/{live.id}/end", headers=staff.headers),
        client.post(f"/v1/deals/{draft.id}/publish", headers=staff.headers),
        client.post("/v1/deals", json=new_deal, headers=staff.headers),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "merchant_suspended")] * 5
    assert client.get(f"/v1/deals/{live.id}").json()["stock"] == 100
    # Reading stays open to them, and operators may still end the deal.
    assert client.get(f"/v1/deals/{draft.id}", headers=staff.headers).status_code == 200
    ended = client.post(f"/v1/deals/{live.id}/end", headers=operator.headers)
    assert ended.json()["status"] == "ended"


def test_the_public_sees_no_deal_of_a_suspended_merchant_in_lists(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    hidden = create_deal(services.db, merchant)
    shown = create_deal(services.db, create_merchant(services.db))

    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)

    assert [d["id"] for d in client.get("/v1/deals").json()["data"]] == [shown.id]
    listed = client.get(f"/v1/deals?merchant_id={merchant.id}", headers=operator.headers).json()
    assert [d["id"] for d in listed["data"]] == [hidden.id]


def test_the_deal_page_of_a_suspended_merchant_offers_no_team_to_start(
    client: TestClient, services: Services
) -> None:
    merchant, operator, _ = selling_merchant(services)
    deal = create_deal(services.db, merchant)
    start_form = f'action="/deals/{deal.id}/teams"'
    assert start_form in client.get(f"/deals/{deal.id}").text

    client.post(f"/v1/merchants/{merchant.id}/suspend", headers=operator.headers)

    page = client.get(f"/deals/{deal.id}")
    assert page.status_code == 200
    assert start_form not in page.text


def test_a_moderated_deal_takes_no_joins_leaves_lists_and_only_an_operator_releases_it(
    client: TestClient, services: Services
) -> None:
    merchant, operator, staff = selling_merchant(services)
    deal = create_deal(services.db, merchant, team_size=3)
    leader, joiner = create_account(services), create_account(services)
    team_id = start(client, leader, deal.id)["team"]["id"]

    by_staff = client.post(f"/v1/deals/{deal.id}/moderate", headers=staff.headers)
    moderated = client.post(f"/v1/deals/{deal.id}/moderate", headers=operator.headers)
    joined = client.post(f"/v1/teams/{team_id}/seats", headers=joiner.headers)
    republished = client.post(f"/v1/deals/{deal.id}/publish", headers=staff.headers)
    patched = client.patch(f"/v1/deals/{deal.id}", json={"stock": 5}, headers=staff.headers)

    assert (by_staff.status_code, by_staff.json()["code"]) == (403, "operator_only")
    assert moderated.json()["status"] == "moderated"
    assert (joined.status_code, joined.json()["code"]) == (409, "deal_not_live")
    assert (republished.status_code, republished.json()["code"]) == (403, "deal_moderated")
    assert (patched.status_code, patched.json()["code"]) == (403, "deal_moderated")
    assert client.get("/v1/deals").json()["data"] == []
    assert client.get("/v1/deals?status=moderated").status_code == 403
    queue = client.get("/v1/deals?status=moderated", headers=operator.headers).json()["data"]
    assert [d["id"] for d in queue] == [deal.id]

    released = client.post(f"/v1/deals/{deal.id}/unmoderate", headers=operator.headers)
    assert released.json()["status"] == "paused"
    assert client.post(f"/v1/deals/{deal.id}/publish", headers=staff.headers).status_code == 200
    assert client.post(f"/v1/teams/{team_id}/seats", headers=joiner.headers).status_code == 201
