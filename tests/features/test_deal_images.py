"""A deal's pictures through the API: upload, check, strip, resize, serve, reorder, remove; the
same store on a local folder and on an S3-compatible bucket."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.domain.roles import Role
from pintuan.media.service import store_image
from pintuan.media.stores import LocalMediaStore, S3MediaStore
from pintuan.services import Services
from tests.conftest import _empty_all_tables, make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes import s3_api
from tests.media_pictures import picture

IMMUTABLE = "public, max-age=31536000, immutable"


def upload(
    client: TestClient, deal_id: str, who: Account, data: bytes, name: str = "p.jpg"
) -> object:
    return client.post(
        f"/v1/deals/{deal_id}/images",
        files={"file": (name, data, "image/jpeg")},
        headers=who.headers,
    )


def staff_and_deal(services: Services) -> tuple[Account, str]:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    return staff, create_deal(services.db, merchant).id


def served(client: TestClient, url: str) -> Image.Image:
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/webp"
    assert answer.headers["cache-control"] == IMMUTABLE
    return Image.open(io.BytesIO(answer.content))


def test_staff_upload_two_pictures_and_shoppers_see_them_in_order(
    client: TestClient, services: Services
) -> None:
    staff, deal_id = staff_and_deal(services)

    first = upload(client, deal_id, staff, picture("tomato", (2400, 1200)))
    second = upload(client, deal_id, staff, picture("seagreen", (600, 900), "PNG"), "p.png")

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    images = second.json()["data"]
    assert len(images) == 2
    deal = client.get(f"/v1/deals/{deal_id}").json()
    assert deal["image_urls"] == [image["url"] for image in images]
    assert client.get(f"/v1/deals/{deal_id}/images").json()["data"] == images
    large = served(client, images[0]["url"])
    assert large.size == (1600, 800)  # the longest side brought down to 1600, shape kept
    thumb = served(client, images[0]["thumbnail_url"])
    assert thumb.size == (480, 480)
    assert served(client, images[1]["url"]).size == (600, 900)  # never enlarged


def test_a_picture_is_kept_under_a_digest_of_its_content_and_once(
    client: TestClient, services: Services
) -> None:
    staff, deal_id = staff_and_deal(services)
    data = picture("gold")

    upload(client, deal_id, staff, data)
    again = upload(client, deal_id, staff, data)

    images = again.json()["data"]
    assert len(images) == 1
    body = client.get(images[0]["url"]).content
    assert images[0]["id"] == hashlib.sha256(body).hexdigest()[:32]


def test_reorder_and_remove_keep_the_deals_image_urls_in_step(
    client: TestClient, services: Services
) -> None:
    staff, deal_id = staff_and_deal(services)
    for colour in ("red", "green", "blue"):
        upload(client, deal_id, staff, picture(colour))
    ids = [i["id"] for i in client.get(f"/v1/deals/{deal_id}/images").json()["data"]]

    moved = client.put(
        f"/v1/deals/{deal_id}/images/order",
        json={"image_ids": [ids[2], ids[0], ids[1]]},
        headers=staff.headers,
    )
    removed = client.delete(f"/v1/deals/{deal_id}/images/{ids[0]}", headers=staff.headers)

    assert moved.status_code == 200, moved.text
    assert [i["id"] for i in moved.json()["data"]] == [ids[2], ids[0], ids[1]]
    assert removed.status_code == 200
    urls = client.get(f"/v1/deals/{deal_id}").json()["image_urls"]
    assert urls == [f"/media/{ids[2]}-large.webp", f"/media/{ids[1]}-large.webp"]


def test_a_reorder_must_name_each_picture_once(client: TestClient, services: Services) -> None:
    staff, deal_id = staff_and_deal(services)
    upload(client, deal_id, staff, picture("red"))
    upload(client, deal_id, staff, picture("blue"))
    ids = [i["id"] for i in client.get(f"/v1/deals/{deal_id}/images").json()["data"]]

    for order in ([ids[0]], [ids[0], ids[0]], [ids[0], ids[1], "0" * 32]):
        answer = client.put(
            f"/v1/deals/{deal_id}/images/order", json={"image_ids": order}, headers=staff.headers
        )
        assert answer.status_code == 422
        assert answer.json()["code"] == "image_order_mismatch"
    assert [i["id"] for i in client.get(f"/v1/deals/{deal_id}/images").json()["data"]] == ids
    gone = client.delete(f"/v1/deals/{deal_id}/images/{'0' * 32}", headers=staff.headers)
    assert gone.status_code == 200  # a DELETE is idempotent: nothing to remove, nothing changes
    assert [i["id"] for i in gone.json()["data"]] == ids


def _exif_with_gps_and_rotation() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; show rotated 90° clockwise
    exif[0x0110] = "Secret Camera Model"
    exif[0x8825] = {2: (52.0, 31.0, 12.0)}  # GPS latitude
    return exif


def test_metadata_is_stripped_and_the_rotation_applied(
    client: TestClient, services: Services
) -> None:
    staff, deal_id = staff_and_deal(services)
    data = picture("white", (800, 400), exif=_exif_with_gps_and_rotation())
    assert b"Secret Camera Model" in data

    answer = upload(client, deal_id, staff, data)

    url = answer.json()["data"][0]["url"]
    body = client.get(url).content
    kept = Image.open(io.BytesIO(body))
    assert kept.size == (400, 800)  # upright
    assert not kept.getexif()
    assert b"Secret Camera Model" not in body
    assert "icc_profile" not in kept.info
    assert "xmp" not in kept.info


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"GIF89a but not really", 415, "image_type_not_allowed"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "image_type_not_allowed"),
        (picture("red", (40, 40), "BMP"), 415, "image_type_not_allowed"),
        (picture("red", (800, 600), "PNG")[:-200], 422, "image_unreadable"),
        (picture("red", (4000, 4000), "PNG"), 422, "image_too_many_pixels"),
        (b"", 415, "image_type_not_allowed"),
    ],
    ids=["fake-gif", "svg", "bmp", "truncated", "pixel-bomb", "empty"],
)
def test_a_bad_upload_is_refused_with_its_code_and_changes_nothing(
    database_url: str, tmp_path: Path, data: bytes, status: int, code: str
) -> None:
    settings = make_settings(database_url, media_dir=tmp_path, media_max_pixels=10_000_000)
    services = build_services(settings)
    try:
        _empty_all_tables(services.db)
        staff, deal_id = staff_and_deal(services)
        with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
            answer = upload(client, deal_id, staff, data)
            assert answer.status_code == status, answer.text
            assert answer.json()["code"] == code
            assert client.get(f"/v1/deals/{deal_id}").json()["image_urls"] == []
        assert list(tmp_path.iterdir()) == []
    finally:
        services.db.dispose()


def test_a_picture_over_the_size_limit_is_refused(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, media_dir=tmp_path, media_max_bytes=20_000)
    services = build_services(settings)
    try:
        _empty_all_tables(services.db)
        staff, deal_id = staff_and_deal(services)
        big = picture("red", (1200, 1200), "PNG") + b"\0" * 30_000
        with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
            answer = upload(client, deal_id, staff, big)
        assert answer.status_code == 413
        assert answer.json()["code"] == "image_too_large"
    finally:
        services.db.dispose()


def test_only_the_deals_staff_may_change_its_pictures(
    client: TestClient, services: Services
) -> None:
    _staff, deal_id = staff_and_deal(services)
    other = create_account(
        services, role=Role.MERCHANT, merchant=create_merchant(services.db, slug="elsewhere")
    )
    shopper = create_account(services)

    assert upload(client, deal_id, other, picture()).status_code == 403
    assert upload(client, deal_id, shopper, picture()).status_code == 403
    anonymous = client.post(f"/v1/deals/{deal_id}/images", files={"file": ("p", picture())})
    assert anonymous.status_code == 401
    assert client.get(f"/v1/deals/{deal_id}").json()["image_urls"] == []


def test_a_deal_shows_at_most_twelve_pictures(client: TestClient, services: Services) -> None:
    staff, deal_id = staff_and_deal(services)
    for n in range(12):
        assert upload(client, deal_id, staff, picture(f"#{n:02x}{n:02x}40")).status_code == 201

    answer = upload(client, deal_id, staff, picture("black"))

    assert answer.status_code == 409
    assert answer.json()["code"] == "too_many_images"


def test_image_urls_take_only_pictures_this_site_keeps(
    client: TestClient, services: Services
) -> None:
    staff, deal_id = staff_and_deal(services)
    url = upload(client, deal_id, staff, picture()).json()["data"][0]["url"]

    outside = client.patch(
        f"/v1/deals/{deal_id}",
        json={"image_urls": ["https://example.com/a.jpg"]},
        headers=staff.headers,
    )
    unknown = client.patch(
        f"/v1/deals/{deal_id}",
        json={"image_urls": [f"/media/{'0' * 32}-large.webp"]},
        headers=staff.headers,
    )
    cleared = client.patch(f"/v1/deals/{deal_id}", json={"image_urls": []}, headers=staff.headers)
    kept = client.patch(f"/v1/deals/{deal_id}", json={"image_urls": [url]}, headers=staff.headers)

    assert outside.status_code == 422
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "image_urls.0"
    assert cleared.json()["image_urls"] == []
    assert kept.json()["image_urls"] == [url]


def test_unknown_or_made_up_media_names_are_not_found(client: TestClient) -> None:
    for name in ("nothing.webp", f"{'0' * 32}-large.webp", "..pintuan.db"):
        answer = client.get(f"/media/{name}")
        assert answer.status_code == 404
        assert answer.json()["code"] == "media_not_found"
    assert client.get("/media/..%2F..%2Fpintuan.db").status_code == 404


def test_the_local_folder_keeps_each_name_once(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    ref = store_image(store, picture("orange"), max_bytes=10**7, max_pixels=10**7)

    names = sorted(p.name for p in (tmp_path / "media").iterdir())

    assert names == [f"{ref.key}-large.webp", f"{ref.key}-thumb.webp"]
    assert store.has(f"{ref.key}-large.webp")
    assert store.get("absent.webp") is None


def test_an_s3_compatible_bucket_stores_and_serves_pictures(
    database_url: str,
) -> None:
    with s3_api.fake_s3() as s3:
        settings: Settings = make_settings(
            database_url,
            media_s3_bucket=s3.bucket,
            media_s3_endpoint_url=s3.url,
            media_s3_region=s3_api.REGION,
            media_s3_access_key_id=s3_api.ACCESS_KEY,
            media_s3_secret_access_key=s3_api.SECRET_KEY,
            media_s3_prefix="deals/",
        )
        services = build_services(settings)
        assert isinstance(services.media, S3MediaStore)
        try:
            _empty_all_tables(services.db)
            staff, deal_id = staff_and_deal(services)
            with TestClient(
                create_app(settings, services), raise_server_exceptions=False
            ) as client:
                answer = upload(client, deal_id, staff, picture("plum"))
                assert answer.status_code == 201, answer.text
                image = answer.json()["data"][0]
                assert served(client, image["thumbnail_url"]).size == (480, 480)
                assert client.get(f"/media/{'1' * 32}-thumb.webp").status_code == 404
            key = image["id"]
            assert set(s3.objects) == {f"deals/{key}-large.webp", f"deals/{key}-thumb.webp"}
            assert s3.objects[f"deals/{key}-large.webp"][1] == "image/webp"
        finally:
            services.db.dispose()


def test_the_s3_store_refuses_to_work_with_the_wrong_secret() -> None:
    with s3_api.fake_s3() as s3:
        store = S3MediaStore(
            s3.bucket,
            endpoint_url=s3.url,
            region=s3_api.REGION,
            access_key_id=s3_api.ACCESS_KEY,
            secret_access_key="not-the-secret",
        )
        with pytest.raises(Exception, match=r"SignatureDoesNotMatch|403|Forbidden"):
            store.put("a.webp", b"x", "image/webp")
        assert s3.objects == {}
