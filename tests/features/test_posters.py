"""QR posters: a phone-sized PNG whose QR code scans to the right link, in the viewer's language."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.shares.models import Share
from pintuan.shares.posters import (
    CJK_FONT_FILES,
    CJK_PACKAGE_HINT,
    HEIGHT,
    WIDTH,
    PosterContent,
    draws_cjk,
    find_font,
    poster_font,
    render_poster,
)
from tests.factories import Account, create_account, create_deal, create_merchant

ZBARIMG = shutil.which("zbarimg")
needs_zbarimg = pytest.mark.skipif(
    ZBARIMG is None, reason="zbarimg (Debian's zbar-tools) is not installed; CI installs it"
)


def scan(png: bytes, tmp_path: Path) -> str:
    """What a phone would read from the poster's QR code."""
    assert ZBARIMG is not None
    path = tmp_path / "poster.png"
    path.write_bytes(png)
    found = subprocess.run(  # noqa: S603 - a fixed local program
        [ZBARIMG, "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def a_team(client: TestClient, services: Services) -> tuple[Account, str, str]:
    deal = create_deal(services.db, create_merchant(services.db, currency="CNY"), title="小笼包")
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    return leader, deal.id, started["team"]["id"]


def test_a_poster_is_a_phone_sized_png(client: TestClient, services: Services) -> None:
    _, _, team_id = a_team(client, services)

    response = client.get(f"/v1/teams/{team_id}/poster.png")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))


@needs_zbarimg
def test_an_anonymous_viewers_poster_scans_to_the_team_page(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    _, deal_id, team_id = a_team(client, services)

    team = client.get(f"/v1/teams/{team_id}/poster.png")
    deal = client.get(f"/v1/deals/{deal_id}/poster.png")

    base = services.settings.base_url
    assert scan(team.content, tmp_path) == f"{base}/teams/{team_id}"
    assert scan(deal.content, tmp_path) == f"{base}/deals/{deal_id}"


@needs_zbarimg
def test_a_signed_in_viewers_poster_scans_to_their_own_qr_share_made_once(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    _, _, team_id = a_team(client, services)
    friend = create_account(services)

    first = client.get(f"/v1/teams/{team_id}/poster.png", headers=friend.headers)
    second = client.get(f"/v1/teams/{team_id}/poster.png", headers=friend.headers)

    shares = services.db.run_sync(lambda s: s.scalars(select(Share)).all())
    assert [(s.sharer_id, s.channel) for s in shares] == [(friend.user_id, "qr")]
    link = f"{services.settings.base_url}/s/{shares[0].code}"
    assert scan(first.content, tmp_path) == link
    assert first.content == second.content


def test_a_poster_is_cached_until_the_team_changes(client: TestClient, services: Services) -> None:
    _, _, team_id = a_team(client, services)
    joiner = create_account(services)

    first = client.get(f"/v1/teams/{team_id}/poster.png")
    unchanged = client.get(
        f"/v1/teams/{team_id}/poster.png", headers={"If-None-Match": first.headers["etag"]}
    )
    client.post(f"/v1/teams/{team_id}/seats", headers=joiner.headers)
    changed = client.get(
        f"/v1/teams/{team_id}/poster.png", headers={"If-None-Match": first.headers["etag"]}
    )
    chinese = client.get(f"/v1/teams/{team_id}/poster.png", params={"lang": "zh-Hans"})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert changed.status_code == 200
    assert changed.headers["etag"] != first.headers["etag"]
    assert chinese.headers["etag"] not in (first.headers["etag"], changed.headers["etag"])


def test_an_unknown_or_closed_team_has_no_poster(client: TestClient, services: Services) -> None:
    _, _, team_id = a_team(client, services)

    unknown = client.get("/v1/teams/team_nope/poster.png")
    clock.advance(timedelta(days=2))
    closed = client.get(f"/v1/teams/{team_id}/poster.png")

    assert (unknown.status_code, unknown.json()["code"]) == (404, "team_not_found")
    assert (closed.status_code, closed.json()["code"]) == (409, "team_closed")


def installed_cjk_font() -> str | None:
    return next((p for p in CJK_FONT_FILES if Path(p).is_file() and draws_cjk(p)), None)


@pytest.mark.skipif(
    installed_cjk_font() is None,
    reason="no CJK font (Debian's fonts-wqy-microhei or fonts-noto-cjk); CI installs one",
)
def test_with_a_cjk_font_installed_posters_draw_chinese_with_it() -> None:
    chosen = poster_font()

    assert chosen.cjk
    assert chosen.path is not None
    assert draws_cjk(chosen.path)


def test_without_a_cjk_font_the_poster_still_renders_and_the_log_names_the_package(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pintuan.posters"):
        fallback = find_font(cjk_candidates=(), use_fontconfig=False)
    content = PosterContent(
        title="小笼包 Xiaolongbao",
        group_price="¥99.00",
        group_price_label="拼团价",
        list_price="¥168.00",
        detail="还差2人",
        ends="2026/12/1 14:00 截止",
        scan="扫码参团",
        url="https://example.com/s/Ab3kX9Ab3k",
        seed="deal_1",
    )

    png = render_poster(content, fallback)

    assert not fallback.cjk
    assert "fonts-wqy-microhei" in CJK_PACKAGE_HINT
    assert CJK_PACKAGE_HINT in caplog.messages
    assert Image.open(io.BytesIO(png)).size == (WIDTH, HEIGHT)
