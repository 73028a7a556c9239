"""The home page of a visitor who is not signed in is answered from a kept frame: its text must
be exactly the full render's, for every language, time zone, region, tab and notice, and its
CSRF token the visitor's own."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import Markup

from pintuan.domain.deals import Vertical
from pintuan.services import Services
from pintuan.web.kit import rendering
from pintuan.web.kit.frames import PageFrames
from pintuan.web.shopper import home_feed
from tests.console_data import log_in, start_over_api
from tests.factories import create_account, create_deal, create_merchant

HTML = {"accept": "text/html"}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def both_ways(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every framed answer next to the full render of the same request."""
    seen: list[tuple[bytes, bytes]] = []
    framed_render = PageFrames.render

    async def framed_and_full(self: PageFrames, request: Any, name: str, context: Any, **kw: Any):  # type: ignore[no-untyped-def]
        framed = await framed_render(self, request, name, context, **kw)
        # A hole given in UTF-8 (the cards) is markup the template takes as text.
        holes = {
            name: Markup(value.decode()) if isinstance(value, bytes) else value  # noqa: S704
            for name, value in kw["holes"].items()
        }
        full = await rendering.render(request, name, {**context, **holes})
        seen.append((bytes(framed.body), bytes(full.body)))
        assert framed.headers.get("set-cookie") == full.headers.get("set-cookie")
        assert framed.headers["cache-control"] == "no-store"
        return framed

    monkeypatch.setattr(PageFrames, "render", framed_and_full)
    monkeypatch.setattr(home_feed, "FRAMES", PageFrames())
    return seen


def test_a_framed_home_page_is_the_full_render(
    client: TestClient, services: Services, both_ways: list[tuple[bytes, bytes]]
) -> None:
    merchant = create_merchant(services.db)
    hotpot = create_deal(services.db, merchant, title='Hotpot <&> "spicy"', team_size=2)
    create_deal(services.db, merchant, title="Film night", vertical=Vertical.MOVIES)
    start_over_api(client, create_account(services), hotpot.id)
    client.cookies.clear()
    asks: list[tuple[str, dict[str, str]]] = [
        ("/", HTML),
        ("/", {**HTML, "accept-language": "zh-CN"}),
        ("/?vertical=movies", HTML),
        ("/?vertical=travel", HTML),  # an empty tab: no cards, no impression
        ("/?region=all", HTML),
        ("/?region=DE", {**HTML, "accept-language": "de-DE"}),
        ("/?notice=logged_out", HTML),
        ("/", {**HTML, "cookie": "tz=Asia/Shanghai"}),
        # The same zone as without the cookie, but no guessed zone for the page's script.
        ("/", {**HTML, "cookie": "tz=UTC"}),
        # The switcher's language with the browser's first: the words change, nothing else.
        ("/?vertical=movies", {**HTML, "cookie": "lang=zh_Hans"}),
    ]
    for path, headers in asks:
        for _ in range(2):  # the first renders the frame, the second fills the kept one
            client.cookies.clear()
            assert client.get(path, headers=headers).status_code == 200

    assert len(both_ways) == 2 * len(asks)
    for framed, full in both_ways:
        assert framed == full
    assert home_feed.FRAMES.rendered == len(asks)


def test_each_visitor_gets_their_own_token_and_it_works(
    client: TestClient, services: Services, both_ways: list[tuple[bytes, bytes]]
) -> None:
    create_deal(services.db, create_merchant(services.db), title="Hotpot")
    tokens = []
    for _ in range(2):
        client.cookies.clear()
        page = client.get("/", headers=HTML).text
        [token] = CSRF_INPUT.findall(page)
        tokens.append(token)
        switched = client.post(
            "/language",
            data={"csrf_token": token, "locale": "zh_Hans", "next": "/"},
            headers=HTML,
            follow_redirects=False,
        )
        assert switched.status_code == 303
    assert tokens[0] != tokens[1]
    assert home_feed.FRAMES.rendered == 1


def test_a_signed_in_viewer_is_never_answered_from_a_frame(
    client: TestClient, services: Services, both_ways: list[tuple[bytes, bytes]]
) -> None:
    create_deal(services.db, create_merchant(services.db), title="Hotpot")
    log_in(client, create_account(services))
    page = client.get("/", headers=HTML).text
    assert "/logout" in page
    assert both_ways == []
    assert home_feed.FRAMES.rendered == 0
