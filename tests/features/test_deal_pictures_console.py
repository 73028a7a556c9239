"""The deal editor's pictures in a browser's shoes (plain forms): upload several, move, remove,
refusals next to the pictures, in two languages; and the shopper's pages showing them."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from httpx import Response

from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.console_data import HTML, csrf_of, log_in, speak_chinese
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.media_pictures import picture


def editor(merchant_id: str, deal_id: str) -> str:
    return f"/console/merchants/{merchant_id}/deals/{deal_id}"


def shown_pictures(page: str) -> list[str]:
    return re.findall(r'data-image-id="([0-9a-f]{32})"', page)


def upload_form(
    client: TestClient, merchant_id: str, deal_id: str, files: list[tuple[str, bytes]]
) -> Response:
    page = client.get(editor(merchant_id, deal_id), headers=HTML).text
    response: Response = client.post(
        editor(merchant_id, deal_id) + "/images",
        data={"csrf_token": csrf_of(page), "form_key": uuid.uuid4().hex},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        headers=HTML,
        follow_redirects=False,
    )
    return response


def picture_form(
    client: TestClient, merchant_id: str, deal_id: str, key: str, what: str, step: str = ""
) -> Response:
    page = client.get(editor(merchant_id, deal_id), headers=HTML).text
    fields = {"csrf_token": csrf_of(page), "form_key": uuid.uuid4().hex, "step": step}
    response: Response = client.post(
        f"{editor(merchant_id, deal_id)}/images/{key}/{what}",
        data=fields,
        headers=HTML,
        follow_redirects=False,
    )
    return response


def staff_with_deal(services: Services) -> tuple[Account, str, str]:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    return staff, merchant.id, create_deal(services.db, merchant, title="Noodle night").id


def test_staff_upload_two_pictures_reorder_them_and_shoppers_see_them(
    client: TestClient, services: Services
) -> None:
    staff, merchant_id, deal_id = staff_with_deal(services)
    log_in(client, staff)

    added = upload_form(
        client, merchant_id, deal_id, [("a.jpg", picture("tomato")), ("b.png", picture("teal"))]
    )

    assert added.status_code == 303
    page = client.get(editor(merchant_id, deal_id), headers=HTML).text
    first, second = shown_pictures(page)
    assert "The pictures are added." in client.get(added.headers["location"], headers=HTML).text

    moved = picture_form(client, merchant_id, deal_id, second, "move", "-1")

    assert moved.status_code == 303
    assert shown_pictures(client.get(editor(merchant_id, deal_id), headers=HTML).text) == [
        second,
        first,
    ]
    client.cookies.clear()
    home = client.get("/", headers=HTML).text
    assert f'src="/media/{second}-thumb.webp"' in home
    deal_page = client.get(f"/deals/{deal_id}", headers=HTML).text
    assert deal_page.index(f"/media/{second}-large.webp") < deal_page.index(
        f"/media/{first}-large.webp"
    )


def test_a_removed_picture_leaves_the_editor_and_the_deal(
    client: TestClient, services: Services
) -> None:
    staff, merchant_id, deal_id = staff_with_deal(services)
    log_in(client, staff)
    upload_form(
        client, merchant_id, deal_id, [("a.jpg", picture("red")), ("b.jpg", picture("blue"))]
    )
    first, second = shown_pictures(client.get(editor(merchant_id, deal_id), headers=HTML).text)

    assert picture_form(client, merchant_id, deal_id, first, "remove").status_code == 303

    assert shown_pictures(client.get(editor(merchant_id, deal_id), headers=HTML).text) == [second]
    assert client.get(f"/v1/deals/{deal_id}").json()["image_urls"] == [
        f"/media/{second}-large.webp"
    ]


def test_a_refused_file_is_explained_by_the_pictures_and_nothing_is_added(
    client: TestClient, services: Services
) -> None:
    staff, merchant_id, deal_id = staff_with_deal(services)
    log_in(client, staff)

    refused = upload_form(
        client, merchant_id, deal_id, [("ok.jpg", picture()), ("notes.txt", b"just words")]
    )

    assert refused.status_code == 415
    assert "This file is not a picture we accept. Send a JPEG, PNG, WebP or GIF." in refused.text
    assert shown_pictures(refused.text) == []
    assert client.get(f"/v1/deals/{deal_id}").json()["image_urls"] == []


def test_the_refusal_is_in_chinese_for_a_chinese_account(
    client: TestClient, services: Services
) -> None:
    staff, merchant_id, deal_id = staff_with_deal(services)
    speak_chinese(services, staff)
    log_in(client, staff)

    refused = upload_form(client, merchant_id, deal_id, [("x.gif", b"GIF89a nothing")])

    assert refused.status_code == 415
    assert "不是我们接受的图片" in refused.text


def test_another_merchants_staff_cannot_touch_the_pictures(
    client: TestClient, services: Services
) -> None:
    _staff, merchant_id, deal_id = staff_with_deal(services)
    other = create_account(
        services, role=Role.MERCHANT, merchant=create_merchant(services.db, slug="other-shop")
    )
    log_in(client, other)
    page = client.get("/", headers=HTML).text

    answer = client.post(
        editor(merchant_id, deal_id) + "/images",
        data={"csrf_token": csrf_of(page) if "csrf_token" in page else "", "form_key": "k"},
        files=[("files", ("a.jpg", picture(), "image/jpeg"))],
        headers=HTML,
        follow_redirects=False,
    )

    assert answer.status_code in (403, 404)
    assert client.get(f"/v1/deals/{deal_id}").json()["image_urls"] == []
