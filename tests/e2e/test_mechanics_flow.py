"""Group-buy mechanics in a real browser at 375 px, with the worker running in the server's
process: a leader reward paid back to the leader after the team fills, a lottery team whose
winner's page says so while the others read that they were refunded, and a pickup deal chosen
on the team page, marked arrived and handed over by the shopper's code at the point (the leader
at 1280 px), which the shopper then reads as collected; and a lottery's loser who finds their
coupon on their orders and takes it off the price of their next order at the merchant. axe
finds no serious or critical problem, and the phone pages scroll down only."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from pintuan.domain.coupons import CouponTerms
from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.domain.roles import Role
from tests.e2e.browsing import Shopper, reload_until, screenshot
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import fits_the_width
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body

REWARD_REASON = "Leader reward: your team succeeded."
WON = "Your seat won the lottery: your order goes ahead."
REFUNDED = "Your seat was not drawn, and was refunded in full."


def api(server: LiveServer, account: Account) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, headers=account.headers)


def pay_over_api(client: httpx.Client, seat_id: str) -> None:
    payment = client.post(f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"})
    assert payment.status_code == 201, payment.text
    paid = client.post(f"/v1/test_helpers/payments/{payment.json()['id']}/succeed")
    assert paid.status_code == 200, paid.text


def fill_team(server: LiveServer, shoppers: list[Account], deal_id: str) -> tuple[str, list[str]]:
    """The first shopper starts the team, every one joins and pays through the sandbox: the
    team fills. Returns the team and its seats, in the shoppers' order."""
    team_id, seat_ids = "", []
    for shopper in shoppers:
        with api(server, shopper) as client:
            taken = (
                client.post(f"/v1/teams/{team_id}/seats")
                if team_id
                else client.post(f"/v1/deals/{deal_id}/teams")
            )
            assert taken.status_code == 201, taken.text
            team_id = team_id or str(taken.json()["team"]["id"])
            seat_ids.append(str(taken.json()["seat"]["id"]))
            pay_over_api(client, seat_ids[-1])
    return team_id, seat_ids


def logged_in(browser: Browser, server: LiveServer, account: Account, path: str) -> Shopper:
    shopper = Shopper(browser, server.url)
    shopper.open(f"/login?next={path}")
    shopper.log_in(account.email)
    return shopper


