"""Shares through the API: making them, opening links, copy-paste tokens, history, invites."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.domain.traffic import ALPHABET, TOKEN_LENGTH
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.shares.models import Share, ShareVisit
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.sharing import PHONE, WHATSAPP_PREVIEW

ZH_PHONE = {"User-Agent": PHONE, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def start_team(client: TestClient, account: Account, deal_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


def share_team(client: TestClient, account: Account, team_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/v1/teams/{team_id}/shares",
        json={"channel": "wechat", **body},
        headers={**account.headers, "Accept-Language": "en-US"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def a_team(client: TestClient, services: Services, **deal: Any) -> tuple[Account, dict[str, Any]]:
    merchant = create_merchant(services.db, currency="CNY")
    options = {"team_size": 3, "list_price": 16800, "group_price": 9900, **deal}
    created = create_deal(services.db, merchant, **options)
    leader = create_account(services)
    return leader, start_team(client, leader, created.id)


def test_a_team_share_has_an_opaque_code_a_link_a_token_and_a_ready_message(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    team = started["team"]

    made = share_team(client, leader, team["id"])

    token = made["token"]
    assert re.fullmatch(rf"¥[{ALPHABET}]{{{TOKEN_LENGTH}}}¥", token)
    assert made["url"] == f"{services.settings.base_url}/s/{made['code']}"
    assert leader.user_id not in made["code"]
    assert leader.email not in made["url"]
    assert made["token_expires_at"] == team["expires_at"]
    assert token in made["text"]
    assert "CN¥99.00" in made["text"]
    assert "CN¥168.00" in made["text"]
    assert "2 seats left" in made["text"]
    assert (made["channel"], made["target"], made["team_id"]) == ("wechat", "team", team["id"])


def test_tokens_are_unique_and_drawn_from_64_bits(client: TestClient, services: Services) -> None:
    leader, started = a_team(client, services)

    tokens = {share_team(client, leader, started["team"]["id"])["token"] for _ in range(30)}

    assert len(tokens) == 30
    assert len(ALPHABET) ** TOKEN_LENGTH >= 2**64


def test_a_deal_share_links_to_the_deal_and_has_no_token(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    sharer = create_account(services)

    made = client.post(
        f"/v1/deals/{deal.id}/shares", json={"channel": "x"}, headers=sharer.headers
    ).json()
    opened = client.get(f"/s/{made['code']}", follow_redirects=False, headers={"User-Agent": PHONE})

    assert (made["target"], made["token"], made["text"]) == ("deal", None, None)
    assert opened.headers["location"] == f"/deals/{deal.id}"


def test_sharing_is_refused_for_unknown_channels_closed_teams_and_strangers(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    team_id = started["team"]["id"]
    draft = create_deal(services.db, create_merchant(services.db), live=False)

    channel = client.post(
        f"/v1/teams/{team_id}/shares", json={"channel": "fax"}, headers=leader.headers
    )
    anonymous = client.post(f"/v1/teams/{team_id}/shares", json={"channel": "sms"})
    unknown = client.post(
        "/v1/teams/team_nope/shares", json={"channel": "sms"}, headers=leader.headers
    )
    hidden = client.post(
        f"/v1/deals/{draft.id}/shares", json={"channel": "sms"}, headers=leader.headers
    )
    clock.advance(timedelta(days=2))
    closed = client.post(
        f"/v1/teams/{team_id}/shares", json={"channel": "sms"}, headers=leader.headers
    )

    assert (channel.status_code, channel.json()["errors"][0]["field"]) == (422, "channel")
    assert anonymous.status_code == 401
    assert (unknown.status_code, unknown.json()["code"]) == (404, "team_not_found")
    assert (hidden.status_code, hidden.json()["code"]) == (404, "deal_not_found")
    assert (closed.status_code, closed.json()["code"]) == (409, "team_closed")
    assert services.db.run_sync(lambda s: s.scalars(select(Share)).all()) == []


def test_a_re_share_names_the_share_it_came_from(client: TestClient, services: Services) -> None:
    leader, started = a_team(client, services)
    friend = create_account(services)
    first = share_team(client, leader, started["team"]["id"])

    second = share_team(client, friend, started["team"]["id"], **{"from": first["code"]})
    stray = client.post(
        f"/v1/teams/{started['team']['id']}/shares",
        json={"channel": "sms", "from": "zzzzzzzzzz"},
        headers=friend.headers,
    )

    assert second["from_code"] == first["code"]
    assert (stray.status_code, stray.json()["code"]) == (422, "share_not_found")


def test_opening_a_link_logs_one_visit_sets_the_visitor_cookie_and_redirects(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    made = share_team(client, leader, started["team"]["id"])

    opened = client.get(f"/s/{made['code']}", follow_redirects=False, headers=ZH_PHONE)
    reopened = client.get(f"/s/{made['code']}", follow_redirects=False, headers=ZH_PHONE)

    assert opened.status_code == 302
    assert opened.headers["location"] == f"/teams/{started['team']['id']}?via={made['code']}"
    assert opened.headers["cache-control"] == "no-store"
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith("pt_vid=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=31536000" in cookie
    assert "set-cookie" not in reopened.headers
    visits = services.db.run_sync(lambda s: s.scalars(select(ShareVisit)).all())
    assert [(v.country, v.ua_class, v.is_bot, v.is_self, v.via) for v in visits] == [
        ("CN", "mobile", False, False, "link")
    ]


def test_a_country_header_wins_over_the_language_and_bots_get_no_cookie(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    made = share_team(client, leader, started["team"]["id"])

    client.get(
        f"/s/{made['code']}",
        follow_redirects=False,
        headers={**ZH_PHONE, "CF-IPCountry": "sg"},
    )
    client.cookies.clear()
    preview = client.get(
        f"/s/{made['code']}", follow_redirects=False, headers={"User-Agent": WHATSAPP_PREVIEW}
    )

    visits = services.db.run_sync(
        lambda s: s.execute(select(ShareVisit.country, ShareVisit.is_bot)).all()
    )
    assert sorted(tuple(v) for v in visits) == [("SG", False), ("ZZ", True)]
    assert preview.status_code == 302
    assert "set-cookie" not in preview.headers


def test_an_unknown_share_link_is_a_problem_not_a_redirect(client: TestClient) -> None:
    response = client.get("/s/Zzzzzzzzzz", follow_redirects=False)

    assert response.status_code == 404
    assert response.json()["code"] == "share_not_found"


def test_a_token_resolves_bare_framed_full_width_and_inside_a_pasted_message(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    made = share_team(client, leader, started["team"]["id"])
    bare = made["token"].strip("¥")

    answers = [
        client.get(f"/v1/share-tokens/{quote(token)}")
        for token in (bare, made["token"], f"￥{bare}￥")
    ]
    pasted = client.get("/v1/share-tokens", params={"text": "Look!\n" + made["text"]})

    for answer in [*answers, pasted]:
        assert answer.status_code == 200, answer.text
        assert answer.json()["team_id"] == started["team"]["id"]
        assert answer.json()["seats_left"] == 2
        assert answer.json()["share_code"] == made["code"]
    visits = services.db.run_sync(lambda s: s.scalars(select(ShareVisit.via)).all())
    assert visits == ["token"]  # the same visitor, within half an hour: one visit


def test_an_unknown_token_is_404_and_an_expired_one_410(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    made = share_team(client, leader, started["team"]["id"])

    unknown = client.get("/v1/share-tokens/¥Ab3kX9Ab3kX¥")
    no_token = client.get("/v1/share-tokens", params={"text": "no token in here"})
    clock.advance(timedelta(hours=24, seconds=1))
    expired = client.get(f"/v1/share-tokens/{made['token'].strip('¥')}")

    assert (unknown.status_code, unknown.json()["code"]) == (404, "share_token_not_found")
    assert unknown.headers["content-type"] == "application/problem+json"
    assert no_token.status_code == 404
    assert (expired.status_code, expired.json()["code"]) == (410, "share_token_expired")
    assert expired.json()["deal_id"] == started["team"]["deal_id"]


def test_a_token_of_a_team_that_filled_is_expired(client: TestClient, services: Services) -> None:
    leader, started = a_team(client, services, team_size=2, group_price=1500, list_price=2000)
    made = share_team(client, leader, started["team"]["id"])
    friend = create_account(services)
    seats = [started["seat"]["id"]]
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
    seats.append(joined.json()["seat"]["id"])
    for account, seat in zip((leader, friend), seats, strict=True):
        payment = client.post(
            f"/v1/seats/{seat}/payments", json={"provider": "sandbox"}, headers=account.headers
        ).json()
        client.post(f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=account.headers)

    answer = client.get("/v1/share-tokens", params={"text": made["text"]})

    assert (answer.status_code, answer.json()["code"]) == (410, "share_token_expired")


def test_my_share_history_lists_my_shares_only_and_a_delete_removes_one(
    client: TestClient, services: Services
) -> None:
    leader, started = a_team(client, services)
    other = create_account(services)
    first = share_team(client, leader, started["team"]["id"])
    second = share_team(client, leader, started["team"]["id"], channel="line")
    share_team(client, other, started["team"]["id"])

    listed = client.get("/v1/me/shares", headers=leader.headers).json()
    stranger = client.delete(f"/v1/me/shares/{first['id']}", headers=other.headers)
    deleted = client.delete(f"/v1/me/shares/{first['id']}", headers=leader.headers)
    again = client.delete(f"/v1/me/shares/{first['id']}", headers=leader.headers)
    after = client.get("/v1/me/shares", headers=leader.headers).json()
    link = client.get(f"/s/{first['code']}", follow_redirects=False, headers={"User-Agent": PHONE})

    assert [s["id"] for s in listed["data"]] == [second["id"], first["id"]]
    assert (stranger.status_code, stranger.json()["code"]) == (404, "share_not_found")
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert [s["id"] for s in after["data"]] == [second["id"]]
    kept = services.db.run_sync(lambda s: s.get(Share, first["id"]))
    assert (kept.sharer_id, kept.deleted_at is not None) == (None, True)
    assert link.status_code == 302  # friends who already have the link can still use it


def test_the_invite_tree_shows_names_to_the_inviter_and_everything_to_operators(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=5)
    alice, bob, carol, operator = (
        *(create_account(services, name=n) for n in ("Alice", "Bob", "Carol")),
        create_account(services, role=Role.OPERATOR),
    )
    team = start_team(client, alice, deal.id)["team"]["id"]
    made = share_team(client, alice, team)
    client.get(f"/s/{made['code']}", follow_redirects=False, headers={"User-Agent": PHONE})
    client.post(f"/v1/teams/{team}/seats", headers=bob.headers)
    bobs = share_team(client, bob, team)
    client.cookies.clear()
    client.get(f"/s/{bobs['code']}", follow_redirects=False, headers={"User-Agent": PHONE})
    client.post(f"/v1/teams/{team}/seats", headers=carol.headers)
    Worker(services).run_until_idle()

    mine = client.get("/v1/me/invites", headers=alice.headers).json()
    tree = client.get(
        "/v1/ops/invite-tree", params={"root": alice.user_id}, headers=operator.headers
    )
    refused = client.get(
        "/v1/ops/invite-tree", params={"root": alice.user_id}, headers=alice.headers
    )

    assert [d["display_name"] for d in mine["direct"]] == ["Bob"]
    assert mine["by_depth"] == [{"depth": 1, "people": 1}, {"depth": 2, "people": 1}]
    assert [(n["display_name"], n["depth"], n["inviter_id"]) for n in tree.json()["data"]] == [
        ("Bob", 1, alice.user_id),
        ("Carol", 2, bob.user_id),
    ]
    assert refused.status_code == 403


def test_team_and_deal_pages_unfold_into_rich_previews_in_chat_apps(
    client: TestClient, services: Services
) -> None:
    _, started = a_team(client, services)
    team_id, deal_id = started["team"]["id"], started["team"]["deal_id"]
    preview = {"User-Agent": WHATSAPP_PREVIEW, "Accept": "text/html"}

    team_page = client.get(f"/teams/{team_id}", headers=preview).text
    deal_page = client.get(f"/deals/{deal_id}", headers=preview).text

    def tag(html: str, key: str) -> str:
        found = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)">', html)
        assert found, key
        return found.group(1)

    assert tag(team_page, "og:url") == f"{services.settings.base_url}/teams/{team_id}"
    assert tag(team_page, "og:image").endswith(f"/v1/teams/{team_id}/poster.png")
    assert tag(team_page, "og:description") == "CN¥99.00 instead of CN¥168.00 when the team fills"
    assert tag(team_page, "twitter:card") == "summary_large_image"
    assert tag(deal_page, "og:title") == "Dumplings for three"
    assert tag(deal_page, "og:image").endswith(f"/v1/deals/{deal_id}/poster.png")
    assert tag(deal_page, "twitter:description").endswith("in teams of 3")
    poster = client.get(tag(team_page, "og:image").replace("http://testserver", ""))
    assert poster.headers["content-type"] == "image/png"
