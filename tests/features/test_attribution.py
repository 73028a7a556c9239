"""Last-touch attribution: the window, self-visits, bots, linking visitors, and the invite tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.domain.traffic import Channel
from pintuan.services import Services
from pintuan.shares.models import Invite, ShareVisit, VisitorLink
from pintuan.worker import Worker
from tests.factories import create_account, create_merchant
from tests.features.sharing import (
    PHONE,
    WHATSAPP_PREVIEW,
    credits,
    join,
    long_deal,
    move_to,
    pay,
    share,
    sign_in,
    start,
    visit,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def attribute(services: Services) -> None:
    Worker(services).run_until_idle()


def test_an_order_six_days_and_23_hours_after_the_visit_is_credited_to_the_share(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    sharer, friend = create_account(services), create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    sign_in(services, visit(services, shared), friend)

    move_to(T0 + timedelta(days=6, hours=23))
    start(services, friend, deal.id)
    attribute(services)

    assert credits(services, shared.id) == {"start": 1}


def test_an_order_seven_days_and_a_minute_after_the_visit_is_not_credited(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    sharer, friend = create_account(services), create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    sign_in(services, visit(services, shared), friend)

    move_to(T0 + timedelta(days=7, minutes=1))
    start(services, friend, deal.id)
    attribute(services)

    assert credits(services, shared.id) == {}


def test_the_last_qualifying_visit_wins_and_later_visits_do_not_count(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    first_sharer, second_sharer, late_sharer, friend = (create_account(services) for _ in range(4))
    first = share(services, first_sharer, deal_id=deal.id)
    second = share(services, second_sharer, deal_id=deal.id, channel=Channel.LINE)
    late = share(services, late_sharer, deal_id=deal.id)
    visitor = visit(services, first)
    sign_in(services, visitor, friend)
    move_to(T0 + timedelta(hours=1))
    visit(services, second, visitor)

    move_to(T0 + timedelta(hours=2))
    started = start(services, friend, deal.id)
    move_to(T0 + timedelta(hours=2, minutes=1))
    visit(services, late, visitor)
    pay(services, started.seat.id)
    attribute(services)

    assert credits(services, first.id) == {}
    assert credits(services, second.id) == {"start": 1, "pay": 1}
    assert credits(services, late.id) == {}


def test_a_visit_to_another_deal_does_not_bring_an_order(services: Services) -> None:
    move_to(T0)
    merchant = create_merchant(services.db)
    seen, bought = long_deal(services, merchant), long_deal(services, merchant)
    sharer, friend = create_account(services), create_account(services)
    shared = share(services, sharer, deal_id=seen.id)
    sign_in(services, visit(services, shared), friend)

    start(services, friend, bought.id)
    attribute(services)

    assert credits(services, shared.id) == {}


def test_the_sharer_opening_their_own_link_is_flagged_and_never_credited(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    sharer = create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    signed_in_visit = visit(services, shared, user=sharer)
    # On another phone, not signed in yet; signing in later makes it theirs too.
    other_phone = visit(services, shared)
    sign_in(services, other_phone, sharer)

    start(services, sharer, deal.id)
    attribute(services)

    flags = services.db.run_sync(
        lambda s: dict(s.execute(select(ShareVisit.visitor_id, ShareVisit.is_self)).all())
    )
    assert flags == {signed_in_visit: True, other_phone: False}
    assert credits(services, shared.id) == {}


def test_a_visit_from_a_known_device_of_the_sharer_is_a_self_visit(services: Services) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    sharer = create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    phone = visit(services, shared, user=sharer)

    move_to(T0 + timedelta(hours=1))
    visit(services, shared, phone)  # signed out now, same browser

    flags = services.db.run_sync(lambda s: s.scalars(select(ShareVisit.is_self)).all())
    assert flags == [True, True]


def test_bots_and_link_previews_are_logged_but_never_credited_nor_linked(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db))
    sharer, friend = create_account(services), create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    preview = visit(services, shared, user=friend, user_agent=WHATSAPP_PREVIEW)
    crawler = visit(services, shared, user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
    sign_in(services, crawler, friend)

    start(services, friend, deal.id)
    attribute(services)

    bots = services.db.run_sync(lambda s: s.scalars(select(ShareVisit.is_bot)).all())
    links = services.db.run_sync(lambda s: s.scalars(select(VisitorLink.visitor_id)).all())
    assert bots == [True, True]
    assert preview not in links
    assert credits(services, shared.id) == {}


def test_a_joined_paid_and_filled_team_credits_join_pay_and_success_to_the_same_share(
    services: Services,
) -> None:
    move_to(T0)
    deal = long_deal(services, create_merchant(services.db), team_size=2)
    leader, friend = create_account(services), create_account(services)
    started = start(services, leader, deal.id)
    pay(services, started.seat.id)
    shared = share(services, leader, team_id=started.team_id, channel=Channel.WHATSAPP)
    sign_in(services, visit(services, shared), friend)

    seat = join(services, friend, started.team_id)
    attribute(services)
    after_join = credits(services, shared.id)
    pay(services, seat.id)
    attribute(services)

    assert after_join == {"join": 1}
    assert credits(services, shared.id) == {"join": 1, "pay": 1, "success": 1}


def test_the_first_order_a_share_brings_makes_the_sharer_the_shoppers_inviter_once(
    services: Services,
) -> None:
    move_to(T0)
    merchant = create_merchant(services.db)
    first_deal, second_deal = long_deal(services, merchant), long_deal(services, merchant)
    alice, bob, carol = (create_account(services) for _ in range(3))
    shared = share(services, alice, deal_id=first_deal.id)
    sign_in(services, visit(services, shared), bob)
    start(services, bob, first_deal.id)
    # Bob later comes back through Carol's share: his inviter stays Alice.
    move_to(T0 + timedelta(hours=1))
    again = share(services, carol, deal_id=second_deal.id)
    sign_in(services, visit(services, again), bob)
    start(services, bob, second_deal.id)
    attribute(services)

    invites = services.db.run_sync(
        lambda s: s.execute(select(Invite.inviter_id, Invite.invitee_id, Invite.channel)).all()
    )
    assert [tuple(row) for row in invites] == [(alice.user_id, bob.user_id, "wechat")]
    assert credits(services, again.id) == {"start": 1}


def test_an_invite_never_closes_a_loop(services: Services) -> None:
    move_to(T0)
    merchant = create_merchant(services.db)
    deal = long_deal(services, merchant)
    alice, bob = create_account(services), create_account(services)
    # Alice shares before ever buying; Bob's first order comes through her share.
    alices = share(services, alice, deal_id=deal.id)
    sign_in(services, visit(services, alices), bob)
    start(services, bob, deal.id)
    # Then Alice's own first order comes through Bob's share.
    move_to(T0 + timedelta(hours=1))
    bobs = share(services, bob, deal_id=deal.id)
    sign_in(services, visit(services, bobs), alice)
    start(services, alice, deal.id)
    attribute(services)

    invites = services.db.run_sync(
        lambda s: s.execute(select(Invite.inviter_id, Invite.invitee_id)).all()
    )
    assert [tuple(row) for row in invites] == [(alice.user_id, bob.user_id)]
    assert credits(services, bobs.id) == {"start": 1}


def test_opening_a_link_then_acting_signed_in_links_the_visitor_once(
    client: TestClient, services: Services
) -> None:
    deal = long_deal(services, create_merchant(services.db))
    sharer, friend = create_account(services), create_account(services)
    shared = share(services, sharer, deal_id=deal.id)
    client.headers["User-Agent"] = PHONE

    opened = client.get(f"/s/{shared.code}", follow_redirects=False)
    first = client.get("/v1/me", headers=friend.headers)
    second = client.get("/v1/me", headers=friend.headers)

    assert opened.status_code == 302
    links = services.db.run_sync(
        lambda s: s.execute(select(VisitorLink.visitor_id, VisitorLink.user_id)).all()
    )
    assert [tuple(r) for r in links] == [(client.cookies["pt_vid"], friend.user_id)]
    assert "pt_vl=" in first.headers.get("set-cookie", "")
    assert "set-cookie" not in second.headers


def test_the_journey_through_the_api_credits_the_join_to_the_share(
    client: TestClient, services: Services
) -> None:
    deal = long_deal(services, create_merchant(services.db), team_size=2)
    leader, friend = create_account(services), create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    made = client.post(
        f"/v1/teams/{started['team']['id']}/shares",
        json={"channel": "telegram"},
        headers=leader.headers,
    ).json()
    client.headers["User-Agent"] = PHONE

    client.get(f"/s/{made['code']}", follow_redirects=False)
    joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
    attribute(services)
    mine = client.get("/v1/me/shares", headers=leader.headers).json()["data"]

    assert joined.status_code == 201, joined.text
    assert mine[0]["code"] == made["code"]
    assert mine[0]["stats"] == {"visits": 1, "starts": 0, "joins": 1, "paid": 0, "successes": 0}
