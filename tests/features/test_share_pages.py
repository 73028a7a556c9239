"""Sharing on the shopper's pages, driven as a browser without JavaScript drives them: the share
box of team and deal pages, the home page's paste box for share tokens, and "My shares"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.domain.traffic import Channel
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.shares.models import Share, ShareVisit
from pintuan.web.shopper.sharing import DEFAULT_CHANNEL
from pintuan.worker import Worker
from tests.console_data import speak_chinese
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.sharing import PHONE, share, start
from tests.features.test_shopper_pages import (
    HTML,
    hidden,
    log_in,
    only_team_id,
    pay_on_sandbox,
    submit,
)


def share_form(
    client: TestClient, page_path: str, action: str, channel: str = "whatsapp"
) -> httpx.Response:
    """Open ``page_path``, choose ``channel`` in its share form and send it."""
    page = client.get(page_path, headers=HTML).text
    form = re.search(
        rf'<form class="share-form" method="post" action="{re.escape(action)}".*?</form>',
        page,
        re.S,
    )
    assert form, f"{page_path} has no share form for {action}"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))
    answer: httpx.Response = client.post(
        action, data={**fields, "channel": channel}, headers=HTML, follow_redirects=False
    )
    return answer


def all_shares(services: Services) -> list[Share]:
    return list(services.db.run_sync(lambda s: s.scalars(select(Share).order_by(Share.id)).all()))


def share_count(services: Services) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Share))))


def chosen_share_count(services: Services) -> int:
    """Shares made for a channel the shopper chose: all but the link on the default channel
    that a member's team page makes by itself."""
    return int(
        services.db.run_sync(
            lambda s: s.scalar(
                select(func.count()).select_from(Share).where(Share.channel != DEFAULT_CHANNEL)
            )
        )
    )


def field_value(page: str, field_id: str) -> str:
    found = re.search(rf'id="{field_id}"[^>]*value="([^"]*)"', page)
    assert found, f"the page has no {field_id} field"
    return found.group(1)


def a_team(services: Services, *, team_size: int = 3, **deal: Any) -> tuple[Account, str, str]:
    """A deal and a team its leader started: (leader, deal id, team id)."""
    created = create_deal(
        services.db, create_merchant(services.db), team_size=team_size, title="Hotpot", **deal
    )
    leader = create_account(services, name="Amy Lin")
    return leader, created.id, start(services, leader, created.id).team_id


def stat(page: str, name: str) -> int:
    found = re.search(rf"<dt>{re.escape(name)}</dt><dd>(\d+)</dd>", page)
    assert found, f"the page shows no {name}"
    return int(found.group(1))


# ---------------------------------------------------------------------------- the share box


def test_sharing_a_team_from_its_page_shows_my_own_link_the_message_and_the_poster(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)

    answer = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "whatsapp")

    [made] = [s for s in all_shares(services) if s.channel == "whatsapp"]
    assert (made.sharer_id, made.team_id, made.channel) == (leader.user_id, team_id, "whatsapp")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/teams/{team_id}?share={made.code}#share"
    page = client.get(answer.headers["location"], headers=HTML).text
    assert field_value(page, "share-url") == f"{services.settings.base_url}/s/{made.code}"
    message = re.search(r'<textarea id="share-text"[^>]*>(.*?)</textarea>', page, re.S)
    assert message
    assert f"¥{made.token}¥" in message.group(1)
    assert "$15.00 instead of $20.00" in message.group(1)
    assert "2 seats left" in message.group(1)
    assert f'href="/v1/teams/{team_id}/poster.png?lang=en"' in page
    assert '<option value="whatsapp" selected>WhatsApp</option>' in page
    assert 'href="/me/shares"' in page


def test_the_page_offers_every_channel_the_shares_api_takes(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)

    page = client.get(f"/teams/{team_id}", headers=HTML).text

    offered = re.findall(r'<option value="([^"]+)"', page)
    assert offered == [channel.value for channel in Channel]


