"""Reads that never queue, and never lie for long: visitors' deal and team pages and the
anonymous deal API are kept a second at most, dropped sooner when the outbox names their team or
deal, carry ETags, and never show one viewer another's page."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from pintuan.config import Settings
from pintuan.events.watch import POLL_SECONDS
from pintuan.services import Services
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_shopper_pages import HTML, log_in

# The promise: a change shows within a second.
STALENESS_BOUND = 1.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The product's default: anonymous reads kept a second at most."""
    return make_settings(database_url, read_cache_seconds=1.0)


def _seats_left(page: str) -> int:
    found = re.search(r"(\d+) seats? left", page)
    assert found, "the team page shows no seats left"
    return int(found.group(1))


def _within_bound(read: Callable[[], Response], changed: Callable[[Response], bool]) -> float:
    """Reads until ``changed`` holds, right after the change; how long after it the first
    fresh read was sent. A read sent more than the bound after the change must be fresh (on a
    busy machine a request may take a while itself, so the clock is read when it is sent)."""
    changed_at = time.monotonic()
    while True:
        sent = time.monotonic() - changed_at
        answer = read()
        if changed(answer):
            return sent
        assert sent <= STALENESS_BOUND, f"a read sent {sent:.2f} s after the change was stale"
        time.sleep(0.02)


def _start_team(client: TestClient, services: Services, team_size: int = 4) -> tuple[str, str]:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=team_size, stock=8)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers)
    assert started.status_code == 201, started.text
    # Let the outbox watcher read the start, so that it does not drop the pages kept next.
    time.sleep(2 * POLL_SECONDS)
    return deal.id, str(started.json()["team"]["id"])


def _join(client: TestClient, shopper: Account, team_id: str) -> None:
    joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
    assert joined.status_code == 201, joined.text


