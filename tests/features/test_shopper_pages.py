"""The shopper's pages, driven as a browser without JavaScript drives them: plain forms."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.domain.deals import Vertical
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from pintuan.worker import Worker
from tests.factories import PASSWORD, Account, create_account, create_deal, create_merchant

HTML = {"accept": "text/html"}


def log_in(client: TestClient, account: Account) -> None:
    client.cookies.clear()
    answer = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    assert answer.status_code == 201


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found, f"the page has no {name} field"
    return found.group(1)


def submit(client: TestClient, page_path: str, action: str) -> tuple[str, object]:
    """Open ``page_path`` and submit its form posting to ``action``, as a browser would."""
    page = client.get(page_path, headers=HTML).text
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"{page_path} has no form for {action}"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))
    answer = client.post(action, data=fields, headers=HTML, follow_redirects=False)
    return page, answer


def pay_on_sandbox(client: TestClient, checkout_url: str, choice: str = "pay") -> None:
    path = urlsplit(checkout_url).path
    assert path.startswith("/sandbox/checkout/")
    assert client.get(path, headers=HTML).status_code == 200
    assert client.post(f"{path}/{choice}", headers=HTML).status_code == 200


def count(services: Services, model: type[Team] | type[Seat]) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(model))))


def only_team_id(services: Services) -> str:
    return str(services.db.run_sync(lambda s: s.scalar(select(Team.id))))


def test_the_home_page_shows_deal_cards_with_prices_team_size_and_forming_teams(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, title="Hotpot for three", team_size=3)
    create_deal(services.db, merchant, title="Draft deal", live=False)
    leader = create_account(services)
    log_in(client, leader)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    client.cookies.clear()

    page = client.get("/", headers=HTML).text

    assert "Hotpot for three" in page
    assert "Draft deal" not in page
    assert '<span class="group-price">$15.00</span>' in page
    assert '<del class="list-price">$20.00</del>' in page
    assert "Team of 3" in page
    assert "1 team forming" in page


def test_a_vertical_tab_shows_only_that_verticals_deals(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    create_deal(services.db, merchant, title="Dumplings", vertical=Vertical.FOOD)
    create_deal(services.db, merchant, title="Cinema night", vertical=Vertical.MOVIES)

    page = client.get("/?vertical=movies", headers=HTML).text

    assert "Cinema night" in page
    assert "Dumplings" not in page
    assert 'href="/?vertical=movies" aria-current="page"' in page


def test_starting_a_team_holds_the_leader_seat_and_opens_the_sandbox_checkout(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    log_in(client, create_account(services))

    _, answer = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")

    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert "/sandbox/checkout/" in answer.headers["location"]  # type: ignore[attr-defined]
    assert count(services, Team) == 1
    assert count(services, Seat) == 1


def test_a_start_form_sent_twice_starts_one_team(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db), per_user_limit=5)
    log_in(client, create_account(services))
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    fields = {"csrf_token": hidden(page, "csrf_token"), "form_key": hidden(page, "form_key")}

    first = client.post(
        f"/deals/{deal.id}/teams", data=fields, headers=HTML, follow_redirects=False
    )
    again = client.post(
        f"/deals/{deal.id}/teams", data=fields, headers=HTML, follow_redirects=False
    )

    assert first.headers["location"] == again.headers["location"]
    assert count(services, Team) == 1


def test_a_visitor_who_starts_a_team_is_asked_to_log_in_first(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))

    _, answer = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")

    assert answer.status_code == 303  # type: ignore[attr-defined]
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(f"/login?next=/deals/{deal.id}&action=")  # kept for after log-in
    assert count(services, Team) == 0


def test_the_deal_page_lists_teams_nearest_to_full_first_with_initials_and_seats_left(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=4)
    amy, ben, cai = (create_account(services, name=n) for n in ("Amy Lin", "Ben Ode", "Cai Wen"))
    log_in(client, amy)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    log_in(client, ben)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    ben_team = services.db.run_sync(
        lambda s: s.scalar(select(Seat.team_id).where(Seat.user_id == ben.user_id))
    )
    log_in(client, cai)
    submit(client, f"/teams/{ben_team}", f"/teams/{ben_team}/join")
    client.cookies.clear()

    page = client.get(f"/deals/{deal.id}", headers=HTML).text

    rows = page.split('<li class="team-row">')[1:]
    assert len(rows) == 2
    nearest, farther = rows
    for text in ("BO", "CW", "2 seats left"):
        assert text in nearest
    for text in ("AL", "3 seats left"):
        assert text in farther


def test_a_refused_join_says_why_on_the_team_page_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    log_in(client, create_account(services))
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    team_id = only_team_id(services)
    log_in(client, create_account(services))
    submit(client, f"/teams/{team_id}", f"/teams/{team_id}/join")
    log_in(client, create_account(services))
    page = client.get(f"/teams/{team_id}", headers=HTML).text
    assert f"/teams/{team_id}/join" not in page  # a full team offers no join button

    answer = client.post(
        f"/teams/{team_id}/join",
        data={"csrf_token": hidden(page, "csrf_token"), "form_key": "late-comer"},
        headers=HTML,
    )

    assert answer.status_code == 409
    assert "This team is full. Join another team or start your own." in answer.text
    assert count(services, Seat) == 2


def test_paying_on_the_sandbox_page_completes_the_team_and_both_members_see_it(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    leader, friend = create_account(services, name="Amy Lin"), create_account(services)
    log_in(client, leader)
    _, started = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    pay_on_sandbox(client, started.headers["location"])  # type: ignore[attr-defined]
    team_id = only_team_id(services)
    log_in(client, friend)
    _, joined = submit(client, f"/teams/{team_id}", f"/teams/{team_id}/join")
    pay_on_sandbox(client, joined.headers["location"])  # type: ignore[attr-defined]
    Worker(services).run_until_idle()

    friend_view = client.get(f"/teams/{team_id}", headers=HTML).text
    log_in(client, leader)
    leader_view = client.get(f"/teams/{team_id}", headers=HTML).text
    orders = client.get("/orders", headers=HTML).text
    notices = client.get("/notifications", headers=HTML).text

    for view in (friend_view, leader_view):
        assert "Team complete! Everyone in it gets the group price." in view
    assert "Confirmed" in orders
    assert "Paid</span>" in orders  # the hold was captured
    assert "Your team is complete: the group price is yours." in notices


def test_when_a_team_fails_the_shopper_reads_that_the_hold_was_released_not_refunded(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    log_in(client, create_account(services))
    _, started = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    pay_on_sandbox(client, started.headers["location"])  # type: ignore[attr-defined]
    team_id = only_team_id(services)

    clock.advance(timedelta(days=1, minutes=1))
    Worker(services).run_until_idle()
    team_view = client.get(f"/teams/{team_id}", headers=HTML).text
    orders = client.get("/orders", headers=HTML).text
    notices = client.get("/notifications", headers=HTML).text

    released = "The hold of $15.00 was released: nothing was charged."
    assert "This team did not fill in time." in team_view
    assert released in team_view
    assert released in orders
    assert "Ended: nothing charged" in orders
    for page in (team_view.split('id="you-heading"')[1], orders.split("order-list")[1]):
        assert "refunded to you" not in page
        assert "Refund" not in page
    # one message for the one outcome, saying where the money went
    assert notices.count('class="notice-item') == 1
    assert "Your team did not fill in time." in notices
    assert "The hold of $15.00 is being released" in notices or released in notices


def test_a_member_may_leave_a_forming_team(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    log_in(client, create_account(services))
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    team_id = only_team_id(services)
    seat_id = services.db.run_sync(lambda s: s.scalar(select(Seat.id)))

    _, answer = submit(client, f"/teams/{team_id}", f"/seats/{seat_id}/cancel")

    assert answer.headers["location"] == f"/teams/{team_id}"  # type: ignore[attr-defined]
    assert services.db.run_sync(lambda s: s.get(Seat, seat_id)).status == "released"


def test_opening_the_notifications_marks_them_read_and_clears_the_header_badge(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    log_in(client, create_account(services))
    _, started = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    pay_on_sandbox(client, started.headers["location"])  # type: ignore[attr-defined]
    clock.advance(timedelta(days=1, minutes=1))
    Worker(services).run_until_idle()

    before = client.get("/orders", headers=HTML).text
    opened = client.get("/notifications", headers=HTML).text
    after = client.get("/orders", headers=HTML).text

    assert '<span class="unread-count" aria-hidden="true">1</span>' in before
    assert "(1 unread)" in before
    assert opened.count('class="notice-item unread"') == 1  # shown as new this once
    assert "unread-count" not in opened
    assert "unread-count" not in after
    assert "unread-count" not in client.get("/notifications", headers=HTML).text.split("<main")[0]


def test_chinese_pages_speak_chinese_and_write_yuan_the_chinese_way(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    deal = create_deal(services.db, merchant, list_price=16800, group_price=9900)
    client.headers["accept-language"] = "zh-CN,zh;q=0.9"

    home = client.get("/", headers=HTML).text
    deal_page = client.get(f"/deals/{deal.id}", headers=HTML).text

    assert '<html lang="zh-Hans">' in home
    assert "一起拼，更便宜" in home  # noqa: RUF001 - Chinese punctuation
    assert '<span class="group-price">¥99.00</span>' in home
    assert '<del class="list-price">¥168.00</del>' in home
    assert "¥99.00 开团" in deal_page
    assert "这些团正在拼，去参团" in deal_page  # noqa: RUF001 - Chinese punctuation
