"""Kept anonymous answers served before routing (``pintuan.kit.frontcache``): the same answer
the handler gives, only to requests without credentials, never across languages, queries or
hosts, never to a write, as fresh as the read cache, and logged and counted under its route."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from prometheus_client import REGISTRY

from pintuan.config import Settings
from pintuan.events.watch import POLL_SECONDS
from pintuan.kit.frontcache import FrontIndex
from pintuan.services import Services
from pintuan.web.kit.csrf import CSRF_COOKIE
from tests.conftest import make_settings
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_read_cache import _join, _seats_left, _start_team, _within_bound
from tests.features.test_shopper_pages import HTML, log_in

# What differs between two visitors' copies of one kept page.
_PER_VISITOR = re.compile(r'(name="(?:csrf_token|form_key)" value=")[^"]+"')
_PER_REQUEST_HEADERS = {"x-request-id", "etag", "set-cookie", "date"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, read_cache_seconds=1.0)


def _front(client: TestClient) -> FrontIndex:
    front = client.app.state.front  # type: ignore[attr-defined]
    assert isinstance(front, FrontIndex)
    return front


def _kept(services: Services) -> None:
    """Long enough for a slow machine to make its requests; freshness has its own tests."""
    services.reads.max_age = 600


def _headers(answer: Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k not in _PER_REQUEST_HEADERS}


def _language(page: Response) -> str:
    found = re.search(r'<html lang="([^"]+)"', page.text)
    assert found, "the page names no language"
    return found.group(1)


def _requests_counted(route: str, status: int = 200) -> float:
    labels = {"method": "GET", "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("pintuan_http_requests_total", labels) or 0.0


def test_a_kept_answer_is_served_before_routing_and_is_the_handlers_own(
    client: TestClient, services: Services
) -> None:
    deal_id, team_id = _start_team(client, services)
    _kept(services)
    front = _front(client)
    # This browser's CSRF nonce first, so that neither answer below is the one that sets it.
    client.get("/login", headers=HTML)
    assert CSRF_COOKIE in client.cookies
    for path, headers in (
        ("/v1/deals?limit=20&sort=newest", {}),
        (f"/v1/deals/{deal_id}", {}),
        (f"/deals/{deal_id}", HTML),
        (f"/teams/{team_id}", HTML),
    ):
        by_handler = client.get(path, headers=headers)
        assert by_handler.status_code == 200, by_handler.text
        served = front.served
        by_front = client.get(path, headers=headers)
        assert front.served == served + 1, path
        assert by_front.status_code == 200
        assert _headers(by_front) == _headers(by_handler), path
        if headers is HTML:
            assert _PER_VISITOR.sub(r"\1", by_front.text) == _PER_VISITOR.sub(
                r"\1", by_handler.text
            )
        else:
            assert by_front.content == by_handler.content
            assert by_front.headers["etag"] == by_handler.headers["etag"]
        # The client holding it hears 304, from the front too.
        again = client.get(path, headers={**headers, "if-none-match": by_front.headers["etag"]})
        assert again.status_code == 304
        assert front.served == served + 2


def test_the_front_answer_is_logged_and_counted_under_its_route(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    _kept(services)
    client.get(f"/teams/{team_id}", headers=HTML)
    counted = _requests_counted("/teams/{team_id}")
    served = _front(client).served
    client.get(f"/teams/{team_id}", headers=HTML)
    assert _front(client).served == served + 1
    assert _requests_counted("/teams/{team_id}") == counted + 1


def test_callers_with_credentials_are_never_answered_from_the_front(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    _kept(services)
    front = _front(client)
    client.get("/v1/deals?limit=5")
    client.get(f"/teams/{team_id}", headers=HTML)
    served = front.served
    # A token nobody issued is refused, though the same path is kept for visitors.
    forged = client.get("/v1/deals?limit=5", headers={"authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    mine = client.get("/v1/deals?limit=5", headers=create_account(services).headers)
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "no-store"
    member = create_account(services, name="Mei Member")
    _join(client, member, team_id)
    log_in(client, member)
    page = client.get(f"/teams/{team_id}", headers=HTML)
    assert "Log out" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert front.served == served


def test_languages_queries_and_hosts_are_never_crossed(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    for n in range(3):
        create_deal(services.db, merchant, title=f"Deal {n}")
    deal_id, _ = _start_team(client, services)
    _kept(services)
    for _ in range(2):
        english = client.get(f"/deals/{deal_id}", headers={**HTML, "accept-language": "en"})
        chinese = client.get(f"/deals/{deal_id}", headers={**HTML, "accept-language": "zh-CN"})
        assert _language(english) == "en"
        assert _language(chinese) == "zh-Hans"
        one = client.get("/v1/deals?limit=1").json()["data"]
        two = client.get("/v1/deals?limit=2").json()["data"]
        assert (len(one), len(two)) == (1, 2)
        here = client.get(f"/deals/{deal_id}", headers=HTML)
        there = client.get(f"/deals/{deal_id}", headers={**HTML, "host": "shop.example"})
        assert "http://testserver/deals/" in here.text
        assert "http://shop.example/deals/" in there.text
        assert "shop.example" not in here.text
    for _ in range(2):
        client.cookies.set("lang", "zh-Hans")
        assert _language(client.get(f"/deals/{deal_id}", headers=HTML)) == "zh-Hans"
        client.cookies.set("lang", "en")
        assert _language(client.get(f"/deals/{deal_id}", headers=HTML)) == "en"


def test_refusals_and_writes_never_come_from_the_front(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services, team_size=2)
    _kept(services)
    front = _front(client)
    client.get(f"/teams/{team_id}", headers=HTML)
    assert _seats_left(client.get(f"/teams/{team_id}", headers=HTML).text) == 1
    served = front.served
    # Bad input is refused every time: a refusal is never kept.
    for _ in range(2):
        assert client.get("/v1/deals?limit=nope").status_code == 422
    late = client.post(f"/v1/teams/{team_id}/seats", headers=create_account(services).headers)
    assert late.status_code == 201
    assert client.head(f"/teams/{team_id}", headers=HTML).status_code in (200, 405)
    assert front.served == served


def test_a_front_answer_follows_a_join_within_a_second(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    # Kept until the outbox says otherwise: the join below must reach the page through the
    # outbox's watcher, not through the entry's age. And the watcher first sees the start
    # itself: on a busy machine its look at the outbox could come between the two reads below
    # and drop the entry the first one made.
    _kept(services)
    time.sleep(2 * POLL_SECONDS)
    front = _front(client)
    client.get(f"/teams/{team_id}", headers=HTML)
    served = front.served
    before = client.get(f"/teams/{team_id}", headers=HTML)
    assert front.served == served + 1
    assert _seats_left(before.text) == 3
    _join(client, create_account(services), team_id)
    _within_bound(
        lambda: client.get(f"/teams/{team_id}", headers=HTML),
        lambda page: _seats_left(page.text) == 2,
    )


def test_the_index_is_bounded_and_keys_only_anonymous_gets() -> None:
    index = FrontIndex(credential_cookies=("session",), vary_cookies=("lang",), max_entries=2)

    def scope(method: str = "GET", **headers: str) -> dict[str, object]:
        return {
            "type": "http",
            "method": method,
            "path": "/deals/1",
            "query_string": b"",
            "scheme": "http",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }

    assert index.key_of(scope("POST")) is None
    assert index.key_of(scope(authorization="Bearer x")) is None
    assert index.key_of(scope(cookie="a=1; session=s")) is None
    assert index.key_of(scope(cookie="lang=en")) != index.key_of(scope(cookie="lang=zh-Hans"))
    assert index.key_of(scope(cookie="lang=en")) == index.key_of(scope(cookie="lang=en; csrf=z"))
    assert index.key_of(scope()) == index.key_of(scope(cookie="csrf=z"))
    assert index.key_of({"type": "lifespan"}) is None
