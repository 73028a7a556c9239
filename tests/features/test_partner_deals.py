"""Deals out: apps read the live deals and a deal's joinable teams, each with a deep link; what
a deep link brings is credited to its app as the growth channel ``app:<app id>``."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from pintuan.domain.apps import AppStatus, Scope
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Role
from pintuan.domain.traffic import app_channel
from pintuan.growth.service import rollup_day
from pintuan.kit.time import utc_now
from pintuan.shares.models import Share, ShareConversion, ShareVisit
from pintuan.worker import Worker
from tests.factories import PASSWORD, create_account, create_deal, create_merchant
from tests.features.sharing import PHONE
from tests.partnering import Partner, create_app_record, partner

__all__ = ["partner"]
APP_NAME = "Lumière & Co"
HTML = {"accept": "text/html"}


def reader(partner: Partner, status: AppStatus = AppStatus.APPROVED) -> tuple[str, dict[str, str]]:
    developer = create_account(partner.services)
    app_id = create_app_record(partner.services.db, developer.user_id, status=status, name=APP_NAME)
    return app_id, partner.grant(app_id, scopes={Scope.OFFERS_READ})


def test_live_deals_are_listed_with_deep_links_and_filtered_by_vertical_and_country(
    partner: Partner,
) -> None:
    db = partner.services.db
    us, cn = create_merchant(db, country="US"), create_merchant(db, country="CN", currency="CNY")
    food = create_deal(db, us, vertical=Vertical.FOOD)
    movie = create_deal(db, cn, vertical=Vertical.MOVIES)
    create_deal(db, us, live=False)  # a draft is nobody's business
    ended = create_deal(db, us)
    staff = create_account(partner.services, role=Role.MERCHANT, merchant=us)
    partner.client.post(f"/v1/deals/{ended.id}/end", headers=staff.headers)
    app_id, headers = reader(partner)

    def ids(**params: Any) -> list[str]:
        answer = partner.client.get("/v1/partner/deals", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [d["id"] for d in answer.json()["data"]]

    assert ids() == [movie.id, food.id]
    assert ids(vertical="food") == [food.id]
    assert ids(country="cn") == [movie.id]
    assert ids(country="CN", vertical="food") == []
    first = partner.client.get("/v1/partner/deals", params={"limit": 1}, headers=headers).json()
    second = partner.client.get(
        "/v1/partner/deals", params={"limit": 1, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [d["id"] for d in first["data"] + second["data"]] == [movie.id, food.id]
    assert second["next_cursor"] is None
    listed = first["data"][0]
    base = partner.services.settings.base_url
    assert listed["deep_link"] == f"{base}/a/{app_id}/deals/{movie.id}"
    assert (listed["country"], listed["group_price"]["currency"]) == ("CN", "CNY")
    assert (
        partner.client.get(
            "/v1/partner/deals", params={"country": "C1"}, headers=headers
        ).status_code
        == 422
    )


def test_a_deals_joinable_teams_show_seats_left_and_deep_links(partner: Partner) -> None:
    db = partner.services.db
    shop = create_merchant(db)
    deal = create_deal(db, shop, team_size=3)
    app_id, headers = reader(partner)
    leaders = [create_account(partner.services) for _ in range(2)]
    teams = [
        partner.client.post(f"/v1/deals/{deal.id}/teams", headers=a.headers).json()["team"]["id"]
        for a in leaders
    ]
    joiner = create_account(partner.services)
    partner.client.post(f"/v1/teams/{teams[1]}/seats", headers=joiner.headers)

    answer = partner.client.get(f"/v1/partner/deals/{deal.id}/teams", headers=headers)

    assert answer.status_code == 200, answer.text
    listed = answer.json()["data"]
    assert [(t["id"], t["seats_left"]) for t in listed] == [(teams[1], 1), (teams[0], 2)]
    base = partner.services.settings.base_url
    assert listed[0]["deep_link"] == f"{base}/a/{app_id}/teams/{teams[1]}"
    assert "members" not in listed[0]  # apps see no shopper's name
    draft = create_deal(db, shop, live=False)
    for missing in (draft.id, "deal_unknown"):
        gone = partner.client.get(f"/v1/partner/deals/{missing}/teams", headers=headers)
        assert (gone.status_code, gone.json()["code"]) == (404, "deal_not_found")


def test_reading_deals_takes_the_offers_read_scope(partner: Partner) -> None:
    developer = create_account(partner.services)
    app_id = create_app_record(partner.services.db, developer.user_id)
    writer = partner.grant(app_id, scopes={Scope.OFFERS_WRITE})
    for path in ("/v1/partner/deals", "/v1/partner/deals/deal_x/teams"):
        refused = partner.client.get(path, headers=writer)
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
        assert partner.client.get(path).status_code == 401


# ---------------------------------------------------------------------------- attribution


def open_link(partner: Partner, url: str, headers: dict[str, str]) -> Any:
    path = url.removeprefix(partner.services.settings.base_url)
    return partner.client.get(
        path, headers={"user-agent": PHONE, **headers}, follow_redirects=False
    )


def test_orders_through_an_apps_deep_link_are_credited_to_the_app_in_the_growth_figures(
    partner: Partner,
) -> None:
    db = partner.services.db
    shop = create_merchant(db)
    deal = create_deal(db, shop, team_size=2)
    app_id, headers = reader(partner)
    link = partner.client.get("/v1/partner/deals", headers=headers).json()["data"][0]["deep_link"]
    leader, joiner = create_account(partner.services), create_account(partner.services)

    opened = open_link(partner, link, leader.headers)
    assert opened.status_code == 302
    assert opened.headers["location"] == f"/deals/{deal.id}"
    started = partner.client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    team_link = partner.client.get(f"/v1/partner/deals/{deal.id}/teams", headers=headers).json()
    assert open_link(partner, team_link["data"][0]["deep_link"], joiner.headers).status_code == 302
    partner.client.post(f"/v1/teams/{started['team']['id']}/seats", headers=joiner.headers)
    Worker(partner.services).run_until_idle()
    today = utc_now().date()
    db.run_sync(lambda s: rollup_day(s, today, utc_now()))

    shares = db.run_sync(lambda s: list(s.scalars(select(Share))), write=False)
    assert {(s.channel, s.sharer_id, s.target) for s in shares} == {
        (app_channel(app_id), None, "deal"),
        (app_channel(app_id), None, "team"),
    }
    credited = db.run_sync(
        lambda s: sorted(s.scalars(select(ShareConversion.kind)).all()), write=False
    )
    assert credited == ["join", "start"]
    operator = create_account(partner.services, role=Role.OPERATOR)
    funnel = partner.client.get(
        "/v1/growth/funnel",
        params={"group_by": "channel", "channel": app_channel(app_id)},
        headers=operator.headers,
    ).json()
    (row,) = funnel["data"]
    assert row["group"] == app_channel(app_id)
    assert (row["visits"], row["starts"], row["joins"]) == (2, 1, 1)
    # the console names the channel by its app, in the filter and in the table
    logged_in = partner.client.post(
        "/v1/sessions", json={"email": operator.email, "password": PASSWORD}
    )
    assert logged_in.status_code == 201
    page = partner.client.get(
        "/console/operator/growth", params={"channel": app_channel(app_id)}, headers=HTML
    )
    assert page.status_code == 200
    name = re.escape(html.escape(f"App: {APP_NAME}"))
    assert re.search(rf'<option value="app:{app_id}" selected>{name}</option>', page.text)
    assert re.search(rf'<th scope="row" data-label="Channel">{name}</th>', page.text)
    assert f"channel-app-{app_id}-chart" in page.text


def test_a_deep_link_opened_again_and_again_makes_one_share(partner: Partner) -> None:
    deal = create_deal(partner.services.db, create_merchant(partner.services.db))
    app_id, _ = reader(partner)
    for _ in range(3):
        answer = partner.client.get(f"/a/{app_id}/deals/{deal.id}", follow_redirects=False)
        assert answer.status_code == 302
    shares = partner.services.db.run_sync(lambda s: list(s.scalars(select(Share))), write=False)
    assert len(shares) == 1


def test_an_app_that_is_not_approved_sends_visitors_on_but_takes_no_credit(
    partner: Partner,
) -> None:
    deal = create_deal(partner.services.db, create_merchant(partner.services.db))
    app_id, _ = reader(partner, status=AppStatus.SUSPENDED)

    answer = partner.client.get(f"/a/{app_id}/deals/{deal.id}", follow_redirects=False)
    unknown_app = partner.client.get(f"/a/app_nobody/deals/{deal.id}", follow_redirects=False)
    unknown_deal = partner.client.get(f"/a/{app_id}/deals/deal_nothing", follow_redirects=False)

    assert (answer.status_code, answer.headers["location"]) == (302, f"/deals/{deal.id}")
    assert unknown_app.status_code == 302
    assert unknown_deal.status_code == 404
    visits = partner.services.db.run_sync(lambda s: list(s.scalars(select(ShareVisit))))
    assert visits == []


def test_the_growth_figures_take_an_apps_channel_and_refuse_an_unknown_one(
    partner: Partner,
) -> None:
    operator = create_account(partner.services, role=Role.OPERATOR)
    for channel, status in (("app:app_01ABC", 200), ("wechat", 200), ("app:", 422), ("fax", 422)):
        answer = partner.client.get(
            "/v1/growth/funnel", params={"channel": channel}, headers=operator.headers
        )
        assert answer.status_code == status, (channel, answer.text)
