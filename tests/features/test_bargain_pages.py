"""The pages of bargains: the merchant sets a deal's bargain terms in the console; the deal page
offers "Start a bargain"; its page, shared by link, shows the price reached, the floor, the
progress, the deadline and the helpers, gives each browser a device cookie, lets a signed-in
friend help cut and lets the owner buy at the price reached, straight into the checkout; "My
bargains" lists them; Chinese viewers read it all in Chinese."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.bargains.models import Bargain, BargainTerms
from pintuan.domain.roles import Role
from pintuan.services import Services
from pintuan.web.kit.i18n import gettext
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_bargains import FLOOR, LIST_PRICE, bargain_deal, helpers


def only_bargain(services: Services) -> Bargain:
    (found,) = services.db.run_sync(lambda s: list(s.scalars(select(Bargain))), write=False)
    return found


def test_staff_set_change_and_remove_a_deals_bargain_terms_in_the_console(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, list_price=LIST_PRICE)
    page = f"/console/merchants/{merchant.id}/deals/{deal.id}/bargain"
    log_in(client, staff)
    assert (
        f'href="{page}"' in client.get(f"/console/merchants/{merchant.id}/deals", headers=HTML).text
    )

    refused = form_post(client, page, page, {"floor": "100.00", "helpers": "5", "hours": "24"})
    assert refused.status_code == 422
    assert "Check the fields" in refused.text
    saved = form_post(client, page, page, {"floor": "20.00", "helpers": "5", "hours": "24"})
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"], headers=HTML).text
    assert "Your changes are saved." in shown
    assert "From $100.00 down to $20.00 with 5 friends' help, within 24 hours." in shown
    terms = services.db.run_sync(lambda s: s.get(BargainTerms, deal.id), write=False)
    assert terms is not None
    assert (terms.floor_amount, terms.helpers, terms.hours) == (2_000, 5, 24)

    removed = form_post(client, page, f"{page}/remove", {})
    assert removed.status_code == 303
    assert (
        "The bargain terms are removed."
        in client.get(removed.headers["location"], headers=HTML).text
    )
    assert services.db.run_sync(lambda s: s.get(BargainTerms, deal.id), write=False) is None


def test_a_shopper_starts_a_bargain_friends_cut_it_and_the_owner_buys_at_the_price_reached(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=2)
    owner = create_account(services, name="Lin Mei")
    (friend,) = helpers(services, 1)
    log_in(client, owner)
    deal_page = client.get(f"/deals/{world.deal.id}", headers=HTML).text
    assert "Start a bargain: friends cut it to $20.00" in deal_page

    started = form_post(client, f"/deals/{world.deal.id}", f"/deals/{world.deal.id}/bargains", {})
    assert started.status_code == 303
    bargain = only_bargain(services)
    assert started.headers["location"].startswith(f"/bargains/{bargain.id}?done=opened")
    own = client.get(started.headers["location"], headers=HTML)
    assert "Your bargain is open: share it so friends cut the price." in own.text
    assert "$100.00" in own.text
    assert "Lowest price $20.00" in own.text
    assert "0 of 2 friends have helped" in own.text
    assert f"/bargains/{bargain.id}" in own.text  # the link to share
    assert "Buy at $100.00" in own.text
    assert "Help cut the price" not in own.text  # not to its owner
    device_cookie = own.headers["set-cookie"]
    assert "pt_device=" in device_cookie
    assert "HttpOnly" in device_cookie
    assert "samesite=lax" in device_cookie.lower()

    helper_browser = TestClient(client.app, client=("203.0.113.7", 40000))
    anonymous = helper_browser.get(f"/bargains/{bargain.id}", headers=HTML).text
    assert "Log in to help cut the price" in anonymous
    log_in(helper_browser, friend)
    cut = form_post(helper_browser, f"/bargains/{bargain.id}", f"/bargains/{bargain.id}/cuts", {})
    assert cut.status_code == 303
    after = helper_browser.get(cut.headers["location"], headers=HTML).text
    assert "Thank you: you cut the price." in after
    reached = only_bargain(services).price_amount
    assert FLOOR < reached < LIST_PRICE
    assert "1 of 2 friends have helped" in after
    assert "Friend 0" in after
    assert friend.user_id not in after
    again = form_post(helper_browser, f"/bargains/{bargain.id}", f"/bargains/{bargain.id}/cuts", {})
    assert again.headers["location"].endswith("error=bargain_already_cut#bargain")
    assert (
        "You have helped cut this bargain already."
        in helper_browser.get(again.headers["location"], headers=HTML).text
    )

    price = f"${reached / 100:,.2f}"
    assert f"Buy at {price}" in client.get(f"/bargains/{bargain.id}", headers=HTML).text
    bought = form_post(client, f"/bargains/{bargain.id}", f"/bargains/{bargain.id}/purchase", {})
    assert bought.status_code == 303
    assert "/sandbox/checkout/" in bought.headers["location"]
    held = client.get(f"/bargains/{bargain.id}", headers=HTML).text
    assert f"Pay for your order at {price}" in held
    mine = client.get("/bargains", headers=HTML).text
    assert "Rice cooker" in mine
    assert f"/bargains/{bargain.id}" in mine


def test_chinese_viewers_read_the_bargain_page_and_the_refusals_in_chinese(
    client: TestClient, services: Services
) -> None:
    world = bargain_deal(client, services, helpers=2)
    owner = create_account(services)
    speak_chinese(services, owner)
    log_in(client, owner)
    form_post(client, f"/deals/{world.deal.id}", f"/deals/{world.deal.id}/bargains", {})
    bargain = only_bargain(services)

    page = client.get(f"/bargains/{bargain.id}", headers=HTML).text
    refused = client.get(f"/bargains/{bargain.id}?error=bargain_own", headers=HTML).text

    for words in (
        "Friends who helped",
        "Ask friends to help",
        "Nobody has helped yet: be the first.",
    ):
        translated = gettext("zh_Hans", words)
        assert translated != words
        assert translated in page
    assert gettext("zh_Hans", "Friends cut your bargain; you cannot cut it yourself.") in refused
    assert re.search(r"<html[^>]+lang=\"zh-Hans\"", page)
    assert "Help cut the price" not in page