def test_a_visitors_team_page_is_shared_and_revalidated_with_an_etag(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    # Kept as long as it takes this test (a busy machine may take a second to render a page);
    # freshness has its own tests below.
    services.reads.max_age = 600
    first = client.get(f"/teams/{team_id}", headers=HTML)
    assert first.status_code == 200
    # The first answer sets the CSRF nonce cookie: it must not be stored anywhere.
    assert "set-cookie" in first.headers
    assert first.headers["cache-control"] == "no-store"
    hits = services.reads.hits
    second = client.get(f"/teams/{team_id}", headers=HTML)
    assert services.reads.hits == hits + 1
    assert second.headers["cache-control"] == "private, no-cache"
    assert "Cookie" in second.headers["vary"]
    etag = second.headers["etag"]
    again = client.get(f"/teams/{team_id}", headers={**HTML, "if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert not again.content
    # The kept page still carries this browser's token and a fresh key per form.
    token = re.findall(r'name="csrf_token" value="([^"]+)"', second.text)
    assert token
    assert len(set(token)) == 1
    keys_now = re.findall(r'name="form_key" value="([^"]+)"', second.text)
    keys_next = re.findall(
        r'name="form_key" value="([^"]+)"', client.get(f"/teams/{team_id}", headers=HTML).text
    )
    assert keys_now
    assert set(keys_now).isdisjoint(keys_next)


def test_two_visitors_share_the_page_but_never_each_others_token(
    client: TestClient, services: Services
) -> None:
    deal_id, _ = _start_team(client, services)
    services.reads.max_age = 600
    a = client.get(f"/deals/{deal_id}", headers=HTML)
    other = TestClient(client.app, raise_server_exceptions=False)
    b = other.get(f"/deals/{deal_id}", headers=HTML)
    token_a = re.search(r'name="csrf_token" value="([^"]+)"', a.text)
    token_b = re.search(r'name="csrf_token" value="([^"]+)"', b.text)
    assert token_a
    assert token_b
    assert token_a.group(1) != token_b.group(1)
    assert services.reads.hits >= 1
    # And the token each got works for their own form: the page's join goes through the login.
    form = re.search(r'<form method="post" action="(/deals/[^"]+/teams)".*?</form>', b.text, re.S)
    assert form
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))
    posted = other.post(form.group(1), data=fields, headers=HTML, follow_redirects=False)
    assert posted.status_code == 303
    assert "/login" in posted.headers["location"]


def test_a_signed_in_viewer_never_gets_or_leaves_a_shared_page(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    member = create_account(services, name="Mei Member")
    _join(client, member, team_id)
    client.get(f"/teams/{team_id}", headers=HTML)  # a visitor's page, now kept
    log_in(client, member)
    mine = client.get(f"/teams/{team_id}", headers=HTML)
    assert mine.headers["cache-control"] == "no-store"
    assert "etag" not in mine.headers
    assert "Log out" in mine.text
    assert "/seats/" in mine.text
    client.cookies.clear()
    visitor = client.get(f"/teams/{team_id}", headers=HTML)
    assert "Log out" not in visitor.text
    assert "/seats/" not in visitor.text


def test_seats_left_and_the_etag_follow_a_join_within_a_second(
    client: TestClient, services: Services
) -> None:
    _, team_id = _start_team(client, services)
    client.get(f"/teams/{team_id}", headers=HTML)
    before = client.get(f"/teams/{team_id}", headers=HTML)
    assert _seats_left(before.text) == 3
    _join(client, create_account(services), team_id)
    _within_bound(
        lambda: client.get(f"/teams/{team_id}", headers=HTML),
        lambda page: _seats_left(page.text) == 2 and page.headers["etag"] != before.headers["etag"],
    )


def test_the_outbox_drops_a_kept_page_long_before_its_age_would(
    client: TestClient, services: Services
) -> None:
    """With the age limit out of the way, only the outbox watcher can make the join show."""
    deal_id, team_id = _start_team(client, services)
    services.reads.max_age = 600
    client.get(f"/deals/{deal_id}", headers=HTML)
    kept = client.get(f"/deals/{deal_id}", headers=HTML).text
    assert "3 seats left" in kept
    _join(client, create_account(services), team_id)
    _within_bound(
        lambda: client.get(f"/deals/{deal_id}", headers=HTML),
        lambda page: "2 seats left" in page.text,
    )


def test_a_change_that_writes_no_event_shows_within_a_second(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, merchant=merchant)
    deal = create_deal(services.db, merchant, title="Dumplings for three")
    assert "Dumplings for three" in client.get(f"/deals/{deal.id}", headers=HTML).text
    assert client.get(f"/v1/deals/{deal.id}").json()["title"] == "Dumplings for three"
    changed = client.patch(
        f"/v1/deals/{deal.id}", json={"title": "Noodles for three"}, headers=staff.headers
    )
    assert changed.status_code == 200, changed.text
    _within_bound(
        lambda: client.get(f"/deals/{deal.id}", headers=HTML),
        lambda page: "Noodles for three" in page.text,
    )
    _within_bound(
        lambda: client.get(f"/v1/deals/{deal.id}"),
        lambda answer: answer.json()["title"] == "Noodles for three",
    )


def test_the_anonymous_deal_api_is_kept_with_an_etag_and_follows_stock(
    client: TestClient, services: Services
) -> None:
    deal_id, team_id = _start_team(client, services)
    listed = client.get("/v1/deals", params={"limit": 20})
    one = client.get(f"/v1/deals/{deal_id}")
    for answer in (listed, one):
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-cache"
        assert "Authorization" in answer.headers["vary"]
        again = client.get(str(answer.url), headers={"if-none-match": answer.headers["etag"]})
        assert again.status_code == 304
    assert one.json()["committed"] == 1
    _join(client, create_account(services), team_id)
    _within_bound(
        lambda: client.get(f"/v1/deals/{deal_id}"),
        lambda answer: (
            answer.json()["committed"] == 2 and answer.headers["etag"] != one.headers["etag"]
        ),
    )
    _within_bound(
        lambda: client.get("/v1/deals", params={"limit": 20}),
        lambda answer: answer.json()["data"][0]["committed"] == 2,
    )


def test_callers_with_a_token_are_answered_for_themselves(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, merchant=merchant)
    draft = create_deal(services.db, merchant, live=False)
    assert client.get(f"/v1/deals/{draft.id}").status_code == 404  # a visitor sees no draft
    mine = client.get(f"/v1/deals/{draft.id}", headers=staff.headers)
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "no-store"
    assert "etag" not in mine.headers
    assert client.get(f"/v1/deals/{draft.id}").status_code == 404


def test_a_kept_page_never_answers_a_write(client: TestClient, services: Services) -> None:
    _, team_id = _start_team(client, services, team_size=2)
    client.get(f"/teams/{team_id}", headers=HTML)
    assert _seats_left(client.get(f"/teams/{team_id}", headers=HTML).text) == 1
    _join(client, create_account(services), team_id)
    late = client.post(f"/v1/teams/{team_id}/seats", headers=create_account(services).headers)
    assert late.status_code == 409
    assert late.json()["code"] == "team_full"