def test_a_members_team_page_leads_with_a_link_of_their_own_made_once(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)

    page = client.get(f"/teams/{team_id}", headers=HTML).text
    again = client.get(f"/teams/{team_id}", headers=HTML).text

    [made] = all_shares(services)
    assert (made.sharer_id, made.team_id, made.channel) == (leader.user_id, team_id, "copy")
    link = f"{services.settings.base_url}/s/{made.code}"
    assert field_value(page, "share-url") == field_value(again, "share-url") == link
    # One tap: the share sheet's button and the copy fallback come before any channel to pick.
    share_first = page.index('id="share-heading"')
    assert share_first < page.index("data-native") < page.index('id="share-channel"')
    assert share_first < page.index("data-copy-fallback")
    assert share_first < page.index(f'href="/v1/teams/{team_id}/poster.png?lang=en"')
    assert share_first < page.index("<summary>Leave this team</summary>")
    assert "Get my link" not in page


def test_a_visitor_who_is_not_a_member_gets_no_link_made_for_them(
    client: TestClient, services: Services
) -> None:
    _, _, team_id = a_team(services)
    log_in(client, create_account(services, name="Ben Ode"))

    page = client.get(f"/teams/{team_id}", headers=HTML).text

    assert share_count(services) == 0
    assert "share-url" not in page  # no link until the visitor asks for one of their own


def test_a_share_form_sent_twice_makes_one_share(client: TestClient, services: Services) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)
    page = client.get(f"/teams/{team_id}", headers=HTML).text
    form = page.split('class="share-form"', 1)[1]
    fields = {
        "csrf_token": hidden(form, "csrf_token"),
        "form_key": hidden(form, "form_key"),
        "channel": "line",
    }

    first = client.post(
        f"/teams/{team_id}/shares", data=fields, headers=HTML, follow_redirects=False
    )
    again = client.post(
        f"/teams/{team_id}/shares", data=fields, headers=HTML, follow_redirects=False
    )

    assert first.headers["location"] == again.headers["location"]
    assert chosen_share_count(services) == 1


def test_choosing_the_qr_poster_reuses_the_qr_share_the_poster_already_made(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)
    assert client.get(f"/v1/teams/{team_id}/poster.png").status_code == 200
    [poster_share] = all_shares(services)

    answer = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "qr")
    again = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "qr")

    assert poster_share.channel == "qr"
    assert answer.headers["location"] == f"/teams/{team_id}?share={poster_share.code}#share"
    assert again.headers["location"] == answer.headers["location"]
    assert chosen_share_count(services) == 1


def test_a_share_form_without_its_csrf_token_is_refused_and_makes_nothing(
    client: TestClient, services: Services
) -> None:
    leader, deal_id, team_id = a_team(services)
    log_in(client, leader)
    client.get(f"/teams/{team_id}", headers=HTML)  # the browser has its CSRF cookie

    refused = [
        client.post(f"/teams/{team_id}/shares", data={"channel": "sms"}, headers=HTML),
        client.post(
            f"/deals/{deal_id}/shares", data={"channel": "sms", "csrf_token": "x"}, headers=HTML
        ),
    ]

    for answer in refused:
        assert answer.status_code == 403
        assert "This form has expired or did not come from this site" in answer.text
    assert chosen_share_count(services) == 0


def test_an_unknown_channel_is_refused_on_the_page_and_makes_nothing(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)

    answer = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "fax")

    assert answer.status_code == 422
    assert '<p class="form-error" role="alert">Some of the details are not valid.</p>' in (
        answer.text
    )
    assert chosen_share_count(services) == 0


