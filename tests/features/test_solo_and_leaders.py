"""Buying alone (a team of one on the same engine), leadership passing when a leader goes, empty
teams closing, and a full team saying who still has to pay, through the API and the pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.domain.ladder import Tier
from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.teams import reports
from pintuan.teams.models import Seat, Team
from pintuan.web.console import deal_form
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.features.test_shopper_pages import HTML, log_in, pay_on_sandbox, submit
from tests.features.test_teams_api import audit_clean, join, pay, start


def buy_alone(client: TestClient, account: Account, deal_id: str, **headers: str) -> Any:
    return client.post(f"/v1/deals/{deal_id}/solo", headers={**account.headers, **headers})


def cancel(client: TestClient, account: Account, seat_id: str) -> None:
    answer = client.post(f"/v1/seats/{seat_id}/cancel", headers=account.headers)
    assert answer.status_code == 200, answer.text


def committed(client: TestClient, deal_id: str) -> int:
    return int(client.get(f"/v1/deals/{deal_id}").json()["committed"])


def joinable_ids(client: TestClient, deal_id: str) -> list[str]:
    return [t["id"] for t in client.get(f"/v1/deals/{deal_id}/teams").json()["data"]]


# ---------------------------------------------------------------------------- buying alone


def test_buying_alone_holds_one_seat_at_the_list_price_and_paying_completes_it(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy = create_account(services, name="Amy Lin")

    bought = buy_alone(client, amy, deal.id)

    assert bought.status_code == 201, bought.text
    team, seat = bought.json()["team"], bought.json()["seat"]
    assert (team["solo"], team["team_size"], team["seats_left"]) == (True, 1, 0)
    assert team["leader"]["display_name"] == "Amy Lin"
    assert (seat["status"], seat["price"]) == ("held", {"amount": 2000, "currency": "USD"})
    assert committed(client, deal.id) == 1

    pay(client, amy, seat["id"])
    Worker(services).run_until_idle()

    after = client.get(f"/v1/teams/{team['id']}").json()
    assert (after["status"], after["seats_paid"]) == ("succeeded", 1)
    statuses = services.db.run_sync(lambda s: [p.status for p in s.scalars(select(Payment))])
    assert statuses == ["captured"]
    notices = client.get("/v1/me/notifications", headers=amy.headers).json()["data"]
    assert [n["kind"] for n in notices] == ["team_succeeded"]
    audit_clean(services)


def test_a_deal_sold_in_teams_only_refuses_buying_alone_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), allow_solo=False)
    amy = create_account(services)

    refused = buy_alone(client, amy, deal.id)

    assert refused.status_code == 409
    assert refused.json()["code"] == "solo_not_allowed"
    assert committed(client, deal.id) == 0
    assert services.db.run_sync(lambda s: s.scalars(select(Team)).all()) == []


def test_buying_alone_a_deal_that_is_not_live_or_unknown_says_so(
    client: TestClient, services: Services
) -> None:
    draft = create_deal(services.db, create_merchant(services.db), live=False)
    amy = create_account(services)

    assert buy_alone(client, amy, "deal_nope").json()["code"] == "deal_not_found"
    assert buy_alone(client, amy, draft.id).json()["code"] == "deal_not_live"


def test_a_solo_purchase_cannot_be_joined_and_is_no_team_forming(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    amy, ben = create_account(services), create_account(services)
    team_id = buy_alone(client, amy, deal.id).json()["team"]["id"]

    refused = join(client, ben, team_id)
    deal_page = client.get(f"/deals/{deal.id}", headers=HTML).text

    assert refused.status_code == 409
    assert refused.json()["code"] == "team_full"
    assert "solo purchase" in refused.json()["detail"]
    assert joinable_ids(client, deal.id) == []
    assert "0 teams forming" in deal_page
    assert f"/teams/{team_id}/join" not in deal_page
    assert committed(client, deal.id) == 1


def test_buying_alone_shares_the_deals_stock_and_the_shoppers_limit_with_teams(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    limited = create_deal(services.db, merchant, per_user_limit=1)
    scarce = create_deal(services.db, merchant, stock=1)
    amy, ben = create_account(services), create_account(services)

    assert buy_alone(client, amy, limited.id).status_code == 201
    over_limit = client.post(f"/v1/deals/{limited.id}/teams", headers=amy.headers)
    assert buy_alone(client, amy, scarce.id).status_code == 201
    sold_out = buy_alone(client, ben, scarce.id)

    assert over_limit.json()["code"] == "limit_reached"
    assert sold_out.json()["code"] == "sold_out"
    assert (committed(client, limited.id), committed(client, scarce.id)) == (1, 1)


def test_the_same_idempotency_key_buys_alone_once(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db), per_user_limit=3)
    amy = create_account(services)

    first = buy_alone(client, amy, deal.id, **{"Idempotency-Key": "solo-1"})
    again = buy_alone(client, amy, deal.id, **{"Idempotency-Key": "solo-1"})

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert committed(client, deal.id) == 1


def test_a_solo_hold_that_lapses_releases_the_unit_and_closes_the_purchase(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    amy = create_account(services)
    team_id = buy_alone(client, amy, deal.id).json()["team"]["id"]

    clock.advance(timedelta(minutes=11))
    Worker(services).run_until_idle()

    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "failed"
    assert committed(client, deal.id) == 0
    audit_clean(services)


def test_deals_offer_buying_alone_unless_their_staff_say_otherwise(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    created = client.post("/v1/deals", json=deal_body(merchant.id), headers=staff.headers)
    assert created.status_code == 201, created.text
    deal_id = created.json()["id"]
    client.post(f"/v1/deals/{deal_id}/publish", headers=staff.headers)

    changed = client.patch(
        f"/v1/deals/{deal_id}", json={"allow_solo": False}, headers=staff.headers
    )

    assert created.json()["allow_solo"] is True
    assert changed.status_code == 200, changed.text
    assert changed.json()["allow_solo"] is False


# ---------------------------------------------------------------------------- leaders


def test_when_the_leader_leaves_the_next_member_leads_at_the_price_they_joined_at(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3, leader_price=1000)
    amy, ben, cai = (create_account(services, name=n) for n in ("Amy", "Ben", "Cai"))
    started = start(client, amy, deal.id)
    team_id = started["team"]["id"]
    bens = join(client, ben, team_id).json()["seat"]
    join(client, cai, team_id)
    pay(client, ben, bens["id"])

    cancel(client, amy, started["seat"]["id"])

    team = client.get(f"/v1/teams/{team_id}").json()
    assert team["leader"]["display_name"] == "Ben"
    assert [(m["display_name"], m["is_leader"]) for m in team["members"]] == [
        ("Ben", True),
        ("Cai", False),
    ]
    ben_seat = services.db.run_sync(lambda s: s.get(Seat, bens["id"]))
    assert (ben_seat.is_leader, ben_seat.price_amount) == (True, 1500)
    assert services.db.run_sync(lambda s: s.get(Team, team_id).leader_id) == ben.user_id
    assert joinable_ids(client, deal.id) == [team_id]
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    assert "the team of Ben" in page
    audit_clean(services)


def test_when_the_leaders_hold_lapses_the_next_member_leads(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy, ben = create_account(services, name="Amy"), create_account(services, name="Ben")
    started = start(client, amy, deal.id)
    team_id = started["team"]["id"]
    clock.advance(timedelta(minutes=5))
    pay(client, ben, join(client, ben, team_id).json()["seat"]["id"])

    clock.advance(timedelta(minutes=6))
    Worker(services).run_until_idle()

    team = client.get(f"/v1/teams/{team_id}").json()
    assert team["status"] == "forming"
    assert team["leader"]["display_name"] == "Ben"
    assert team["seats_left"] == 2
    audit_clean(services)


def test_a_team_whose_last_member_leaves_closes_at_once_and_is_no_longer_listed(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy = create_account(services, name="Amy")
    started = start(client, amy, deal.id)
    team_id = started["team"]["id"]
    assert joinable_ids(client, deal.id) == [team_id]

    cancel(client, amy, started["seat"]["id"])

    team = client.get(f"/v1/teams/{team_id}").json()
    assert team["status"] == "failed"
    assert team["ended_at"] is not None
    assert joinable_ids(client, deal.id) == []
    assert committed(client, deal.id) == 0
    page = client.get(f"/teams/{team_id}", headers=HTML).text
    assert "Started by Amy" in page
    assert "the team of <" not in page
    audit_clean(services)


def test_only_a_team_one_seat_from_full_is_called_almost_full(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy, ben, cai = (create_account(services) for _ in range(3))
    nearly = start(client, amy, deal.id)["team"]["id"]
    join(client, ben, nearly)
    start(client, cai, deal.id)

    page = client.get(f"/deals/{deal.id}", headers=HTML).text

    assert page.count("Almost full") == 1
    assert "Join a team that is almost full" not in page


def test_a_full_team_with_unpaid_seats_says_who_still_has_to_pay_and_until_when(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    amy, ben = create_account(services, name="Amy"), create_account(services, name="Ben")
    started = start(client, amy, deal.id)
    team_id = started["team"]["id"]
    join(client, ben, team_id)

    api = client.get(f"/v1/teams/{team_id}").json()
    page = client.get(f"/teams/{team_id}", headers=HTML).text

    assert all(m["pay_by"] is not None for m in api["members"])
    assert "0 seats left" not in page
    assert "The team is full and waits for 2 payments." in page
    waiting = re.search(r'<div class="waiting" id="waiting">(.*?)</div>', page, re.S)
    assert waiting
    assert "Amy has until" in waiting.group(1)
    assert "Ben has until" in waiting.group(1)


# ---------------------------------------------------------------------------- pages


def test_the_deal_page_offers_buying_alone_and_starting_a_team_with_both_prices(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    both = create_deal(services.db, merchant)
    teams_only = create_deal(services.db, merchant, allow_solo=False)

    page = client.get(f"/deals/{both.id}", headers=HTML).text
    only = client.get(f"/deals/{teams_only.id}", headers=HTML).text

    assert "Buy alone $20.00" in page
    assert "Start a team $15.00" in page
    assert page.index("Buy alone $20.00") < page.index("Start a team $15.00")
    assert "Buy alone" not in only
    assert "Start a team $15.00" in only


def test_buying_alone_on_the_page_goes_to_checkout_and_ends_paid(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    amy = create_account(services)
    log_in(client, amy)

    _, answer = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/solo")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    pay_on_sandbox(client, answer.headers["location"])  # type: ignore[attr-defined]
    team_id = services.db.run_sync(lambda s: s.scalar(select(Team.id)))
    page = client.get(f"/teams/{team_id}", headers=HTML).text

    assert "Paid: you bought it alone at the list price." in page
    assert "Invite friends" not in page
    assert "Free seat" not in page


def test_a_friend_from_a_share_link_is_told_who_invited_them_and_the_seats_left(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy = create_account(services, name="Amy Lin")
    team_id = start(client, amy, deal.id)["team"]["id"]
    code = client.post(
        f"/v1/teams/{team_id}/shares", json={"channel": "wechat"}, headers=amy.headers
    ).json()["code"]
    ben = create_account(services, name="Ben")
    log_in(client, ben)

    page = client.get(f"/s/{code}", headers=HTML).text
    log_in(client, amy)
    own = client.get(f"/teams/{team_id}?via={code}", headers=HTML).text

    assert "Amy Lin invited you · 2 seats left" in page
    assert f"/teams/{team_id}/join" in page
    assert "invited you" not in own


def test_leaving_asks_for_confirmation_below_the_sharing(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy, ben = create_account(services, name="Amy"), create_account(services, name="Ben")
    started = start(client, amy, deal.id)
    pay(client, amy, started["seat"]["id"])
    join(client, ben, started["team"]["id"])
    log_in(client, amy)

    page = client.get(f"/teams/{started['team']['id']}", headers=HTML).text

    leave = re.search(r'<details class="leave">(.*?)</details>', page, re.S)
    assert leave
    assert "<summary>Leave this team</summary>" in leave.group(1)
    assert "Yes, leave this team" in leave.group(1)
    assert "The member who joined next leads the team." in leave.group(1)
    assert page.index('id="share-heading"') < page.index('<details class="leave">')


def test_a_solo_purchase_is_sales_on_the_dashboard_but_no_team_that_filled(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    amy = create_account(services)
    pay(client, amy, buy_alone(client, amy, deal.id).json()["seat"]["id"])

    board = services.db.run_sync(
        lambda s: reports.merchant_dashboard(s, staff.principal, merchant.id, days=1)
    )

    assert board.total_sales("USD") == 2000
    assert (board.succeeded, board.failed) == (0, 0)
    assert board.time_to_fill.teams == 0


def test_the_deal_editor_ticks_buying_alone_for_a_new_deal_and_unticking_it_sells_teams_only(
    services: Services,
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant)
    typed = {
        "title": "Hotpot",
        "vertical": "food",
        "list_price": "20",
        "group_price": "15",
        "team_size": "3",
        "team_window_minutes": "1440",
        "stock": "10",
        "per_user_limit": "1",
        "starts_at": "2031-01-01T10:00",
        "ends_at": "2031-02-01T10:00",
    }

    _, ticked = deal_form.parse_new_deal(
        {**typed, "allow_solo": "on"}, merchant.id, "USD", "UTC", "en"
    )
    _, unticked = deal_form.parse_new_deal(typed, merchant.id, "USD", "UTC", "en")
    form, changes = deal_form.parse_deal_changes({"title": deal.title}, deal, "UTC", "en")

    assert ticked is not None
    assert unticked is not None
    assert (ticked.allow_solo, unticked.allow_solo) == (True, False)
    assert form.valid
    assert changes == {"allow_solo": False}  # a live deal's box left unticked


def test_buying_alone_a_ladder_or_rewarded_deal_is_no_teams_purchase(
    client: TestClient, services: Services
) -> None:
    """A purchase alone is a team of one, but no team's purchase: paying it succeeds without a
    ladder's tier (a team of one reaches none: its payment failed to record, every time) and
    without the leader's reward (a free seat paid for by the merchant)."""
    merchant = create_merchant(services.db)
    ladder = create_deal(services.db, merchant, team_size=2, ladder=(Tier(3, 1300), Tier(5, 1000)))
    rewarded = create_deal(
        services.db, merchant, team_size=3, leader_reward=LeaderReward(RewardKind.FREE)
    )
    for deal in (ladder, rewarded):
        amy = create_account(services)
        bought = buy_alone(client, amy, deal.id)
        assert bought.status_code == 201, bought.text
        pay(client, amy, bought.json()["seat"]["id"])
        Worker(services).run_until_idle()
        team = client.get(f"/v1/teams/{bought.json()['team']['id']}").json()
        assert (team["status"], team["seats_paid"]) == ("succeeded", 1)
    stored = services.db.run_sync(
        lambda s: [(t.ladder_price, t.leader_reward_due) for t in s.scalars(select(Team))]
    )
    assert stored == [(None, False), (None, False)]
    refunds = services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Refund)))
    assert refunds == 0
    statuses = services.db.run_sync(lambda s: [p.status for p in s.scalars(select(Payment))])
    assert statuses == ["captured", "captured"]
    audit_clean(services)
