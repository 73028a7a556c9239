"""Refunds on the pages, as a browser without JavaScript drives them: the merchant console's
order view refunds fully or in part (staff and operators), says why it refuses, and lists the
merchant's disputes; the shopper's /orders shows each refund."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account
from tests.features.test_fulfilment_pages import form_post
from tests.features.test_refunds import confirmed_team
from tests.features.test_shopper_pages import HTML, log_in


def test_an_operator_refunds_part_of_an_order_on_its_view_and_the_shopper_sees_it(
    client: TestClient, services: Services
) -> None:
    merchant, _, seats = confirmed_team(client, services)
    shopper, seat_id = seats[0]
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)
    view = f"/console/merchants/{merchant.id}/seats/{seat_id}"
    action = f"{view}/refunds"

    _, unread = form_post(client, view, action, amount="five", reason="dented")
    assert unread.status_code == 422
    assert "Type the amount to refund as a number" in unread.text
    _, too_much = form_post(client, view, action, amount="15.01", reason="dented")
    assert too_much.status_code == 422
    assert 'id="refund-error"' in too_much.text
    assert 'value="dented"' in too_much.text
    _, done = form_post(client, view, action, amount="4.50", reason="dented")
    assert done.status_code == 303
    assert done.headers["location"] == f"{view}?done=refunded"

    refunds = services.db.run_sync(
        lambda s: [(r.amount, r.reason) for r in s.scalars(select(Refund))], write=False
    )
    assert refunds == [(450, "dented")]
    page = client.get(f"{view}?done=refunded", headers=HTML).text
    assert "Up to $10.50 can still be refunded." in page

    Worker(services).run_until_idle()
    log_in(client, shopper)
    orders = client.get("/orders", headers=HTML).text
    assert "Refund done" in orders
    assert "dented" in orders


def test_the_disputes_tab_lists_the_merchants_disputes(
    client: TestClient, services: Services
) -> None:
    merchant, staff, _ = confirmed_team(client, services)
    log_in(client, staff)
    page = client.get(f"/console/merchants/{merchant.id}/disputes", headers=HTML)
    assert page.status_code == 200
    assert "No disputes." in page.text
