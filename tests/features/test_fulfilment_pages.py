"""Fulfilment on the pages, as a browser without JavaScript drives them: the address book, the
address on the team page, the merchant's shipping queue (one form per order, CSV upload with its
report), receipt, and the order's timeline."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.fulfilment.models import Address, Shipment
from pintuan.services import Services
from tests.factories import create_account
from tests.features.fulfilment import add_address, choose, goods_team, ship
from tests.features.test_shopper_pages import HTML, hidden, log_in


def form_post(client: TestClient, page_path: str, action: str, **fields: str) -> tuple[str, object]:
    """Open ``page_path``, take its form's hidden fields for ``action`` and post with ``fields``."""
    page = client.get(page_path, headers=HTML).text
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"{page_path} has no form for {action}"
    data = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))
    data.update(fields)
    return page, client.post(action, data=data, headers=HTML, follow_redirects=False)


def test_an_address_form_with_wrong_fields_shows_every_error_by_its_field_in_chinese(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    assert client.patch("/v1/me", json={"locale": "zh-Hans"}, headers=shopper.headers).is_success
    log_in(client, shopper)

    _, answer = form_post(
        client,
        "/me/addresses/new?country=GB",
        "/me/addresses",
        recipient="Ann",
        phone="12",
        postcode="12345",
    )

    assert answer.status_code == 422
    page = answer.text
    for field in ("phone", "postcode", "city", "line1"):
        assert f'id="{field}-error"' in page
        assert f'aria-describedby="{field}-error"' in page
    assert "格式应类似 SW1A 1AA。" in page
    assert page.count("必填。") == 2
    assert services.db.run_sync(lambda s: s.scalars(select(Address)).all()) == []


def test_a_shopper_adds_edits_makes_default_and_deletes_addresses(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services)
    log_in(client, shopper)
    _, added = form_post(
        client,
        "/me/addresses/new?country=DE",
        "/me/addresses",
        recipient="Lena Vogel",
        phone="+49 30 1234567",
        line1="Unter den Linden 77",
        city="Berlin",
        postcode="10117",
    )
    assert added.status_code == 303
    second = add_address(client, shopper)
    book = client.get("/me/addresses", headers=HTML).text
    assert "10117 Berlin" in book
    assert "Default" in book

    _, made = form_post(client, "/me/addresses", f"/me/addresses/{second['id']}/default")
    assert made.status_code == 303
    _, edited = form_post(
        client,
        f"/me/addresses/{second['id']}",
        f"/me/addresses/{second['id']}",
        recipient="陈静",
        phone="+86 138 0013 8000",
        region="上海市",
        city="上海市",
        district="静安区",
        line1="南京西路 1 号",
        country="CN",
    )
    assert edited.status_code == 303
    stored = services.db.run_sync(
        lambda s: {a.id: (a.recipient, a.is_default) for a in s.scalars(select(Address))}
    )
    assert stored[second["id"]] == ("陈静", True)
    _, deleted = form_post(client, "/me/addresses", f"/me/addresses/{second['id']}/delete")
    assert deleted.status_code == 303
    assert len(services.db.run_sync(lambda s: s.scalars(select(Address)).all())) == 1


def test_the_team_page_asks_for_the_address_after_success_and_then_shows_the_timeline(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id, team = order.shoppers[0], order.seat_ids[0], order.team_id
    address = add_address(client, shopper)
    log_in(client, shopper)

    page = client.get(f"/teams/{team}", headers=HTML).text
    assert "Where should we deliver it?" in page
    _, chosen = form_post(
        client, f"/teams/{team}", f"/seats/{seat_id}/address", address_id=address["id"]
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == f"/teams/{team}?delivery=address#delivery"
    page = client.get(f"/teams/{team}?delivery=address", headers=HTML).text
    assert "Your delivery address is saved on the order." in page
    assert "南京西路 1266 号 12 楼" in page
    assert "Delivery address chosen" in page

    assert ship(client, order.staff, seat_id).status_code == 200
    orders = client.get("/orders", headers=HTML).text
    assert "SF1234567890" in orders
    _, received = form_post(client, "/orders", f"/seats/{seat_id}/received")
    assert received.status_code == 303
    assert received.headers["location"].startswith("/orders?delivery=received")
    page = client.get("/orders", headers=HTML).text
    assert "Received" in page
    assert "I have received it" not in page


def test_starting_a_team_of_goods_asks_for_the_address_before_the_payment(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services, succeed=False)
    shopper = create_account(services)
    address = add_address(client, shopper)
    log_in(client, shopper)

    _, answer = form_post(client, f"/deals/{order.deal_id}", f"/deals/{order.deal_id}/teams")

    team_url = answer.headers["location"]
    assert re.fullmatch(r"/teams/team_\w+#delivery", team_url)
    team_path = team_url.split("#")[0]
    page = client.get(team_path, headers=HTML).text
    assert f'value="{address["id"]}" checked' in page
    seat_id = re.search(r'action="/seats/(seat_\w+)/address"', page)
    assert seat_id
    assert f'action="/seats/{seat_id.group(1)}/pay"' in page
    _, chosen = form_post(client, team_path, f"/seats/{seat_id.group(1)}/address")
    assert chosen.status_code == 303
    _, paying = form_post(client, team_path, f"/seats/{seat_id.group(1)}/pay")
    assert "/sandbox/checkout/" in paying.headers["location"]


def test_a_refused_address_choice_comes_back_as_a_code_the_page_puts_in_words(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id = order.shoppers[0], order.seat_ids[0]
    address = add_address(client, shopper)
    choose(client, shopper, seat_id, address["id"])
    ship(client, order.staff, seat_id)
    log_in(client, shopper)

    page = client.get(f"/teams/{order.team_id}", headers=HTML).text
    csrf = hidden(page, "csrf_token")
    answer = client.post(
        f"/seats/{seat_id}/address",
        data={"csrf_token": csrf, "address_id": address["id"]},
        headers=HTML,
        follow_redirects=False,
    )

    assert answer.headers["location"].endswith("delivery_error=already_shipped#delivery")
    shown = client.get(f"/teams/{order.team_id}?delivery_error=already_shipped", headers=HTML)
    assert "its address can no longer change" in shown.text
    made_up = client.get(f"/teams/{order.team_id}?delivery_error=<b>lies</b>", headers=HTML)
    assert 'class="form-error"' not in made_up.text


def test_staff_ship_one_order_from_the_queue_and_a_bad_number_is_shown_on_its_row(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id = order.shoppers[0], order.seat_ids[0]
    choose(client, shopper, seat_id, add_address(client, shopper)["id"])
    log_in(client, order.staff)
    queue = f"/console/merchants/{order.merchant.id}/shipping"
    action = f"/console/merchants/{order.merchant.id}/seats/{seat_id}/shipment"

    page = client.get(queue, headers=HTML).text
    assert "南京西路 1266 号 12 楼" in page
    assert (
        "The shopper has been asked for an address."
        in client.get(queue + "?state=awaiting_address", headers=HTML).text
    )
    _, bad = form_post(client, queue, action, carrier="SF Express", tracking_number="!")
    assert bad.status_code == 422
    assert f'id="ship-error-{seat_id}"' in bad.text
    _, good = form_post(client, queue, action, carrier="SF Express", tracking_number="SF 123 456")
    assert good.status_code == 303
    shipment = services.db.run_sync(lambda s: s.get(Shipment, seat_id))
    assert (shipment.status, shipment.tracking_number) == ("shipped", "SF123456")


def test_a_csv_upload_ships_good_lines_and_reports_each_bad_one(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services, size=3)
    for shopper, seat_id in zip(order.shoppers[:2], order.seat_ids[:2], strict=True):
        choose(client, shopper, seat_id, add_address(client, shopper)["id"])
    log_in(client, order.staff)
    queue = f"/console/merchants/{order.merchant.id}/shipping"
    exported = client.get(queue + ".csv")
    assert exported.status_code == 200
    assert exported.text.startswith("\ufeffseat_id,carrier,tracking_number,recipient")
    a, b, c = order.seat_ids
    csv_text = (
        "seat_id;carrier;tracking_number\n"
        f"{a};SF Express;SF100000001\n"
        "\n"
        f"{b};;\n"
        f"{c};SF Express;SF100000003\n"
    )
    page = client.get(queue, headers=HTML).text
    form = re.search(r'<form method="post" action="[^"]*/shipping/upload".*?</form>', page, re.S)
    assert form
    data = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))

    answer = client.post(
        queue + "/upload",
        data=data,
        files={"file": ("shipping.csv", csv_text.encode(), "text/csv")},
        headers=HTML,
    )

    assert answer.status_code == 200, answer.text
    assert "1 shipped, 0 already shipped, 2 refused." in answer.text
    assert "The shopper has not chosen an address yet." in answer.text
    assert "Check the carrier and the tracking number." in answer.text
    statuses = services.db.run_sync(
        lambda s: dict(s.execute(select(Shipment.seat_id, Shipment.status)).all())
    )
    assert statuses == {a: "shipped", b: "addressed"}


def test_a_file_without_the_columns_is_refused_whole(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    log_in(client, order.staff)
    queue = f"/console/merchants/{order.merchant.id}/shipping"
    page = client.get(queue, headers=HTML).text
    data = {"csrf_token": hidden(page, "csrf_token")}

    answer = client.post(
        queue + "/upload",
        data=data,
        files={"file": ("x.csv", b"order,number\nseat_1,2\n", "text/csv")},
        headers=HTML,
    )

    assert answer.status_code == 422
    assert "must name the columns seat_id, carrier and tracking_number" in answer.text
    assert services.db.run_sync(lambda s: s.scalars(select(Shipment)).all()) == []


def test_another_merchants_staff_cannot_ship_through_their_own_queue(
    client: TestClient, services: Services
) -> None:
    order = goods_team(client, services)
    shopper, seat_id = order.shoppers[0], order.seat_ids[0]
    choose(client, shopper, seat_id, add_address(client, shopper)["id"])
    other = goods_team(client, services)
    log_in(client, other.staff)
    queue = f"/console/merchants/{other.merchant.id}/shipping"

    page = client.get(queue, headers=HTML).text
    answer = client.post(
        f"/console/merchants/{other.merchant.id}/seats/{seat_id}/shipment",
        data={"csrf_token": hidden(page, "csrf_token"), "carrier": "X", "tracking_number": "X1234"},
        headers=HTML,
    )

    assert answer.status_code == 404
    assert services.db.run_sync(lambda s: s.get(Shipment, seat_id)).status == "addressed"
