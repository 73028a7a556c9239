"""Ladder teams, tipping points and honest auto-fill on the consoles and the pages, as a browser
without JavaScript drives them: the deal form takes a ladder as "size = price" text, a tipping
point and an auto-fill (and names every problem next to its field); the merchant's and the
operators' Auto-fill tabs set their budgets' limits and list the teams filled; a filled team's
page says who filled its seats, in English and in Chinese."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from pintuan.deals.models import Deal
from pintuan.domain.autofill import AutoFill, FundedBy
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_ladder_and_tipping import team_of
from tests.features.test_ledger import pay
from tests.features.test_merchant_console import deal_fields


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    assert found, f"no message next to {name}"
    return found.group(1)


def test_the_deal_form_takes_a_ladder_a_tipping_point_and_an_auto_fill(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    log_in(client, staff)
    new = f"/console/merchants/{merchant.id}/deals/new"

    saved = form_post(
        client,
        new,
        f"/console/merchants/{merchant.id}/deals",
        deal_fields(
            team_size="2",
            ladder="4 = 50.00, 8 = 45,50",
            auto_fill_seats="",
            auto_fill_funded_by="merchant",
        ),
    )
    assert saved.status_code == 303, saved.text
    deal_id = saved.headers["location"].split("?")[0].rstrip("/").split("/")[-1]
    deal = services.db.run_sync(lambda s: s.get(Deal, deal_id), write=False)
    assert deal is not None
    assert deal.ladder == [[4, 5000], [8, 4550]]
    editor = client.get(f"/console/merchants/{merchant.id}/deals/{deal_id}", headers=HTML)
    assert 'value="4 = 50.00, 8 = 45.50"' in editor.text

    refused = form_post(
        client,
        new,
        f"/console/merchants/{merchant.id}/deals",
        deal_fields(team_size="1", ladder="4 = 60.00", auto_fill_funded_by="merchant"),
    )
    assert refused.status_code == 422
    assert "costs less than the one before" in field_error(refused.text, "ladder")
    assert "1 only with a tipping point" in field_error(refused.text, "team_size")
    tipping = form_post(
        client,
        new,
        f"/console/merchants/{merchant.id}/deals",
        deal_fields(tipping_point="none", auto_fill_funded_by="merchant"),
    )
    assert tipping.status_code == 422
    assert "paid seats the deal needs" in field_error(tipping.text, "tipping_point")

    filled = form_post(
        client,
        new,
        f"/console/merchants/{merchant.id}/deals",
        deal_fields(
            team_size="3", tipping_point="", auto_fill_seats="1", auto_fill_funded_by="platform"
        ),
    )
    assert filled.status_code == 303, filled.text
    filled_id = filled.headers["location"].split("?")[0].rstrip("/").split("/")[-1]
    made = services.db.run_sync(lambda s: s.get(Deal, filled_id), write=False)
    assert made is not None
    assert (made.auto_fill_seats, made.auto_fill_funded_by) == (1, "platform")


def test_budgets_on_both_consoles_and_the_filled_team_on_its_page(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    operator = create_account(services, role=Role.OPERATOR)
    deal = create_deal(services.db, merchant, team_size=3, auto_fill=AutoFill(1, FundedBy.MERCHANT))
    mine = f"/console/merchants/{merchant.id}/fill-budget"
    log_in(client, staff)
    set_limit = form_post(client, mine, mine, {"limit": "30.00"})
    assert set_limit.status_code == 303
    page = client.get(set_limit.headers["location"], headers=HTML)
    assert "The budget&#39;s limit is saved." in page.text
    assert "$30.00" in page.text

    team_id, seats = team_of(client, services, deal.id, 3)
    client.cookies.clear()
    for seat in seats[:2]:
        pay(client, *seat)
    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()

    log_in(client, staff)
    listed = client.get(mine, headers=HTML).text
    assert team_id in listed
    assert "$15.00" in listed  # used: one seat at the group price
    shown = client.get(f"/teams/{team_id}", headers=HTML).text
    assert f"Filled by {merchant.name}" in shown
    speak_chinese(services, staff)
    assert f"由{merchant.name}补位" in client.get(f"/teams/{team_id}", headers=HTML).text

    ops = "/console/operator/fill-budget"
    client.cookies.clear()
    log_in(client, operator)
    refused = form_post(client, ops, ops, {"currency": "usd", "limit": "abc"})
    assert refused.status_code == 303
    assert "error=" in refused.headers["location"]
    saved = form_post(client, ops, ops, {"currency": "usd", "limit": "100"})
    page = client.get(saved.headers["location"], headers=HTML).text
    assert "$100.00" in page
    client.cookies.clear()
    log_in(client, staff)
    assert client.get(ops, headers=HTML).status_code == 403