def test_sharing_a_team_whose_window_closed_says_why_and_makes_nothing(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    log_in(client, leader)
    page = client.get(f"/teams/{team_id}", headers=HTML).text
    clock.advance(timedelta(hours=24, seconds=1))

    answer = client.post(
        f"/teams/{team_id}/shares",
        data={"csrf_token": hidden(page, "csrf_token"), "channel": "wechat"},
        headers=HTML,
    )

    assert answer.status_code == 409
    assert "This team has closed. Start a new one." in answer.text
    assert chosen_share_count(services) == 0


def test_a_signed_out_visitor_gets_the_plain_link_and_is_sent_to_log_in_to_share(
    client: TestClient, services: Services
) -> None:
    _, _, team_id = a_team(services)
    page = client.get(f"/teams/{team_id}", headers=HTML).text

    answer = client.post(
        f"/teams/{team_id}/shares",
        data={"csrf_token": hidden(page, "csrf_token"), "channel": "wechat"},
        headers=HTML,
        follow_redirects=False,
    )

    assert field_value(page, "share-url") == f"{services.settings.base_url}/teams/{team_id}"
    assert 'class="share-form"' not in page
    assert f'href="/login?next=/teams/{team_id}"' in page
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/login?next=/teams/{team_id}&action=")
    assert share_count(services) == 0


def test_another_shoppers_share_code_in_the_address_shows_nothing_of_it(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    amys = share(services, leader, team_id=team_id)
    log_in(client, create_account(services))

    page = client.get(f"/teams/{team_id}?share={amys.code}", headers=HTML).text

    assert f"/s/{amys.code}" not in page
    assert amys.token is not None
    assert amys.token not in page
    assert "share-url" not in page


def test_sharing_a_deal_from_its_page_links_to_the_deal_without_a_message(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), title="Tea set")
    shopper = create_account(services)
    log_in(client, shopper)

    answer = share_form(client, f"/deals/{deal.id}", f"/deals/{deal.id}/shares", "email")

    [made] = all_shares(services)
    assert (made.target, made.deal_id, made.channel, made.token) == ("deal", deal.id, "email", None)
    page = client.get(answer.headers["location"], headers=HTML).text
    assert field_value(page, "share-url") == f"{services.settings.base_url}/s/{made.code}"
    assert "share-text" not in page
    assert f'href="/v1/deals/{deal.id}/poster.png?lang=en"' in page
    opened = client.get(f"/s/{made.code}", follow_redirects=False)
    assert opened.headers["location"] == f"/deals/{deal.id}"


# ---------------------------------------------------------------------------- my shares


def test_my_shares_credits_a_friends_visit_join_payment_and_the_teams_success(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, title="Hotpot")
    amy, ben = create_account(services, name="Amy Lin"), create_account(services, name="Ben Ode")
    log_in(client, amy)
    _, started = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    pay_on_sandbox(client, started.headers["location"])  # type: ignore[attr-defined]
    team_id = only_team_id(services)
    shared = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "telegram")
    code = shared.headers["location"].split("share=")[1].split("#")[0]

    log_in(client, ben)
    client.get(f"/s/{code}", headers={"User-Agent": PHONE})
    _, joined = submit(client, f"/teams/{team_id}", f"/teams/{team_id}/join")
    pay_on_sandbox(client, joined.headers["location"])  # type: ignore[attr-defined]
    Worker(services).run_until_idle()
    bens = client.get("/me/shares", headers=HTML).text
    log_in(client, amy)
    page = client.get("/me/shares", headers=HTML).text

    assert "<h1>My shares</h1>" in page
    assert f"{services.settings.base_url}/s/{code}" in page
    assert "Telegram" in page
    assert f'href="/teams/{team_id}">Hotpot</a>' in page
    figures = {n: stat(page, n) for n in ("Visits", "Teams started", "Joins", "Paid")}
    assert figures == {"Visits": 1, "Teams started": 0, "Joins": 1, "Paid": 1}
    assert stat(page, "Teams completed") == 1
    assert "You have not shared anything yet." in bens


