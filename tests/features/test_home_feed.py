"""The home page is the aggregated feed: mixed cards of deals and almost full teams, tabs that
filter it, both languages, and card links that log the click against the slate."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from pintuan.domain.deals import Vertical
from pintuan.services import Services
from tests.console_data import join_over_api, log_in, start_over_api
from tests.factories import create_account, create_deal, create_merchant
from tests.features.feeding import credit, flush, impressions, placements, rewards

HTML = {"accept": "text/html"}
CARD_LINK = re.compile(r'href="(/feed/go/(imp_[0-9A-Z]{26})/(\d+)/((?:deal|team)_[0-9A-Z]{26}))"')


def test_the_home_page_mixes_deals_and_teams_a_seat_from_full(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    hotpot = create_deal(services.db, merchant, title="Hotpot", team_size=2)
    film = create_deal(services.db, merchant, title="Film night", vertical=Vertical.MOVIES)
    team = start_over_api(client, create_account(services), hotpot.id)

    page = client.get("/", headers=HTML).text
    chinese = client.get("/", headers={**HTML, "accept-language": "zh-CN"}).text
    movies = client.get("/?vertical=movies", headers=HTML).text

    links = {found[3]: found for found in CARD_LINK.findall(page)}
    assert set(links) == {hotpot.id, film.id, team.team_id}
    assert len({found[1] for found in links.values()}) == 1  # one slate
    assert "Join this team" in page
    assert "1 seat left" in page
    assert "加入这个团" in chinese
    assert {found[3] for found in CARD_LINK.findall(movies)} == {film.id}
    assert 'href="/?vertical=movies" aria-current="page"' in movies


def test_the_home_page_slate_is_logged_and_a_click_on_a_card_credited(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    create_deal(services.db, merchant, title="Hotpot")
    create_deal(services.db, merchant, title="Noodles")

    page = client.get("/", headers=HTML).text
    link, impression_id, position, item_id = CARD_LINK.findall(page)[1]
    opened = client.get(link, headers=HTML, follow_redirects=False)
    flush(client)

    assert opened.headers["location"] == f"/deals/{item_id}"
    [logged] = impressions(services)
    assert logged.id == impression_id
    assert logged.viewer.startswith("v_")  # the visitor cookie's pseudonym, never the cookie
    assert client.cookies.get("pt_vid") not in logged.viewer
    assert [p.item_id for p in placements(services, impression_id)][int(position)] == item_id
    assert rewards(services) == [(impression_id, int(position), "click")]


def test_a_visitor_who_signs_in_and_joins_is_credited_to_the_slate_they_saw(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    trio = create_deal(services.db, merchant, title="For three", team_size=3)
    team = start_over_api(client, create_account(services), trio.id)
    join_over_api(client, create_account(services), team.team_id)
    shopper = create_account(services)

    page = client.get("/", headers=HTML).text  # signed out: a visitor
    flush(client)
    log_in(client, shopper)
    client.get("/orders", headers=HTML)  # a signed-in request links the visitor to the account
    join_over_api(client, shopper, team.team_id)
    credit(services)

    slot = next(f for f in CARD_LINK.findall(page) if f[3] == team.team_id)
    assert rewards(services) == [(slot[1], int(slot[2]), "join")]


def test_more_continues_the_feed_without_repeating_it(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    made = {create_deal(services.db, merchant, title=f"Deal {n}").id for n in range(30)}

    first = client.get("/", headers=HTML).text
    more = re.search(r'href="(/\?more=[^"]+)"', first)
    assert more is not None
    second = client.get(more.group(1).replace("&amp;", "&"), headers=HTML).text

    shown_first = {f[3] for f in CARD_LINK.findall(first)}
    shown_second = {f[3] for f in CARD_LINK.findall(second)}
    assert len(shown_first) == 20
    assert shown_second == made - shown_first


def test_more_keeps_the_vertical_the_page_was_filtered_to(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    made = {create_deal(services.db, merchant, title=f"Deal {n}").id for n in range(25)}
    vertical = create_deal(services.db, merchant, title="Deal x").vertical

    first = client.get(f"/?vertical={vertical}", headers=HTML).text
    more = re.search(r'href="(/\?vertical=(\w+)&amp;more=([\w-]+))"', first)
    assert more is not None
    assert more.group(2) == vertical
    second = client.get(more.group(1).replace("&amp;", "&"), headers=HTML).text
    shown = {f[3] for f in CARD_LINK.findall(first)} | {f[3] for f in CARD_LINK.findall(second)}
    assert made <= shown
