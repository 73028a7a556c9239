"""Bargains (砍价): a merchant gives a deal bargain terms; a shopper opens a bargain and shares
it; signed-in friends (not the owner, once per account, device and network) each cut the price
by the next amount of its seeded schedule, reaching the floor exactly with the last helper; the
owner buys at the price reached before the deadline and pays like buying alone. New accounts
and busy networks are limited; the audit recomputes every bargain from its cuts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from pintuan.accounts.models import User
from pintuan.app import create_app
from pintuan.audit.bargains import bargain_breaches
from pintuan.bargains.models import Bargain, BargainCut
from pintuan.bargains.service import helper_of
from pintuan.bootstrap import build_services
from pintuan.deals.models import Deal
from pintuan.domain.bargains import cut_schedule
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.services import Services
from pintuan.worker import Worker
from tests.conftest import _empty_all_tables, make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_ledger import pay
from tests.features.vouchering import sound

LIST_PRICE = 10_000
FLOOR = 2_000


@dataclass
class BargainDeal:
    deal: Deal
    staff: Account


def bargain_deal(
    client: TestClient,
    services: Services,
    *,
    helpers: int = 3,
    hours: int = 24,
    floor: int = FLOOR,
    **deal: Any,
) -> BargainDeal:
    """A live deal (list price 100.00 USD) whose staff gave it bargain terms."""
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    made = create_deal(
        services.db, merchant, list_price=LIST_PRICE, group_price=6_000, title="Rice cooker", **deal
    )
    terms = set_terms(client, staff, made.id, floor=floor, helpers=helpers, hours=hours)
    assert terms.status_code == 200, terms.text
    return BargainDeal(made, staff)


def set_terms(
    client: TestClient,
    who: Account,
    deal_id: str,
    *,
    floor: int = FLOOR,
    helpers: int = 3,
    hours: int = 24,
    currency: str = "USD",
) -> Response:
    return client.put(
        f"/v1/deals/{deal_id}/bargain",
        json={
            "floor_price": {"amount": floor, "currency": currency},
            "helpers": helpers,
            "hours": hours,
        },
        headers=who.headers,
    )


def open_bargain(client: TestClient, owner: Account, deal_id: str) -> dict[str, Any]:
    opened = client.post(f"/v1/deals/{deal_id}/bargains", headers=owner.headers)
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


def from_address(client: TestClient, n: int) -> TestClient:
    """The same app, reached from another network address (203.0.113.n)."""
    return TestClient(client.app, client=(f"203.0.113.{n}", 40000))


def cut(
    client: TestClient, helper: Account, bargain_id: str, *, device: str | None = None
) -> Response:
    headers = {**helper.headers, **({"X-Device-Id": device} if device else {})}
    return client.post(f"/v1/bargains/{bargain_id}/cuts", headers=headers)


def seasoned(services: Services, *accounts: Account) -> None:
    """Make the accounts older than a day: the new-account limit no longer applies to them."""
    old = utc_now() - timedelta(days=30)
    ids = [a.user_id for a in accounts]
    services.db.run_sync(
        lambda s: s.execute(update(User).where(User.id.in_(ids)).values(created_at=old))
    )


def helpers(services: Services, count: int) -> list[Account]:
    made = [create_account(services, name=f"Friend {n}") for n in range(count)]
    seasoned(services, *made)
    return made


def stored(services: Services, bargain_id: str) -> Bargain:
    found = services.db.run_sync(lambda s: s.get(Bargain, bargain_id), write=False)
    assert found is not None
    return found


def code(response: Response) -> tuple[int, str]:
    return response.status_code, str(response.json().get("code"))


def audit_clean(services: Services) -> None:
    assert services.db.run_sync(bargain_breaches, write=False) == []
    sound(services)


# ---------------------------------------------------------------------------- terms


def test_staff_give_a_deal_bargain_terms_that_everybody_reads(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=5, hours=48, floor=3_000)

    read = client.get(f"/v1/deals/{world.deal.id}/bargain")

    assert read.status_code == 200, read.text
    body = read.json()
    assert body["floor_price"] == {"amount": 3_000, "currency": "USD"}
    assert (body["helpers"], body["hours"]) == (5, 48)
    changed = set_terms(client, world.staff, world.deal.id, floor=2_500, helpers=4, hours=12)
    assert changed.status_code == 200, changed.text
    assert client.get(f"/v1/deals/{world.deal.id}/bargain").json()["helpers"] == 4


def test_terms_are_refused_when_they_cannot_work_or_the_caller_may_not_set_them(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services)
    deal_id = world.deal.id
    shopper = create_account(services)
    stranger = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))

    assert code(set_terms(client, shopper, deal_id)) == (403, "not_merchant_staff")
    assert code(set_terms(client, stranger, deal_id)) == (403, "not_merchant_staff")
    wrong_currency = set_terms(client, world.staff, deal_id, currency="EUR")
    assert code(wrong_currency) == (422, "validation_error")
    assert wrong_currency.json()["errors"][0]["field"] == "floor_price.currency"
    for floor, helpers in ((LIST_PRICE, 3), (LIST_PRICE - 2, 3), (0, 3)):
        refused = set_terms(client, world.staff, deal_id, floor=floor, helpers=helpers)
        assert refused.status_code == 422, (floor, refused.text)
    assert set_terms(client, world.staff, deal_id, helpers=101).status_code == 422
    assert set_terms(client, world.staff, deal_id, hours=0).status_code == 422
    # Nothing changed: the terms are still the first ones.
    assert client.get(f"/v1/deals/{deal_id}/bargain").json()["helpers"] == 3


def test_terms_go_away_until_a_bargain_is_opened_on_them(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services)
    deal_id = world.deal.id

    assert (
        client.delete(f"/v1/deals/{deal_id}/bargain", headers=world.staff.headers).status_code
        == 204
    )
    assert code(client.get(f"/v1/deals/{deal_id}/bargain")) == (404, "bargain_terms_not_found")
    again = client.delete(f"/v1/deals/{deal_id}/bargain", headers=world.staff.headers)
    assert again.status_code == 204
    assert set_terms(client, world.staff, deal_id).status_code == 200
    open_bargain(client, create_account(services), deal_id)

    kept = client.delete(f"/v1/deals/{deal_id}/bargain", headers=world.staff.headers)

    assert code(kept) == (409, "bargain_terms_in_use")
    assert client.get(f"/v1/deals/{deal_id}/bargain").status_code == 200


# ---------------------------------------------------------------------------- opening


def test_a_shopper_opens_one_bargain_per_deal_at_its_list_price(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, hours=6)
    owner = create_account(services, name="Lin Mei")

    bargain = open_bargain(client, owner, world.deal.id)

    assert bargain["status"] == "open"
    assert bargain["price"] == {"amount": LIST_PRICE, "currency": "USD"}
    assert bargain["floor_price"]["amount"] == FLOOR
    assert (bargain["cuts"], bargain["helpers_needed"], bargain["owner_name"]) == (0, 3, "Lin Mei")
    deadline = stored(services, bargain["id"]).expires_at
    assert abs(deadline - (utc_now() + timedelta(hours=6))) < timedelta(minutes=1)
    twice = client.post(f"/v1/deals/{world.deal.id}/bargains", headers=owner.headers)
    assert code(twice) == (409, "bargain_already_open")
    assert twice.json()["bargain_id"] == bargain["id"]
    assert client.post(f"/v1/deals/{world.deal.id}/bargains").status_code == 401
    plain = create_deal(services.db, create_merchant(services.db))
    assert code(client.post(f"/v1/deals/{plain.id}/bargains", headers=owner.headers)) == (
        409,
        "bargain_not_offered",
    )
    mine = client.get("/v1/me/bargains", headers=owner.headers).json()["data"]
    assert [b["id"] for b in mine] == [bargain["id"]]


def test_a_bargain_closes_no_later_than_its_deal(client: TestClient, services: Services) -> None:
    world = bargain_deal(client, services, hours=168)
    ends = utc_now() + timedelta(hours=2)
    services.db.run_sync(
        lambda s: s.execute(update(Deal).where(Deal.id == world.deal.id).values(ends_at=ends))
    )

    bargain = open_bargain(client, create_account(services), world.deal.id)

    assert abs(stored(services, bargain["id"]).expires_at - ends) < timedelta(seconds=1)


# ---------------------------------------------------------------------------- cutting


def test_friends_cut_the_price_to_the_floor_exactly_with_the_last_helper(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=3)
    owner = create_account(services)
    bargain = open_bargain(client, owner, world.deal.id)
    friends = helpers(services, 4)
    seed = stored(services, bargain["id"]).seed
    schedule = cut_schedule(seed, LIST_PRICE - FLOOR, 3)

    done = [cut(from_address(client, n), f, bargain["id"]) for n, f in enumerate(friends[:3])]

    assert [r.status_code for r in done] == [201, 201, 201], [r.text for r in done]
    assert [r.json()["amount"]["amount"] for r in done] == schedule
    assert [r.json()["position"] for r in done] == [1, 2, 3]
    assert done[-1].json()["price"]["amount"] == FLOOR
    late = cut(from_address(client, 9), friends[3], bargain["id"])
    assert code(late) == (409, "bargain_complete")
    read = client.get(f"/v1/bargains/{bargain['id']}")
    body = read.json()
    assert body["price"]["amount"] == FLOOR
    assert [h["display_name"] for h in body["helpers"]] == ["Friend 2", "Friend 1", "Friend 0"]
    assert [h["amount"]["amount"] for h in body["helpers"]] == schedule[::-1]
    # Shared by link: nobody's account shows, nor the owner's purchase.
    assert all(f.user_id not in read.text for f in friends)
    assert owner.user_id not in read.text
    assert seed not in read.text
    assert body["seat_id"] is None
    audit_clean(services)


def test_a_cut_is_refused_to_the_owner_and_to_a_repeat_account_device_or_network(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=5)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    ann, bob, cai, dan = helpers(services, 4)
    assert cut(from_address(client, 1), ann, bargain_id, device="phone-ann").status_code == 201

    refusals = [
        cut(from_address(client, 2), owner, bargain_id),
        cut(from_address(client, 3), ann, bargain_id, device="phone-ann-2"),
        cut(from_address(client, 4), bob, bargain_id, device="phone-ann"),
        cut(from_address(client, 1), cai, bargain_id, device="phone-cai"),
        cut(client, dan, bargain_id),
    ]

    assert [code(r) for r in refusals[:4]] == [
        (403, "bargain_own"),
        (409, "bargain_already_cut"),
        (409, "bargain_device_used"),
        (409, "bargain_address_used"),
    ]
    assert refusals[4].status_code == 201  # another network, no device id: its address stands
    same_network = cut(client, bob, bargain_id, device="phone-bob")
    assert code(same_network) == (409, "bargain_address_used")
    assert stored(services, bargain_id).cuts == 2
    assert client.post(f"/v1/bargains/{bargain_id}/cuts").status_code == 401
    missing = client.post("/v1/bargains/bargain_nope/cuts", headers=ann.headers)
    assert code(missing) == (404, "bargain_not_found")
    audit_clean(services)


def test_only_keyed_hashes_of_devices_and_addresses_are_stored(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services)
    bargain_id = open_bargain(client, create_account(services), world.deal.id)["id"]
    (friend,) = helpers(services, 1)

    assert cut(from_address(client, 77), friend, bargain_id, device="device-77").status_code == 201

    (row,) = services.db.run_sync(lambda s: list(s.scalars(select(BargainCut))), write=False)
    keyed = helper_of(services.settings.secret_key, friend.user_id, "203.0.113.77", "device-77")
    assert (row.device_hash, row.address_hash) == (keyed.device_hash, keyed.address_hash)
    assert row.device_hash != row.address_hash
    other_key = helper_of("another secret key", friend.user_id, "203.0.113.77", "device-77")
    assert other_key.address_hash != row.address_hash


def test_a_new_account_helps_cut_one_bargain_a_day(client: TestClient, services: Services) -> None:
    first = bargain_deal(client, services)
    second = bargain_deal(client, services, hours=72)
    a = open_bargain(client, create_account(services), first.deal.id)["id"]
    b = open_bargain(client, create_account(services), second.deal.id)["id"]
    newcomer = create_account(services)
    (regular,) = helpers(services, 1)

    assert cut(from_address(client, 1), newcomer, a).status_code == 201
    limited = cut(from_address(client, 2), newcomer, b)

    assert code(limited) == (429, "bargain_new_account_limit")
    assert 0 < int(limited.headers["Retry-After"]) <= 24 * 3600 + 1
    assert cut(from_address(client, 3), regular, a).status_code == 201
    assert cut(from_address(client, 4), regular, b).status_code == 201
    # A day on, the day's cut no longer counts.
    clock.offset = timedelta(hours=24, minutes=1)
    assert cut(from_address(client, 5), newcomer, b).status_code == 201


@pytest.fixture
def strict_client(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    """An app whose networks make two cuts a day at most."""
    settings = make_settings(database_url, bargain_cuts_per_address_per_day=2)
    services = build_services(settings)
    _empty_all_tables(services.db)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client, services
    services.db.dispose()


def test_one_network_makes_a_limited_number_of_cuts_a_day(
    strict_client: tuple[TestClient, Services],
) -> None:
    client, services = strict_client
    bargains = [
        open_bargain(client, create_account(services), bargain_deal(client, services).deal.id)["id"]
        for _ in range(3)
    ]
    friends = helpers(services, 3)
    office = from_address(client, 50)

    made = [
        cut(office, friend, bargain_id, device=f"phone-{n}")
        for n, (friend, bargain_id) in enumerate(zip(friends, bargains, strict=True))
    ]

    assert [r.status_code for r in made[:2]] == [201, 201]
    assert code(made[2]) == (429, "bargain_address_limit")
    assert cut(from_address(client, 51), friends[2], bargains[2]).status_code == 201


# ---------------------------------------------------------------------------- buying


def test_the_owner_buys_at_the_price_reached_and_pays_like_buying_alone(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=3)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    friends = helpers(services, 3)
    for n, friend in enumerate(friends[:2]):
        assert cut(from_address(client, n), friend, bargain_id).status_code == 201
    reached = stored(services, bargain_id).price_amount
    assert FLOOR < reached < LIST_PRICE

    stranger = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=friends[0].headers)
    bought = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=owner.headers)

    assert code(stranger) == (403, "bargain_not_owner")
    assert bought.status_code == 201, bought.text
    seat = bought.json()["seat"]
    assert seat["price"] == {"amount": reached, "currency": "USD"}
    assert bought.json()["team"]["solo"] is True
    again = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=owner.headers)
    assert code(again) == (409, "bargain_already_bought")
    assert again.json()["seat_id"] == seat["id"]
    assert code(cut(from_address(client, 8), friends[2], bargain_id)) == (409, "bargain_closed")
    mine = client.get(f"/v1/bargains/{bargain_id}", headers=owner.headers).json()
    assert (mine["status"], mine["seat_id"]) == ("open", seat["id"])

    pay(client, owner, seat["id"])
    Worker(services).run_until_idle()

    read = client.get(f"/v1/bargains/{bargain_id}", headers=owner.headers).json()
    assert read["status"] == "bought"
    assert read["bought_price"] == {"amount": reached, "currency": "USD"}
    assert client.get(f"/v1/bargains/{bargain_id}").json()["seat_id"] is None
    audit_clean(services)


def test_a_purchase_whose_hold_lapsed_may_be_bought_again_at_the_new_price(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=3)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    first = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=owner.headers)
    assert first.status_code == 201, first.text
    clock.offset = timedelta(minutes=services.settings.seat_hold_minutes + 1)
    Worker(services).run_until_idle()
    (friend,) = helpers(services, 1)
    assert cut(from_address(client, 1), friend, bargain_id).status_code == 201

    second = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=owner.headers)

    assert second.status_code == 201, second.text
    assert second.json()["seat"]["id"] != first.json()["seat"]["id"]
    assert second.json()["seat"]["price"]["amount"] == stored(services, bargain_id).price_amount
    assert second.json()["seat"]["price"]["amount"] < LIST_PRICE
    audit_clean(services)


def test_a_bargain_past_its_deadline_expires_and_the_owner_may_open_another(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, hours=1)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    (friend,) = helpers(services, 1)

    clock.offset = timedelta(hours=1, seconds=1)

    assert client.get(f"/v1/bargains/{bargain_id}").json()["status"] == "expired"
    assert code(cut(from_address(client, 1), friend, bargain_id)) == (409, "bargain_closed")
    refused = client.post(f"/v1/bargains/{bargain_id}/purchase", headers=owner.headers)
    assert code(refused) == (409, "bargain_closed")
    Worker(services).run_until_idle()
    assert stored(services, bargain_id).status == "expired"
    fresh = open_bargain(client, owner, world.deal.id)
    assert fresh["id"] != bargain_id


def test_opening_again_writes_the_earlier_expired_bargain_down(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, hours=1)
    owner = create_account(services)
    bargain_id = open_bargain(client, owner, world.deal.id)["id"]
    clock.offset = timedelta(hours=2)

    open_bargain(client, owner, world.deal.id)

    assert stored(services, bargain_id).status == "expired"


def test_my_bargains_come_a_page_at_a_time_newest_first(
    client: TestClient, services: Services
) -> None:
    owner = create_account(services)
    opened = [
        open_bargain(client, owner, bargain_deal(client, services).deal.id)["id"] for _ in range(3)
    ]

    first = client.get("/v1/me/bargains?limit=2", headers=owner.headers).json()
    rest = client.get(
        f"/v1/me/bargains?limit=2&cursor={first['next_cursor']}", headers=owner.headers
    ).json()

    assert [b["id"] for b in first["data"] + rest["data"]] == opened[::-1]
    assert rest["next_cursor"] is None
    assert client.get("/v1/me/bargains").status_code == 401


# ---------------------------------------------------------------------------- the audit


def test_the_audit_finds_a_cut_off_its_schedule_and_a_price_that_does_not_add_up(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=3)
    bargain_id = open_bargain(client, create_account(services), world.deal.id)["id"]
    (friend,) = helpers(services, 1)
    assert cut(from_address(client, 1), friend, bargain_id).status_code == 201
    assert services.db.run_sync(bargain_breaches, write=False) == []

    services.db.run_sync(
        lambda s: s.execute(
            update(BargainCut)
            .where(BargainCut.bargain_id == bargain_id)
            .values(amount=BargainCut.amount + 1)
        )
    )

    found = services.db.run_sync(bargain_breaches, write=False)
    assert any("off its schedule" in f for f in found), found
    assert any("less its cuts" in f for f in found), found