def test_the_leader_of_a_team_that_fills_finds_the_reward_refunded_on_the_order(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    deal = create_deal(
        services.db,
        merchant,
        team_size=2,
        title="Hotpot for two",
        leader_reward=LeaderReward(RewardKind.FIXED, 300),
    )
    lin, wang = create_account(services, name="Lin Mei"), create_account(services, name="Wang")
    problems: list[dict[str, Any]] = []

    leader = logged_in(browser, live_server, lin, f"/deals/{deal.id}")
    page = leader.page
    expect(page.locator(".mechanic-reward")).to_have_text(
        "The leader of each team that fills gets $3.00 back."
    )
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-reward-deal")

    fill_team(live_server, [lin, wang], deal.id)
    page = leader.open("/orders")
    reload_until(page, REWARD_REASON)
    refund = page.locator(".order-refund").filter(has_text=REWARD_REASON)
    expect(refund).to_contain_text("$3.00")
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-reward-refunded")
    leader.close()

    assert problems == [], [p["targets"] for p in problems]


def test_a_lottery_team_tells_its_winner_they_won_and_the_others_they_were_refunded(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, team_size=3, title="Lucky tea", lottery_winners=1)
    shoppers = [create_account(services, name=name) for name in ("Lin", "Wang", "Zhao")]
    problems: list[dict[str, Any]] = []

    # The draw happens in the transaction in which the team fills.
    team_id, seat_ids = fill_team(live_server, shoppers, deal.id)
    record = httpx.get(f"{live_server.url}/v1/deals/{deal.id}/lottery", timeout=10).json()
    (drawn,) = record["draws"]
    (winning_seat,) = drawn["winners"]
    winner = shoppers[seat_ids.index(winning_seat)]
    loser = next(s for s, seat in zip(shoppers, seat_ids, strict=True) if seat != winning_seat)

    won = logged_in(browser, live_server, winner, f"/teams/{team_id}")
    page = won.page
    expect(page.locator(".mechanic-lottery")).to_contain_text(
        "Lottery: 1 of the 3 seats wins; the others are refunded in full."
    )
    expect(page.locator(".mechanic-lottery code")).to_have_text(record["commitment"][:12] + "…")
    expect(page.locator(".lottery-outcome")).to_have_text(WON)
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-lottery-won")
    won.close()

    # The worker refunds the others once their money is the merchant's.
    lost = logged_in(browser, live_server, loser, f"/teams/{team_id}")
    page = lost.page
    reload_until(page, REFUNDED)
    expect(page.locator(".lottery-outcome")).to_have_text(REFUNDED)
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-lottery-refunded")
    page = lost.open("/orders")
    expect(page.locator(".order-refund")).to_contain_text(
        "Lottery team: this seat was not drawn; refunded in full."
    )
    lost.close()

    assert problems == [], [p["targets"] for p in problems]


def test_a_lottery_loser_finds_a_coupon_and_takes_it_off_their_next_order(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    deal = create_deal(
        services.db,
        merchant,
        team_size=3,
        title="Lucky noodles",
        lottery_winners=1,
        lottery_coupon=CouponTerms(300, 30),
    )
    later = create_deal(services.db, merchant, team_size=2, title="Dumplings for two")
    shoppers = [create_account(services, name=name) for name in ("Lin", "Wang", "Zhao")]
    problems: list[dict[str, Any]] = []
    _, seat_ids = fill_team(live_server, shoppers, deal.id)
    (winning_seat,) = httpx.get(f"{live_server.url}/v1/deals/{deal.id}/lottery", timeout=10).json()[
        "draws"
    ][0]["winners"]
    loser = next(s for s, seat in zip(shoppers, seat_ids, strict=True) if seat != winning_seat)

    lost = logged_in(browser, live_server, loser, f"/deals/{deal.id}")
    page = lost.page
    expect(page.locator(".mechanic-lottery")).to_contain_text("plus a $3.00 coupon")
    page = lost.open("/orders")
    coupon = page.locator(".coupon-list .coupon")
    expect(coupon).to_contain_text("$3.00 off")
    expect(coupon).to_contain_text("Available")
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-lottery-coupon")

    # A team of the merchant's other deal: the coupon comes off its price before paying.
    with api(live_server, loser) as client:
        started = client.post(f"/v1/deals/{later.id}/teams")
    assert started.status_code == 201, started.text
    page = lost.open(f"/teams/{started.json()['team']['id']}")
    expect(page.get_by_role("button", name="Pay $15.00")).to_be_visible()
    expect(page.locator(".coupon-form")).to_contain_text("$3.00 off")
    fits_the_width(page)
    problems += blocking_violations(page)
    page.get_by_role("button", name="Take it off the price").click()
    expect(page.locator("#coupon-applied")).to_have_text("Coupon applied: you now pay $12.00.")
    expect(page.get_by_role("button", name="Pay $12.00")).to_be_visible()
    expect(page.locator(".coupon-form")).to_have_count(0)
    screenshot(page, "mechanics-coupon-applied")
    page = lost.open("/orders")
    expect(page.locator(".coupon-list .coupon")).to_contain_text("On an order")
    lost.close()

    assert problems == [], [p["targets"] for p in problems]


def open_pickup_point(server: LiveServer, leader: Account, operator: Account) -> dict[str, Any]:
    with api(server, leader) as client:
        applied = client.post(
            "/v1/pickup-points",
            json={
                "name": "Maple Court lobby",
                "address": "12 Maple Court, Jing'an",
                "opening_hours": "Daily 9:00-21:00",
                "capacity_per_day": 50,
            },
        )
    assert applied.status_code == 201, applied.text
    with api(server, operator) as client:
        decided = client.post(
            f"/v1/pickup-points/{applied.json()['id']}/decision", json={"approve": True}
        )
    assert decided.status_code == 200, decided.text
    return dict(decided.json())


def test_a_pickup_order_is_chosen_marked_arrived_handed_over_and_shown_collected(
    browser: Browser, live_server: LiveServer
) -> None:
    services = live_server.services
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    point_leader = create_account(services, name="Auntie Zhou")
    point = open_pickup_point(
        live_server, point_leader, create_account(services, role=Role.OPERATOR)
    )
    body = deal_body(
        merchant.id,
        title="Fresh lychees",
        vertical="goods",
        team_size=2,
        pickup={"commission_bps": 500, "unclaimed_days": 3},
    )
    with api(live_server, staff) as client:
        made = client.post("/v1/deals", json=body)
        assert made.status_code == 201, made.text
        deal_id = str(made.json()["id"])
        assert client.post(f"/v1/deals/{deal_id}/publish").status_code == 200
    lin, wang = create_account(services, name="Lin Mei"), create_account(services, name="Wang")
    problems: list[dict[str, Any]] = []

    # Lin starts a team on her phone: first the pickup point, then the payment.
    shopper = logged_in(browser, live_server, lin, f"/deals/{deal_id}")
    page = shopper.page
    expect(page.locator(".mechanic-pickup")).to_have_text("Collect at a pickup point")
    page.get_by_role("button", name=re.compile("^Start a team")).click()
    page.wait_for_load_state()
    page.get_by_label(re.compile("Maple Court lobby")).check()
    page.get_by_role("button", name="Collect here").click()
    page.wait_for_load_state()
    expect(page.locator("#pickup .notice")).to_have_text(
        "Your order will wait for you at this pickup point."
    )
    code = (page.locator("#pickup .voucher-code").text_content() or "").strip()
    assert re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", code), code
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-pickup-chosen")
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    shopper.pay_on_sandbox()

    # Wang joins over the API, chooses the same point and pays: the team fills.
    with api(live_server, wang) as client:
        team_id = page.url.split("/teams/", 1)[1].split("?")[0].split("#")[0]
        joined = client.post(f"/v1/teams/{team_id}/seats")
        assert joined.status_code == 201, joined.text
        seat_id = joined.json()["seat"]["id"]
        chosen = client.post(f"/v1/seats/{seat_id}/pickup", json={"pickup_point_id": point["id"]})
        assert chosen.status_code in (200, 201), chosen.text
        pay_over_api(client, seat_id)

    # At the point, on a wide screen: the goods arrive, Lin's code hands her order over.
    counter = Shopper(browser, live_server.url)
    cpage = counter.page
    cpage.set_viewport_size(DESKTOP)
    counter.open(f"/login?next=/pickup-points/{point['id']}")
    counter.log_in(point_leader.email)
    arrived = cpage.get_by_role("button", name="The goods of Fresh lychees have arrived")
    reload_until(cpage, "The goods of Fresh lychees have arrived")
    arrived.click()
    cpage.wait_for_load_state()
    expect(cpage.locator("#main .notice")).to_have_text(
        "The goods are marked as arrived; their shoppers are told."
    )
    cpage.locator("#pickup-code").fill(code.lower())
    cpage.get_by_role("button", name="Hand over", exact=True).click()
    cpage.wait_for_load_state()
    expect(cpage.locator("#main .notice")).to_have_text(
        "Handed over: your commission is frozen until the order's refund window closes, then "
        "paid into your wallet."
    )
    problems += blocking_violations(cpage)
    screenshot(cpage, "mechanics-pickup-handed-over")
    counter.close()

    # Lin reads on her phone that her order was collected.
    page = shopper.open("/orders")
    collected = page.locator(".voucher.pickup").first
    expect(collected).to_contain_text("Handed over")
    expect(collected).to_contain_text(re.compile(r"Collected on .+\."))
    fits_the_width(page)
    problems += blocking_violations(page)
    screenshot(page, "mechanics-pickup-collected")
    shopper.close()

    assert problems == [], [p["targets"] for p in problems]