def test_deleting_a_share_takes_it_out_of_my_shares_and_keeps_its_link_working(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    first = share(services, leader, team_id=team_id, channel=Channel.SMS)
    second = share(services, leader, team_id=team_id, channel=Channel.LINE)
    log_in(client, leader)
    page = client.get("/me/shares", headers=HTML).text

    deleted = client.post(
        f"/me/shares/{first.id}/delete",
        data={"csrf_token": hidden(page, "csrf_token")},
        headers=HTML,
        follow_redirects=False,
    )
    after = client.get(deleted.headers["location"], headers=HTML).text

    assert page.count('class="order share-item"') == 2
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/me/shares?deleted=1"
    assert "The share is out of your history." in after
    assert first.code not in after
    assert second.code in after
    assert client.get(f"/s/{first.code}", follow_redirects=False).status_code == 302


def test_a_delete_without_its_csrf_token_or_of_someone_elses_share_changes_nothing(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    amys = share(services, leader, team_id=team_id)
    log_in(client, create_account(services))
    page = client.get("/me/shares", headers=HTML).text

    forged = client.post(f"/me/shares/{amys.id}/delete", headers=HTML)
    stranger = client.post(
        f"/me/shares/{amys.id}/delete",
        data={"csrf_token": hidden(page, "csrf_token")},
        headers=HTML,
    )

    assert forged.status_code == 403
    assert stranger.status_code == 404
    assert "This share is not in your history." in stranger.text
    [kept] = all_shares(services)
    assert (kept.sharer_id, kept.deleted_at) == (leader.user_id, None)


def test_my_shares_asks_a_visitor_to_log_in(client: TestClient) -> None:
    answer = client.get("/me/shares", headers=HTML, follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/me/shares"


def test_the_orders_page_links_to_my_shares(client: TestClient, services: Services) -> None:
    log_in(client, create_account(services))

    page = client.get("/orders", headers=HTML).text

    assert 'href="/me/shares"' in page


# ---------------------------------------------------------------------------- the paste box


def test_a_pasted_share_message_opens_its_team_and_credits_the_visit_to_the_share(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    made = share(services, leader, team_id=team_id)
    assert made.token is not None
    home = client.get("/", headers=HTML).text
    message = f"Hotpot: $15.00 instead of $20.00. Open Pintuan to join: ¥{made.token}¥"

    answer = client.get(
        "/", params={"q": message}, headers={**HTML, "User-Agent": PHONE}, follow_redirects=False
    )

    assert 'name="q"' in home
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/teams/{team_id}?via={made.code}"
    assert "pt_vid" in client.cookies  # the home page or the share gave the browser its id
    visits = services.db.run_sync(
        lambda s: s.execute(select(ShareVisit.share_id, ShareVisit.via)).all()
    )
    assert [tuple(v) for v in visits] == [(made.id, "token")]


def test_a_bare_token_opens_its_team_too(client: TestClient, services: Services) -> None:
    leader, _, team_id = a_team(services)
    made = share(services, leader, team_id=team_id)

    answer = client.get(
        f"/?q={quote(f'￥{made.token}￥')}",
        headers=HTML,
        follow_redirects=False,
    )

    assert answer.headers["location"] == f"/teams/{team_id}?via={made.code}"


def test_an_unknown_token_and_an_expired_one_say_so_on_the_home_page(
    client: TestClient, services: Services
) -> None:
    leader, deal_id, team_id = a_team(services)
    made = share(services, leader, team_id=team_id)

    unknown = client.get("/", params={"q": "¥Ab3kX9Ab3kX¥"}, headers=HTML)
    clock.advance(timedelta(hours=24, seconds=1))
    expired = client.get("/", params={"q": f"¥{made.token}¥"}, headers=HTML)

    assert unknown.status_code == 404
    assert "No team has this share token." in unknown.text
    assert 'aria-invalid="true"' in unknown.text
    assert expired.status_code == 410
    assert "This team&#39;s window has closed, so its share token no longer works." in expired.text
    assert f'<a href="/deals/{deal_id}">See the deal</a>' in expired.text
    assert share_count(services) == 1


def test_a_search_without_a_token_lists_the_deals_whose_title_matches(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    create_deal(services.db, merchant, title="Spicy hotpot")
    create_deal(services.db, merchant, title="Cinema night")

    found = client.get("/", params={"q": "hotpot"}, headers=HTML).text
    nothing = client.get("/", params={"q": "bicycle"}, headers=HTML).text

    assert "Spicy hotpot" in found
    assert "Cinema night" not in found
    assert "Deals matching “hotpot”" in found
    assert "No deal matches “bicycle”." in nothing


# ---------------------------------------------------------------------------- Chinese


def test_the_share_box_my_shares_and_the_paste_box_speak_chinese(
    client: TestClient, services: Services
) -> None:
    leader, _, team_id = a_team(services)
    speak_chinese(services, leader)
    log_in(client, leader)

    before = client.get(f"/teams/{team_id}", headers=HTML).text
    answer = share_form(client, f"/teams/{team_id}", f"/teams/{team_id}/shares", "wechat")
    after = client.get(answer.headers["location"], headers=HTML).text
    mine = client.get("/me/shares", headers=HTML).text
    unknown = client.get("/", params={"q": "¥Ab3kX9Ab3kX¥"}, headers=HTML).text

    assert "分享到哪里？" in before  # noqa: RUF001
    assert '<option value="wechat">微信</option>' in before
    assert "邀请好友，一起成团" in before  # noqa: RUF001
    assert "分享给好友" in before
    assert "你的专属链接" in after
    assert "【拼团】Hotpot" in after
    assert f'href="/v1/teams/{team_id}/poster.png?lang=zh-Hans"' in after
    assert "<h1>我的分享</h1>" in mine
    assert "<dt>开团</dt>" in mine
    assert "微信" in mine
    assert "没有找到这个口令对应的团" in unknown
