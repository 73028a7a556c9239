"""Abuse limits: request bodies, share visits, posters, password hashing, log-in delays and the
client address behind trusted proxies."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.accounts.models import User
from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import Settings
from pintuan.kit.http import TrustedProxies
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.shares import api as shares_api
from pintuan.shares.models import Share, ShareVisit
from pintuan.shares.posters import PosterContent, posters
from tests.conftest import _empty_all_tables, make_settings
from tests.factories import PASSWORD, create_account, create_deal, create_merchant

SIGNUP = {"email": "mei@example.com", "password": "a long enough secret", "display_name": "Mei"}


def users(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(User)))


@pytest.fixture
def limited(database_url: str) -> Iterator[tuple[TestClient, Services]]:
    settings = make_settings(
        database_url,
        login_attempts_per_account=3,
        login_delay_seconds=1,
        login_delay_max_seconds=8,
        share_visits_per_minute=5,
        poster_renders_per_minute=3,
        trusted_proxies=["10.0.0.0/8"],
    )
    services = build_services(settings)
    _empty_all_tables(services.db)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        yield client, services
    services.db.dispose()


# ---------------------------------------------------------------------------- request bodies


def test_a_two_megabyte_post_is_refused_at_once_and_nothing_is_written(
    client: TestClient, services: Services
) -> None:
    # Valid JSON that would otherwise be accepted: the account after 2 MB of white space.
    body = json.dumps(SIGNUP) + " " * 2_000_000

    started = time.perf_counter()
    response = client.post("/v1/signup", content=body, headers={"Content-Type": "application/json"})
    took = time.perf_counter() - started

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    assert users(services) == 0
    assert took < 1.0


def test_a_body_under_the_limit_is_read_as_before(client: TestClient, services: Services) -> None:
    body = json.dumps(SIGNUP) + " " * 500_000

    response = client.post("/v1/signup", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 201, response.text
    assert users(services) == 1


def test_webhooks_have_a_smaller_limit(client: TestClient) -> None:
    response = client.post(
        "/v1/webhooks/sandbox",
        content=b"{" + b" " * 100_000 + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_page_form_goes_through_the_same_limit(client: TestClient, services: Services) -> None:
    response = client.post(
        "/signup",
        content=b"email=a%40b.c&password=" + b"x" * 2_000_000,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )

    assert response.status_code == 413
    assert users(services) == 0


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(
    settings: Settings, services: Services
) -> None:
    """Driven as a server would drive it: no Content-Length, 64 KiB chunks of a 20 MB body."""
    app = create_app(settings, services)
    chunk = b"x" * 65536
    total_chunks = 20 * 1024 * 1024 // len(chunk)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > total_chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/signup",
        "raw_path": b"/v1/signup",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "app": app,
    }

    asyncio.run(app(scope, receive, send))

    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert json.loads(body)["code"] == "body_too_large"
    limit_chunks = services.settings.max_body_bytes // len(chunk)
    assert pulled <= limit_chunks + 1 < total_chunks
    assert users(services) == 0


# ---------------------------------------------------------------------------- client address


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "192.0.2.7"])

    assert proxies.client_of("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"
    assert proxies.client_of("10.1.2.3", ["198.51.100.1"]) == "198.51.100.1"
    # The client may write anything on the left; only the hops our proxies added count.
    assert proxies.client_of("10.1.2.3", ["1.1.1.1, 198.51.100.1, 192.0.2.7"]) == "198.51.100.1"
    assert proxies.client_of("10.1.2.3", ["not-an-address"]) == "10.1.2.3"
    assert proxies.client_of("10.1.2.3", []) == "10.1.2.3"
    assert TrustedProxies().client_of("10.1.2.3", ["198.51.100.1"]) == "10.1.2.3"


def test_behind_a_trusted_proxy_each_user_has_their_own_sign_up_budget(
    database_url: str,
) -> None:
    settings = make_settings(database_url, signups_per_address=2, trusted_proxies=["10.0.0.0/8"])
    services = build_services(settings)
    _empty_all_tables(services.db)
    try:
        with TestClient(create_app(settings, services), client=("10.0.0.5", 50000)) as client:
            codes = [
                client.post(
                    "/v1/signup",
                    json={**SIGNUP, "email": f"u{i}@example.com"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                ).status_code
                for i in range(4)
            ]
    finally:
        services.db.dispose()

    assert codes == [201, 201, 201, 201]


# ---------------------------------------------------------------------------- log-in delays


def log_in(client: TestClient, email: str, password: str) -> Any:
    return client.post("/v1/sessions", json={"email": email, "password": password})


def test_after_wrong_passwords_the_right_one_gets_in_once_the_delay_has_passed(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    account = create_account(services)

    wrong = [log_in(client, account.email, "wrong password").status_code for _ in range(10)]
    codes_so_far = wrong[:3]
    too_early = log_in(client, account.email, PASSWORD)
    clock.advance(timedelta(seconds=int(too_early.headers["retry-after"])))
    after_the_delay = log_in(client, account.email, PASSWORD)

    # Three failures are free, the fourth waits 1 s; those that came too early were refused
    # without being checked, so they never grew the delay.
    assert codes_so_far == [401, 401, 401]
    assert wrong[3:] == [429] * 7
    assert too_early.status_code == 429
    assert too_early.json()["code"] == "rate_limited"
    assert 1 <= int(too_early.headers["retry-after"]) <= 8
    assert after_the_delay.status_code == 201, after_the_delay.text


def test_each_failure_after_the_free_ones_doubles_the_delay_up_to_the_cap(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    account = create_account(services)
    waits = []
    for _ in range(3):
        log_in(client, account.email, "wrong password")
    for _ in range(5):
        early = log_in(client, account.email, "wrong password")
        waits.append(int(early.headers["retry-after"]))
        clock.advance(timedelta(seconds=waits[-1]))
        assert log_in(client, account.email, "wrong password").status_code == 401

    assert waits == [1, 2, 4, 8, 8]


def test_a_success_forgives_the_accounts_failures(limited: tuple[TestClient, Services]) -> None:
    client, services = limited
    account = create_account(services)
    for _ in range(3):
        log_in(client, account.email, "wrong password")
    clock.advance(timedelta(seconds=1))
    assert log_in(client, account.email, PASSWORD).status_code == 201

    again = [log_in(client, account.email, "wrong password").status_code for _ in range(3)]

    assert again == [401, 401, 401]


def test_concurrent_attempts_on_a_slowed_account_get_one_turn_per_delay(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    account = create_account(services)
    for _ in range(3):
        log_in(client, account.email, "wrong password")
    clock.advance(timedelta(seconds=1))
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        barrier.wait()
        codes.append(log_in(client, account.email, "wrong password").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == [401] + [429] * 5


# ---------------------------------------------------------------------------- password hashing


def test_hashes_beyond_the_limit_wait_briefly_and_then_get_busy(database_url: str) -> None:
    # Costly enough that two hashes outlast the others' wait.
    settings = make_settings(
        database_url,
        password_time_cost=3,
        password_memory_kib=65536,
        password_hash_concurrency=2,
        password_hash_wait_seconds=0.05,
    )
    services = build_services(settings)
    _empty_all_tables(services.db)
    codes: list[int] = []
    retry_after: list[str | None] = []
    try:
        with TestClient(create_app(settings, services)) as client:
            barrier = threading.Barrier(6)

            def sign_up(i: int) -> None:
                barrier.wait()
                answer = client.post("/v1/signup", json={**SIGNUP, "email": f"u{i}@example.com"})
                codes.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.json()["code"] == "busy"
                    retry_after.append(answer.headers.get("retry-after"))

            threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            created = users(services)
    finally:
        services.db.dispose()

    assert 1 <= codes.count(201) <= 4
    assert codes.count(201) + codes.count(503) == 6
    assert codes.count(503) >= 2
    assert retry_after == ["1"] * codes.count(503)
    assert created == codes.count(201)


# ---------------------------------------------------------------------------- share visits


def visit_rows(services: Services) -> int:
    return services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(ShareVisit)))


def a_team_share(client: TestClient, services: Services) -> tuple[str, str]:
    """A forming team and its leader's share: (team id, share code)."""
    deal = create_deal(services.db, create_merchant(services.db, currency="CNY"), team_size=3)
    leader = create_account(services)
    team_id = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()["team"]["id"]
    made = client.post(
        f"/v1/teams/{team_id}/shares", json={"channel": "wechat"}, headers=leader.headers
    ).json()
    return team_id, made["code"]


