"""The home page fitted to the viewer: their market first (others one choice away), a sort,
true "N teams forming" counts, the strip of teams forming now, and reads that do not grow with
the number of deals shown."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from tests.console_data import join_over_api, start_over_api
from tests.factories import create_account, create_deal, create_merchant
from tests.media_pictures import picture
from tests.plans import statements_sent

HTML = {"accept": "text/html"}


def card_titles(page: str) -> list[str]:
    return re.findall(r'<h3 class="card-title">([^<]*)</h3>', page)


def markets(services: Services) -> dict[str, Merchant]:
    return {
        "CN": create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai"),
        "DE": create_merchant(services.db, currency="EUR", country="DE", time_zone="Europe/Berlin"),
        "ID": create_merchant(services.db, currency="IDR", country="ID", time_zone="Asia/Jakarta"),
    }


def test_a_viewer_sees_their_markets_deals_first_and_the_others_behind_a_filter(
    client: TestClient, services: Services
) -> None:
    shops = markets(services)
    create_deal(services.db, shops["CN"], title="Dumplings", list_price=9900, group_price=6900)
    create_deal(services.db, shops["DE"], title="Cinema", list_price=2400, group_price=1590)
    create_deal(services.db, shops["ID"], title="Batik", list_price=35000000, group_price=22500000)

    berlin = client.get("/", headers={**HTML, "cf-ipcountry": "DE"}).text
    client.cookies.set("tz", "Asia/Shanghai")
    shanghai_zone = client.get("/", headers=HTML).text
    client.cookies.clear()
    everything = client.get("/?region=all", headers={**HTML, "cf-ipcountry": "DE"}).text
    chosen = client.get("/?region=ID", headers={**HTML, "cf-ipcountry": "DE"}).text
    nowhere = client.get("/", headers=HTML).text

    assert card_titles(berlin) == ["Cinema"]
    assert "See all regions" in berlin
    assert card_titles(shanghai_zone) == ["Dumplings"]
    assert sorted(card_titles(everything)) == ["Batik", "Cinema", "Dumplings"]
    assert card_titles(chosen) == ["Batik"]
    assert sorted(card_titles(nowhere)) == ["Batik", "Cinema", "Dumplings"]
    assert '<option value="DE" selected>Germany · near you</option>' in berlin


def test_a_market_with_no_deals_shows_every_region(client: TestClient, services: Services) -> None:
    shops = markets(services)
    create_deal(services.db, shops["CN"], title="Dumplings")

    page = client.get("/", headers={**HTML, "cf-ipcountry": "BR"}).text

    assert card_titles(page) == ["Dumplings"]


def test_deals_priced_in_the_viewers_currency_count_as_theirs(
    client: TestClient, services: Services
) -> None:
    france = create_merchant(services.db, currency="EUR", country="FR", time_zone="Europe/Paris")
    germany = create_merchant(services.db, currency="EUR", country="DE", time_zone="Europe/Berlin")
    create_deal(services.db, france, title="Croissants")
    create_deal(services.db, germany, title="Pretzels")
    create_deal(services.db, create_merchant(services.db), title="Bagels")

    page = client.get("/", headers={**HTML, "cf-ipcountry": "DE"}).text

    assert sorted(card_titles(page)) == ["Croissants", "Pretzels"]


def test_the_page_sorts_by_ending_soon_discount_and_popularity(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    now = utc_now()
    specs = {"Soon": (1, 900, 5), "Half": (3, 500, 1), "Busy": (5, 800, 30)}
    for title, (days, group, taken) in specs.items():
        deal = create_deal(services.db, merchant, title=title, list_price=1000, group_price=group)
        services.db.run_sync(
            lambda s, d=deal.id, days=days, taken=taken: s.execute(
                update(Deal)
                .where(Deal.id == d)
                .values(ends_at=now + timedelta(days=days), committed=taken)
            )
        )

    def shown(sort: str) -> list[str]:
        return card_titles(client.get(f"/?sort={sort}", headers=HTML).text)

    assert shown("ending_soon") == ["Soon", "Half", "Busy"]
    assert shown("discount") == ["Half", "Busy", "Soon"]
    assert shown("popular") == ["Busy", "Soon", "Half"]
    assert shown("anything") == ["Busy", "Half", "Soon"]  # newest, the default


def test_cards_count_only_teams_a_shopper_can_join(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    pair = create_deal(services.db, merchant, title="For two", team_size=2, per_user_limit=2)
    leaders = [create_account(services) for _ in range(3)]
    open_one = start_over_api(client, leaders[0], pair.id)
    full = start_over_api(client, leaders[1], pair.id)
    join_over_api(client, leaders[2], full.team_id)  # full, waiting for payments: not joinable

    page = client.get("/", headers=HTML).text

    assert "1 team forming" in page
    assert open_one.team_id in page  # in the strip of teams forming now
    assert full.team_id not in page


def test_the_strip_shows_teams_forming_now_with_seats_left_and_a_picture(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, merchant=merchant, role=Role.MERCHANT)
    deal = create_deal(services.db, merchant, title="Hotpot", team_size=4)
    image = client.post(
        f"/v1/deals/{deal.id}/images",
        files={"file": ("p.jpg", picture("orange"), "image/jpeg")},
        headers=staff.headers,
    ).json()["data"][0]
    team = start_over_api(client, create_account(services), deal.id)

    page = client.get("/?sort=newest", headers=HTML).text  # the list; the feed mixes teams in

    strip = page[page.index('class="forming-strip"') : page.index("</section>")]
    assert f'href="/teams/{team.team_id}"' in strip
    assert "3 seats left" in strip
    assert image["thumbnail_url"] in strip
    assert "data-countdown" in strip


def test_the_home_page_reads_the_same_number_of_times_for_2_or_12_deals(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    shopper = create_account(services)
    for n in range(2):
        start_over_api(client, shopper, create_deal(services.db, merchant, title=f"A{n}").id)
    with statements_sent(services.db.engine.url) as few:
        client.get("/?sort=newest", headers=HTML)
    for n in range(10):
        start_over_api(client, shopper, create_deal(services.db, merchant, title=f"B{n}").id)
    with statements_sent(services.db.engine.url) as many:
        page = client.get("/?sort=newest", headers=HTML).text

    assert len(card_titles(page)) == 12
    assert len(many) == len(few)
    assert sum("GROUP BY" in s and "teams" in s for s in many) == 1  # one query for the counts
