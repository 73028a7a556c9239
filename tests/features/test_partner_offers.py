"""Offers in: an app installed on a merchant publishes, updates and withdraws offers, each a deal
of that merchant; same offer twice changes nothing; stock never goes below what is committed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.apps import Scope
from pintuan.domain.roles import Role
from pintuan.events.models import OutboxEvent
from pintuan.kit.time import clock, utc_now
from pintuan.merchants.models import Merchant
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.factories import create_account, create_merchant
from tests.media_pictures import picture
from tests.partnering import Partner, create_app_record, install_app, offer_body, partner

__all__ = ["partner"]


def installed(partner: Partner, **merchant: Any) -> tuple[Merchant, str, dict[str, str]]:
    """A merchant with staff who installed a new app; the app's id and its token's headers."""
    shop = create_merchant(partner.services.db, **merchant)
    staff = create_account(partner.services, role=Role.MERCHANT, merchant=shop)
    app_id = create_app_record(partner.services.db, staff.user_id)
    install_app(partner.services.db, app_id, shop.id, staff.user_id)
    return shop, app_id, partner.grant(app_id, merchant_id=shop.id, user_id=staff.user_id)


def events(partner: Partner, type_prefix: str = "offer.") -> list[OutboxEvent]:
    return partner.services.db.run_sync(
        lambda s: list(
            s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.type.startswith(type_prefix))
                .order_by(OutboxEvent.id)
            )
        ),
        write=False,
    )


def deal_row(partner: Partner, deal_id: str) -> Deal:
    deal = partner.services.db.run_sync(lambda s: s.get(Deal, deal_id), write=False)
    assert deal is not None
    return deal


def deal_count(partner: Partner) -> int:
    return int(
        partner.services.db.run_sync(lambda s: s.scalar(select(func.count(Deal.id))), write=False)
    )


def start_team(partner: Partner, deal_id: str) -> dict[str, Any]:
    shopper = create_account(partner.services)
    answer = partner.client.post(f"/v1/deals/{deal_id}/teams", headers=shopper.headers)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---------------------------------------------------------------------------- publishing


def test_an_offer_becomes_a_live_deal_of_the_merchant_the_app_is_installed_on(
    partner: Partner,
) -> None:
    shop, app_id, headers = installed(partner)

    answer = partner.client.put(
        "/v1/partner/offers/screening-42", json=offer_body(), headers=headers
    )

    assert answer.status_code == 201, answer.text
    offer = answer.json()
    assert offer["result"] == "created"
    assert offer["external_id"] == "screening-42"
    assert offer["merchant_id"] == shop.id
    assert offer["status"] == "live"
    assert offer["location"] == {
        "name": "Lumière Cinema",
        "address": "1 Market Street",
        "lat": 37.7936,
        "lon": -122.3958,
    }
    deal = partner.client.get(f"/v1/deals/{offer['deal_id']}").json()
    assert (deal["status"], deal["merchant_id"], deal["vertical"]) == ("live", shop.id, "movies")
    assert deal["group_price"] == {"amount": 1100, "currency": "USD"}
    # shoppers can start a team on it at once
    start_team(partner, offer["deal_id"])
    (published,) = events(partner)
    assert published.type == "offer.published"
    assert published.subject_id == offer["deal_id"]
    assert published.payload["app_id"] == app_id
    assert published.payload["merchant_id"] == shop.id
    assert published.payload["external_id"] == "screening-42"


def test_the_same_offer_twice_changes_nothing_and_says_so(partner: Partner) -> None:
    _, _, headers = installed(partner)
    body = offer_body()
    first = partner.client.put("/v1/partner/offers/s-1", json=body, headers=headers).json()

    again = partner.client.put("/v1/partner/offers/s-1", json=body, headers=headers)

    assert again.status_code == 200, again.text
    assert again.json()["result"] == "unchanged"
    assert again.json()["changed"] == []
    assert again.json()["deal_id"] == first["deal_id"]
    assert again.json()["updated_at"] == first["updated_at"]
    assert deal_count(partner) == 1
    assert [e.type for e in events(partner)] == ["offer.published"]


def test_a_changed_offer_updates_its_deal_and_names_what_changed(partner: Partner) -> None:
    _, _, headers = installed(partner)
    first = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers).json()

    changed = offer_body(title="Dune: Part Three (IMAX)", stock=55, category="imax")
    answer = partner.client.put("/v1/partner/offers/s-1", json=changed, headers=headers)

    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "updated"
    assert answer.json()["changed"] == ["category", "stock", "title"]
    deal = deal_row(partner, first["deal_id"])
    assert (deal.title, deal.stock, deal.category) == ("Dune: Part Three (IMAX)", 55, "imax")
    updated = events(partner)[-1]
    assert updated.type == "offer.updated"
    assert updated.payload["changed"] == ["category", "stock", "title"]


def test_the_promised_terms_of_a_published_offer_cannot_change(partner: Partner) -> None:
    _, _, headers = installed(partner)
    first = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers).json()

    cheaper = offer_body(group_price={"amount": 900, "currency": "USD"}, title="New title")
    answer = partner.client.put("/v1/partner/offers/s-1", json=cheaper, headers=headers)

    assert answer.status_code == 409
    assert answer.json()["code"] == "deal_not_editable"
    assert answer.json()["fields"] == ["group_price"]
    deal = deal_row(partner, first["deal_id"])
    assert (deal.group_price_amount, deal.title) == (1100, offer_body()["title"])
    assert len(events(partner)) == 1


def test_stock_never_goes_below_what_shoppers_hold(partner: Partner) -> None:
    _, _, headers = installed(partner)
    offer = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers).json()
    start_team(partner, offer["deal_id"])
    start_team(partner, offer["deal_id"])

    below = partner.client.put(
        "/v1/partner/offers/s-1", json=offer_body(stock=1, title="Fewer seats"), headers=headers
    )
    exact = partner.client.put("/v1/partner/offers/s-1", json=offer_body(stock=2), headers=headers)

    assert below.status_code == 409
    assert below.json()["code"] == "stock_below_committed"
    assert below.json()["committed"] == 2
    assert exact.status_code == 200, exact.text
    deal = deal_row(partner, offer["deal_id"])
    assert (deal.stock, deal.committed, deal.title) == (2, 2, offer_body()["title"])
    # sold out now: the next team is refused
    shopper = create_account(partner.services)
    refused = partner.client.post(f"/v1/deals/{offer['deal_id']}/teams", headers=shopper.headers)
    assert refused.json()["code"] == "sold_out"


def test_bad_offers_are_refused_with_the_field_named_and_change_nothing(partner: Partner) -> None:
    _, _, headers = installed(partner)
    now = utc_now()
    bad = {
        "group_price": offer_body(group_price={"amount": 1600, "currency": "USD"}),
        "list_price.currency": offer_body(list_price={"amount": 1600, "currency": "EUR"}),
        "valid_until": offer_body(
            valid_from=(now + timedelta(days=4)).isoformat(),
            valid_until=(now + timedelta(days=3, hours=1)).isoformat(),
        ),
        "ends_at": offer_body(ends_at=(now - timedelta(minutes=1)).isoformat()),
        "location": offer_body(location={"name": "Hall", "lat": 10.0}),
        "stock": offer_body(stock=0),
        "team_size": offer_body(team_size=1),
        "vertical": offer_body(vertical="spaceflight"),
        "unknown": offer_body(colour="red"),
    }
    for field, body in bad.items():
        answer = partner.client.put("/v1/partner/offers/s-1", json=body, headers=headers)
        assert answer.status_code == 422, (field, answer.text)
    assert (
        partner.client.put(
            "/v1/partner/offers/bad id", json=offer_body(), headers=headers
        ).status_code
        == 422
    )
    assert deal_count(partner) == 0
    assert events(partner) == []


def test_only_an_installed_app_with_offers_write_publishes_offers(partner: Partner) -> None:
    shop, app_id, _ = installed(partner)
    other = create_merchant(partner.services.db)
    attempts = {
        "no token": ({}, 401, "invalid_token"),
        "acting as itself": (partner.grant(app_id), 403, "app_not_installed"),
        "another shop": (partner.grant(app_id, merchant_id=other.id), 403, "app_not_installed"),
        "read only": (
            partner.grant(app_id, merchant_id=shop.id, scopes={Scope.OFFERS_READ}),
            403,
            "insufficient_scope",
        ),
    }
    for why, (headers, status, code) in attempts.items():
        answer = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (status, code), why
    assert deal_count(partner) == 0


def test_a_merchant_not_approved_or_suspended_cannot_take_offers(partner: Partner) -> None:
    _, _, pending = installed(partner, approved=False)
    answer = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=pending)
    assert (answer.status_code, answer.json()["code"]) == (409, "merchant_not_approved")
    assert deal_count(partner) == 0


def test_the_same_external_id_of_two_shops_or_two_apps_are_two_offers(partner: Partner) -> None:
    _, app_id, headers = installed(partner)
    other_shop = create_merchant(partner.services.db)
    staff = create_account(partner.services, role=Role.MERCHANT, merchant=other_shop)
    install_app(partner.services.db, app_id, other_shop.id, staff.user_id)
    _, _, other_app = installed(partner)

    for h in (headers, partner.grant(app_id, merchant_id=other_shop.id), other_app):
        answer = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=h)
        assert answer.status_code == 201, answer.text
    assert deal_count(partner) == 3


# ---------------------------------------------------------------------------- withdrawing


def test_withdrawing_ends_the_deal_and_forming_teams_run_their_course(partner: Partner) -> None:
    _, _, headers = installed(partner)
    offer = partner.client.put(
        "/v1/partner/offers/s-1", json=offer_body(team_window_minutes=60), headers=headers
    ).json()
    leader = create_account(partner.services)
    started = partner.client.post(f"/v1/deals/{offer['deal_id']}/teams", headers=leader.headers)
    team_id, seat_id = started.json()["team"]["id"], started.json()["seat"]["id"]
    payment = partner.client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=leader.headers
    ).json()
    partner.client.post(
        f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=leader.headers
    )

    answer = partner.client.delete("/v1/partner/offers/s-1", headers=headers)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ended"
    shopper = create_account(partner.services)
    join = partner.client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
    assert join.json()["code"] == "deal_not_live"
    assert [e.type for e in events(partner)] == ["offer.published", "offer.withdrawn"]
    # the team already forming keeps its window, then fails, and its paid seat's money goes
    # back, as when a merchant ends a deal
    assert team_status(partner, team_id) == "forming"
    clock.offset = timedelta(minutes=61)
    Worker(partner.services).run_until_idle()
    assert team_status(partner, team_id) == "failed"
    seat = partner.services.db.run_sync(lambda s: s.get(Seat, seat_id))
    assert seat is not None
    assert seat.status == "refunded"
    money = partner.client.get(f"/v1/payments/{payment['id']}", headers=leader.headers).json()
    assert money["status"] in ("voided", "refunded")


def team_status(partner: Partner, team_id: str) -> str:
    team = partner.services.db.run_sync(lambda s: s.get(Team, team_id))
    assert team is not None
    return str(team.status)


def test_withdrawing_twice_changes_nothing_and_an_ended_offer_is_not_revived(
    partner: Partner,
) -> None:
    _, _, headers = installed(partner)
    partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers)
    partner.client.delete("/v1/partner/offers/s-1", headers=headers)

    again = partner.client.delete("/v1/partner/offers/s-1", headers=headers)
    revived = partner.client.put("/v1/partner/offers/s-1", json=offer_body(), headers=headers)
    unknown = partner.client.delete("/v1/partner/offers/never-published", headers=headers)

    assert (again.status_code, again.json()["status"]) == (200, "ended")
    assert (revived.status_code, revived.json()["code"]) == (409, "offer_ended")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "offer_not_found")
    assert [e.type for e in events(partner)] == ["offer.published", "offer.withdrawn"]


def test_the_apps_offers_are_listed_newest_first_page_by_page(partner: Partner) -> None:
    shop, app_id, headers = installed(partner)
    for n in range(5):
        partner.client.put(f"/v1/partner/offers/s-{n}", json=offer_body(), headers=headers)
    _, _, stranger = installed(partner)
    partner.client.put("/v1/partner/offers/theirs", json=offer_body(), headers=stranger)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = partner.client.get("/v1/partner/offers", params=params, headers=headers).json()
        seen += [o["external_id"] for o in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ["s-4", "s-3", "s-2", "s-1", "s-0"]
    as_itself = partner.client.get("/v1/partner/offers", headers=partner.grant(app_id)).json()
    assert len(as_itself["data"]) == 5
    assert {o["merchant_id"] for o in as_itself["data"]} == {shop.id}


def test_an_offers_pictures_are_uploaded_to_this_site_and_only_those_are_taken(
    partner: Partner,
) -> None:
    _, _, headers = installed(partner)
    elsewhere = partner.client.put(
        "/v1/partner/offers/poster",
        json=offer_body(media_urls=["https://cinema.example/posters/dune3.jpg"]),
        headers=headers,
    )
    assert elsewhere.status_code == 422, elsewhere.text
    never_uploaded = partner.client.put(
        "/v1/partner/offers/poster",
        json=offer_body(media_urls=[f"/media/{'0' * 32}-large.webp"]),
        headers=headers,
    )
    assert never_uploaded.status_code == 422, never_uploaded.text
    assert never_uploaded.json()["errors"][0]["field"] == "media_urls.0"
    assert deal_count(partner) == 0

    uploaded = partner.client.post(
        "/v1/partner/images",
        files={"file": ("poster.jpg", picture("navy", (900, 1200), "JPEG"), "image/jpeg")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    image = uploaded.json()
    assert image["url"].startswith("/media/")
    assert image["url"].endswith("-large.webp")
    published = partner.client.put(
        "/v1/partner/offers/poster", json=offer_body(media_urls=[image["url"]]), headers=headers
    )
    assert published.status_code == 201, published.text
    assert deal_row(partner, published.json()["deal_id"]).image_urls == [image["url"]]
    served = partner.client.get(image["thumbnail_url"])
    assert served.status_code == 200
    assert "immutable" in served.headers["cache-control"]


def test_only_an_app_with_offers_write_uploads_pictures(partner: Partner) -> None:
    shop, app_id, _ = installed(partner)
    reader = partner.grant(app_id, merchant_id=shop.id, scopes=[Scope.OFFERS_READ.value])
    refused = partner.client.post(
        "/v1/partner/images",
        files={"file": ("poster.png", picture("navy", (64, 64), "PNG"), "image/png")},
        headers=reader,
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