def test_one_client_opening_a_share_25_times_writes_at_most_the_limit_of_visits(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    team_id, code = a_team_share(client, services)

    answers = []
    for _ in range(25):
        client.cookies.clear()  # a new visitor each time, as a script would be
        answers.append(client.get(f"/s/{code}", follow_redirects=False))

    assert {a.status_code for a in answers} == {302}
    assert {a.headers["location"] for a in answers} == {f"/teams/{team_id}?via={code}"}
    assert visit_rows(services) == 5


def test_share_tokens_count_against_the_same_visit_limit(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    _, code = a_team_share(client, services)
    token = services.db.run_sync(lambda s: s.scalar(select(Share.token).where(Share.code == code)))

    answers = []
    for _ in range(8):
        client.cookies.clear()
        answers.append(client.get(f"/v1/share-tokens/{token}"))

    assert {a.status_code for a in answers} == {200}
    assert visit_rows(services) == 5


def test_other_clients_behind_a_trusted_proxy_still_have_their_visits_recorded(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    _, code = a_team_share(client, services)
    proxied = TestClient(client.app, client=("10.0.0.9", 40000))

    for i in range(8):
        proxied.cookies.clear()
        proxied.get(
            f"/s/{code}", headers={"X-Forwarded-For": f"198.51.100.{i}"}, follow_redirects=False
        )

    assert visit_rows(services) == 8


# ---------------------------------------------------------------------------- posters


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[PosterContent]:
    """Every poster actually drawn (the real drawing still runs)."""
    drawn: list[PosterContent] = []
    real = shares_api.render_poster

    def counting(content: PosterContent, font: Any = None) -> bytes:
        drawn.append(content)
        return real(content, font)

    monkeypatch.setattr(shares_api, "render_poster", counting)
    posters._entries.clear()
    return drawn


def test_poster_requests_with_changing_cookies_are_served_from_the_cache(
    limited: tuple[TestClient, Services], renders: list[PosterContent]
) -> None:
    client, services = limited
    team_id, _ = a_team_share(client, services)
    zones = ["Asia/Shanghai", "Europe/Paris", "America/Lima", "Africa/Lagos", "Asia/Tokyo"]

    answers = []
    for i, zone in enumerate(zones * 2):
        client.cookies.clear()
        client.cookies.update({"tz": zone, "pt_vid": f"{i:032x}", "pt_session": f"junk{i}"})
        answers.append(client.get(f"/v1/teams/{team_id}/poster.png"))

    assert {a.status_code for a in answers} == {200}
    assert len({a.headers["etag"] for a in answers}) == 1
    assert len(renders) == 1


def test_drawing_posters_is_limited_per_client(
    limited: tuple[TestClient, Services], renders: list[PosterContent]
) -> None:
    client, services = limited
    team_id, _ = a_team_share(client, services)
    deal_id = services.db.run_sync(lambda s: s.scalar(select(Share.deal_id)))
    paths = [
        f"/v1/teams/{team_id}/poster.png?lang=en",
        f"/v1/teams/{team_id}/poster.png?lang=zh-Hans",
        f"/v1/deals/{deal_id}/poster.png?lang=en",
        f"/v1/deals/{deal_id}/poster.png?lang=zh-Hans",
    ]

    answers = [client.get(path) for path in paths]
    again = client.get(paths[0])
    elsewhere = TestClient(client.app, client=("203.0.113.5", 40000)).get(paths[3])

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == "rate_limited"
    assert int(answers[3].headers["retry-after"]) >= 1
    assert again.status_code == 200  # already drawn: served from the cache, no budget spent
    assert elsewhere.status_code == 200
    assert len(renders) == 4
