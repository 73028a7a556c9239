"""Honest auto-fill through the API and the worker: a team whose window ends one or two paid seats
short succeeds with them filled by the merchant's or the platform's budget, shown as filled
(never as members), counted against the budget within its limit; the platform's fill pays the
merchant through a journal; past the budget, or with nobody paid, the team fails as any team."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.autofill import AutoFill, FundedBy
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.ledger.models import Journal
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.features.test_ladder_and_tipping import team, team_of
from tests.features.test_ledger import balance, pay
from tests.features.vouchering import sound

PRICE = 1500  # the factory's group price


def budget(client: TestClient, account: Account, path: str, amount: int) -> dict[str, Any]:
    done = client.put(
        path, json={"limit": {"amount": amount, "currency": "USD"}}, headers=account.headers
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


def journals_of(services: Services, kind: str) -> list[tuple[str, int, str | None]]:
    return services.db.run_sync(
        lambda s: [
            (j.id, j.amount, j.merchant_id)
            for j in s.scalars(select(Journal).where(Journal.kind == kind))
        ],
        write=False,
    )


def test_a_merchant_fills_its_teams_one_seat_short_within_its_budget(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, team_size=3, auto_fill=AutoFill(1, FundedBy.MERCHANT))
    set_to = budget(client, staff, f"/v1/merchants/{merchant.id}/fill-budget", PRICE)
    assert (set_to["limit"]["amount"], set_to["used"]["amount"]) == (PRICE, 0)
    first, first_seats = team_of(client, services, deal.id, 3)
    second, second_seats = team_of(client, services, deal.id, 2)
    for seat in first_seats[:2] + second_seats:
        pay(client, *seat)

    clock.offset = timedelta(days=2)  # both windows end, each one paid seat short
    Worker(services).run_until_idle()

    filled = client.get(f"/v1/teams/{first}").json()
    assert (filled["status"], filled["filled_seats"], filled["filled_by"]) == (
        "succeeded",
        1,
        "merchant",
    )
    assert len(filled["members"]) == 2  # the filled seat is no member
    assert team(services, second).status == "failed"  # the budget paid for one seat only
    used = client.get(f"/v1/merchants/{merchant.id}/fill-budget", headers=staff.headers).json()
    assert (used["used"]["amount"], used["left"]["amount"], used["filled_seats"]) == (PRICE, 0, 1)
    listed = client.get(f"/v1/merchants/{merchant.id}/filled-teams", headers=staff.headers)
    assert [(t["team_id"], t["cost"]["amount"]) for t in listed.json()["data"]] == [(first, PRICE)]
    assert journals_of(services, "fill_subsidy") == []  # the merchant's own fill moves no money
    sound(services)
    # A limit below what is used is refused.
    lower = client.put(
        f"/v1/merchants/{merchant.id}/fill-budget",
        json={"limit": {"amount": PRICE - 1, "currency": "USD"}},
        headers=staff.headers,
    )
    assert (lower.status_code, lower.json()["code"]) == (409, "fill_budget_below_used")


def test_the_platform_pays_the_merchant_for_the_seats_its_budget_fills(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    operator = create_account(services, role=Role.OPERATOR)
    deal = create_deal(services.db, merchant, team_size=3, auto_fill=AutoFill(2, FundedBy.PLATFORM))
    budget(client, operator, "/v1/ops/fill-budget", 10 * PRICE)
    lonely, seats = team_of(client, services, deal.id, 1)
    empty, _ = team_of(client, services, deal.id, 1)  # nobody pays: nothing to fill
    pay(client, *seats[0])

    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()

    assert (team(services, lonely).status, team(services, lonely).filled_seats) == (
        "succeeded",
        2,
    )
    assert team(services, empty).status == "failed"
    assert journals_of(services, "fill_subsidy") == [
        (f"{lonely}:fill_subsidy", 2 * PRICE, merchant.id)
    ]
    assert balance(services, "platform_subsidy") == 2 * PRICE
    platform = client.get("/v1/ops/fill-budget", headers=operator.headers).json()["data"]
    assert [(b["payer"], b["used"]["amount"], b["filled_seats"]) for b in platform] == [
        ("platform", 2 * PRICE, 2)
    ]
    listed = client.get("/v1/ops/filled-teams", headers=operator.headers).json()["data"]
    assert [t["team_id"] for t in listed] == [lonely]
    sound(services)


def test_auto_fill_terms_and_budgets_are_checked(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    stranger = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))

    def create(**body: Any) -> Any:
        return client.post("/v1/deals", json=deal_body(merchant.id, **body), headers=staff.headers)

    good = create(team_size=4, auto_fill={"seats": 2, "funded_by": "platform"})
    assert good.status_code == 201, good.text
    assert good.json()["auto_fill"] == {"seats": 2, "funded_by": "platform"}
    tier = {"size": 6, "price": {"amount": 5000, "currency": "USD"}}
    for why, body in {
        "three seats": {"team_size": 4, "auto_fill": {"seats": 3, "funded_by": "merchant"}},
        "a team of fillers": {"team_size": 2, "auto_fill": {"seats": 2, "funded_by": "merchant"}},
        "ladder": {
            "team_size": 4,
            "ladder": [tier],
            "auto_fill": {"seats": 1, "funded_by": "merchant"},
        },
        "lottery": {
            "team_size": 4,
            "lottery": {"winners": 1},
            "auto_fill": {"seats": 1, "funded_by": "merchant"},
        },
        "payer": {"team_size": 4, "auto_fill": {"seats": 1, "funded_by": "friends"}},
    }.items():
        refused = create(**body)
        assert refused.status_code == 422, (why, refused.text)
    others = client.put(
        f"/v1/merchants/{merchant.id}/fill-budget",
        json={"limit": {"amount": 100, "currency": "USD"}},
        headers=stranger.headers,
    )
    assert (others.status_code, others.json()["code"]) == (404, "merchant_not_found")
    euros = client.put(
        f"/v1/merchants/{merchant.id}/fill-budget",
        json={"limit": {"amount": 100, "currency": "EUR"}},
        headers=staff.headers,
    )
    assert euros.status_code == 422
    platform = client.put(
        "/v1/ops/fill-budget",
        json={"limit": {"amount": 100, "currency": "USD"}},
        headers=staff.headers,
    )
    assert (platform.status_code, platform.json()["code"]) == (403, "operator_only")
