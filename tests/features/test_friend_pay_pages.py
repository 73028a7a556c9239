"""Friend pays in the browser: a shopper asks, a friend opens the link and pays."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.kit.time import clock
from pintuan.ledger.models import Wallet
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_shopper_pages import HTML, log_in, pay_on_sandbox, submit


def test_a_friend_pays_for_a_held_seat_through_the_shared_page(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    shopper, friend = create_account(services), create_account(services, name="Friend")
    log_in(client, shopper)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    seat_id, team_id = services.db.run_sync(
        lambda s: s.execute(select(Seat.id, Seat.team_id)).one()
    )
    team_path = f"/teams/{team_id}"

    # when the shopper asks for a friend's help
    _, asked = submit(client, team_path, f"/seats/{seat_id}/pay-link")
    share_page = client.get(asked.headers["location"], headers=HTML)  # type: ignore[attr-defined]
    link = re.search(r'value="(http[^"]+/pay/[^"]+)"', share_page.text)
    assert link, share_page.text
    pay_path = "/pay/" + link.group(1).rsplit("/pay/", 1)[1]

    # and the friend opens it, signed in, and pays on the provider's page
    log_in(client, friend)
    page, paying = submit(client, pay_path, pay_path)
    pay_on_sandbox(client, paying.headers["location"])  # type: ignore[attr-defined]

    # then the seat is paid by the friend, and when the team fails the friend gets it back
    assert "asks you to pay for their seat" in page
    assert "$15.00" in page
    assert services.db.run_sync(lambda s: s.get(Seat, seat_id).status) == "paid"
    paid_by = services.db.run_sync(
        lambda s: s.execute(
            select(Payment.id, Payment.user_id).where(Payment.status == "authorized")
        ).one()
    )
    assert paid_by.user_id == friend.user_id
    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()
    assert services.db.run_sync(lambda s: s.get(Payment, paid_by.id).status) == "voided"
    assert services.db.run_sync(lambda s: s.scalars(select(Wallet)).all()) == []


def test_a_signed_out_friend_is_asked_to_log_in_and_a_forged_link_is_not_found(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    shopper = create_account(services)
    log_in(client, shopper)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    seat_id, team_id = services.db.run_sync(
        lambda s: s.execute(select(Seat.id, Seat.team_id)).one()
    )
    team_path = f"/teams/{team_id}"
    _, asked = submit(client, team_path, f"/seats/{seat_id}/pay-link")
    pay_path = asked.headers["location"].split("?")[0]  # type: ignore[attr-defined]
    client.cookies.clear()

    page = client.get(pay_path, headers=HTML)
    forged = client.get(pay_path[:-3] + "abc", headers=HTML)
    zh = client.get(pay_path, headers={**HTML, "accept-language": "zh-CN"})

    assert page.status_code == 200
    assert f'href="/login?next={pay_path}"' in page.text
    assert forged.status_code == 404
    assert "请你为" in zh.text


def test_a_paid_seats_link_says_it_is_paid_instead_of_offering_to_pay_again(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    shopper, friend = create_account(services), create_account(services, name="Friend")
    stranger = create_account(services)
    log_in(client, shopper)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    seat_id, team_id = services.db.run_sync(
        lambda s: s.execute(select(Seat.id, Seat.team_id)).one()
    )
    _, asked = submit(client, f"/teams/{team_id}", f"/seats/{seat_id}/pay-link")
    pay_path = asked.headers["location"].split("?")[0]  # type: ignore[attr-defined]
    log_in(client, friend)
    _, paying = submit(client, pay_path, pay_path)
    pay_on_sandbox(client, paying.headers["location"])  # type: ignore[attr-defined]

    by_friend = client.get(pay_path, headers=HTML).text
    log_in(client, stranger)
    by_stranger = client.get(pay_path, headers=HTML).text

    assert "You paid for this seat. Thank you!" in by_friend
    assert "This seat is already paid: there is nothing to pay." in by_stranger
    for page in (by_friend, by_stranger):
        assert f'action="{pay_path}"' not in page
