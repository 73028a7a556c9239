"""My orders and notifications say exactly where money went, including when a friend paid."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_shopper_pages import HTML, log_in, pay_on_sandbox, submit


def order_list(page: str) -> str:
    """The orders themselves, without the tabs and the header."""
    return page.split('<ul class="order-list">', 1)[1] if "order-list" in page else ""


def notices(page: str) -> list[str]:
    return re.findall(r'<li class="notice-item.*?</li>', page, re.S)


def friend_pays_then_the_team_fails(
    client: TestClient, services: Services, shopper: Account, friend: Account
) -> tuple[str, str, str]:
    """The shopper starts a team and leaves its checkout unfinished; the friend pays through
    the shared link; the team does not fill. Returns the team, the seat and the pay link."""
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    log_in(client, shopper)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")  # checkout left open
    seat_id, team_id = services.db.run_sync(
        lambda s: s.execute(select(Seat.id, Seat.team_id)).one()
    )
    _, asked = submit(client, f"/teams/{team_id}", f"/seats/{seat_id}/pay-link")
    pay_path = asked.headers["location"].split("?")[0]  # type: ignore[attr-defined]
    log_in(client, friend)
    _, paying = submit(client, pay_path, pay_path)
    pay_on_sandbox(client, paying.headers["location"])  # type: ignore[attr-defined]
    return team_id, seat_id, pay_path


def test_when_a_friend_paid_and_the_team_fails_each_side_reads_where_the_money_went(
    client: TestClient, services: Services
) -> None:
    amy = create_account(services, name="Amy Lin")
    ben = create_account(services, name="Ben Ode")
    team_id, _, pay_path = friend_pays_then_the_team_fails(client, services, amy, ben)
    log_in(client, amy)
    amy_before = order_list(client.get("/orders", headers=HTML).text)
    log_in(client, ben)
    ben_before = order_list(client.get("/orders", headers=HTML).text)

    clock.advance(timedelta(days=1, minutes=1))
    Worker(services).run_until_idle()
    ben_orders = order_list(client.get("/orders", headers=HTML).text)
    ben_notices = notices(client.get("/notifications", headers=HTML).text)
    ben_link = client.get(pay_path, headers=HTML)
    log_in(client, amy)
    amy_team = client.get(f"/teams/{team_id}", headers=HTML).text.split('id="you-heading"')[1]
    amy_orders = order_list(client.get("/orders", headers=HTML).text)
    amy_notices = notices(client.get("/notifications", headers=HTML).text)

    # while the team forms: Amy's own checkout is not "waiting" forever, Ben sees his payment
    assert "Not used: Ben Ode paid for this seat instead." in amy_before
    assert "waiting for the provider" not in amy_before
    assert "You paid for the seat of Amy Lin." in ben_before
    assert "Amount held" in ben_before
    # after the failure: Amy reads that the money was Ben's, Ben that it was his
    to_ben = (
        "The hold of $15.00 that Ben Ode placed for you was released: nothing was charged "
        "to Ben Ode."
    )
    assert to_ben in amy_team
    assert to_ben in amy_orders
    for page in (amy_team, amy_orders):
        assert "refunded to you" not in page
        assert "back to you" not in page
    assert "You paid for the seat of Amy Lin." in ben_orders
    assert "The hold of $15.00 was released: nothing was charged." in ben_orders
    # one notice each for the one outcome
    assert len(amy_notices) == 1
    assert "Your team did not fill in time." in amy_notices[0]
    assert "that Ben Ode placed for you" in amy_notices[0]
    assert len(ben_notices) == 1
    assert "The team of Amy Lin, whose seat you paid for, did not fill in time." in ben_notices[0]
    # and the pay link no longer offers to pay, saying why
    assert ben_link.status_code == 410
    assert "This team did not fill in time, so nobody pays" in ben_link.text
    assert f'action="{pay_path}"' not in ben_link.text


def test_a_failed_team_gives_one_notice_per_member_not_three(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    amy, ben = create_account(services), create_account(services)
    for shopper in (amy, ben):
        log_in(client, shopper)
        team = services.db.run_sync(lambda s: s.scalar(select(Seat.team_id)))
        if team is None:
            _, opened = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
        else:
            _, opened = submit(client, f"/teams/{team}", f"/teams/{team}/join")
        pay_on_sandbox(client, opened.headers["location"])  # type: ignore[attr-defined]

    clock.advance(timedelta(days=1, minutes=1))
    Worker(services).run_until_idle()

    for shopper in (amy, ben):
        log_in(client, shopper)
        found = notices(client.get("/notifications", headers=HTML).text)
        assert len(found) == 1
        assert "Your team did not fill in time." in found[0]


def test_the_orders_tabs_count_and_filter_and_an_unpaid_seat_offers_pay_now(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    held = create_deal(services.db, merchant, title="Held noodles")
    forming = create_deal(services.db, merchant, title="Forming tea")
    log_in(client, create_account(services))
    submit(client, f"/deals/{held.id}", f"/deals/{held.id}/teams")
    _, started = submit(client, f"/deals/{forming.id}", f"/deals/{forming.id}/teams")
    pay_on_sandbox(client, started.headers["location"])  # type: ignore[attr-defined]
    held_seat = services.db.run_sync(
        lambda s: s.scalar(select(Seat.id).where(Seat.deal_id == held.id))
    )

    everything = client.get("/orders", headers=HTML).text
    to_pay = client.get("/orders?tab=to_pay", headers=HTML).text
    in_forming = client.get("/orders?tab=forming", headers=HTML).text
    refunded = client.get("/orders?tab=refunded", headers=HTML).text
    unknown = client.get("/orders?tab=shipped", headers=HTML)
    paid_now = client.post(
        f"/seats/{held_seat}/pay",
        data={"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', to_pay)[0]},
        headers=HTML,
        follow_redirects=False,
    )

    assert re.search(r'aria-current="page">All <span class="tab-count">2</span>', everything)
    assert 'To pay <span class="tab-count">1</span>' in everything
    assert 'Forming <span class="tab-count">1</span>' in everything
    assert 'Refunded <span class="tab-count">0</span>' in everything
    assert "Held noodles" in order_list(to_pay)
    assert "Forming tea" not in order_list(to_pay)
    assert f'action="/seats/{held_seat}/pay"' in to_pay
    assert "Your seat is held for" in to_pay
    assert "data-countdown" in to_pay
    assert "Forming tea" in order_list(in_forming)
    assert "Held noodles" not in order_list(in_forming)
    assert "Pay now" not in order_list(in_forming)
    assert "No orders here." in refunded
    assert unknown.status_code == 422
    assert "/sandbox/checkout/" in paid_now.headers["location"]


def test_orders_show_a_thumbnail_of_the_deal(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db), title="Tea set")
    log_in(client, create_account(services))
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")

    page = order_list(client.get("/orders", headers=HTML).text)

    assert '<span class="thumb">' in page
    assert '<span class="placeholder tone-' in page  # no picture yet: the lettered placeholder


def test_orders_are_paged_within_a_tab(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services))
    for n in range(21):
        deal = create_deal(services.db, merchant, title=f"Deal {n:02d}")
        submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")

    first = client.get("/orders?tab=to_pay", headers=HTML).text
    older = re.search(r'href="(/orders\?tab=to_pay&amp;cursor=[^"]+)"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"), headers=HTML).text

    assert order_list(first).count('<li class="order"') == 20
    assert order_list(second).count('<li class="order"') == 1
    assert "Deal 00" in order_list(second)
