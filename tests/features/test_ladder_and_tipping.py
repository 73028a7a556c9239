"""Ladder teams (阶梯团) and tipping points, through the API and the worker: a ladder team fills
up to its top tier, succeeds at its window's end from its first tier, and everyone gets back
the difference to the tier reached; a tipping deal's full teams wait, their money held, until
the deal's paid seats reach the threshold, and fail with their money back if they never do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.deals.models import Deal
from pintuan.domain.ladder import Ladder, Tier, refund_for
from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.teams.models import Team
from pintuan.teams.service import DueTeam, close_expired_teams
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant, deal_body
from tests.features.test_ledger import pay, wallet
from tests.features.vouchering import sound

# 2 → 15.00 (the deal's own team size and group price), 3 → 13.00, 5 → 10.00.
TIERS = (Tier(3, 1300), Tier(5, 1000))


def team_of(
    client: TestClient, services: Services, deal_id: str, members: int
) -> tuple[str, list[tuple[Account, str]]]:
    shoppers = [create_account(services) for _ in range(members)]
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers)
    assert started.status_code == 201, started.text
    team_id = started.json()["team"]["id"]
    seats = [(shoppers[0], started.json()["seat"]["id"])]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{team_id}/seats", headers=shopper.headers)
        assert joined.status_code == 201, joined.text
        seats.append((shopper, joined.json()["seat"]["id"]))
    return team_id, seats


def team(services: Services, team_id: str) -> Team:
    found = services.db.run_sync(lambda s: s.get(Team, team_id), write=False)
    assert found is not None
    return found


def ladder_refunds(services: Services) -> list[tuple[str, int, str]]:
    return services.db.run_sync(
        lambda s: sorted(
            (r.seat_id, r.amount, r.destination)
            for r in s.scalars(select(Refund).where(Refund.source == "ladder"))
        ),
        write=False,
    )


def test_a_ladder_team_filled_to_its_top_tier_succeeds_at_once_and_everyone_pays_that_tier(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, ladder=TIERS)
    team_id, seats = team_of(client, services, deal.id, 5)
    assert team(services, team_id).team_size == 5
    assert team(services, team_id).min_size == 2
    for shopper, seat_id in seats[:4]:
        pay(client, shopper, seat_id)
    assert team(services, team_id).status == "forming"  # 4 paid: it keeps filling

    pay(client, *seats[4])
    Worker(services).run_until_idle()

    assert team(services, team_id).status == "succeeded"
    assert team(services, team_id).ladder_price == 1000
    assert ladder_refunds(services) == sorted((seat, 500, "original") for _, seat in seats)
    shown = client.get(f"/v1/teams/{team_id}").json()
    assert shown["ladder"]["reached"]["price"]["amount"] == 1000
    assert shown["ladder"]["next"] is None
    sound(services)
    # Refunded once, however often the worker passes.
    Worker(services).run_until_idle()
    assert len(ladder_refunds(services)) == 5


def test_at_its_window_end_a_ladder_team_succeeds_at_the_tier_its_paid_seats_reached(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, ladder=TIERS)
    team_id, seats = team_of(client, services, deal.id, 4)
    for shopper, seat_id in seats[:3]:
        pay(client, shopper, seat_id, refund_to="wallet")
    shown = client.get(f"/v1/teams/{team_id}").json()["ladder"]
    assert shown["reached"]["size"] == 3  # four members, three paid: the tier of 3 is secured
    assert (shown["next"]["size"], shown["next"]["price"]["amount"]) == (5, 1000)
    assert shown["secured"] is True

    clock.offset = timedelta(days=2)  # past the window: the fourth never paid
    Worker(services).run_until_idle()

    ended = team(services, team_id)
    assert (ended.status, ended.ladder_price, ended.taken) == ("succeeded", 1300, 3)
    paid = [seat for _, seat in seats[:3]]
    assert ladder_refunds(services) == sorted((seat, 200, "wallet") for seat in paid)
    for shopper, _ in seats[:3]:
        assert wallet(services, shopper.user_id) == 200
    sound(services)


def test_a_seat_of_a_ladder_team_is_not_cancelled_after_its_window_ended_before_the_sweep(
    client: TestClient, services: Services
) -> None:
    # Given a ladder team whose three paid seats secure its first tier
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, ladder=TIERS)
    team_id, seats = team_of(client, services, deal.id, 4)
    for shopper, seat_id in seats[:3]:
        pay(client, shopper, seat_id)

    # When its window has ended, and before the sweep ends it, a paid member cancels
    clock.offset = timedelta(days=2)
    shopper, seat_id = seats[2]
    cancelled = client.post(f"/v1/seats/{seat_id}/cancel", headers=shopper.headers)

    # Then the cancel is refused, and the team succeeds with its three paid seats as it stood
    assert (cancelled.status_code, cancelled.json()["code"]) == (409, "team_closed")
    Worker(services).run_until_idle()
    ended = team(services, team_id)
    assert (ended.status, ended.taken) == ("succeeded", 3)
    sound(services)


def test_a_ladder_team_short_of_its_first_tier_fails_and_gives_everything_back(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, ladder=TIERS)
    team_id, seats = team_of(client, services, deal.id, 2)
    paid = pay(client, *seats[0])

    clock.offset = timedelta(days=2)
    Worker(services).run_until_idle()

    assert team(services, team_id).status == "failed"
    voided = services.db.run_sync(lambda s: s.get(Payment, paid["id"]), write=False)
    assert voided is not None
    assert voided.status == "voided"
    assert ladder_refunds(services) == []
    sound(services)


def test_a_ladder_must_climb_and_cannot_be_a_lottery(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    def create(**body: Any) -> Any:
        return client.post("/v1/deals", json=deal_body(merchant.id, **body), headers=staff.headers)

    def tier(size: int, amount: int, currency: str = "USD") -> dict[str, Any]:
        return {"size": size, "price": {"amount": amount, "currency": currency}}

    good = create(team_size=2, ladder=[tier(4, 5000), tier(8, 4000)])
    assert good.status_code == 201, good.text
    assert [(t["size"], t["price"]["amount"]) for t in good.json()["ladder"]] == [
        (4, 5000),
        (8, 4000),
    ]
    refused = {
        "smaller": create(team_size=4, ladder=[tier(3, 5000)]),
        "dearer": create(team_size=2, ladder=[tier(4, 5900)]),
        "not climbing": create(team_size=2, ladder=[tier(4, 5000), tier(4, 4000)]),
        "lottery": create(team_size=2, ladder=[tier(4, 5000)], lottery={"winners": 1}),
        "currency": create(team_size=2, ladder=[tier(4, 5000, "EUR")]),
        "tipping": create(team_size=2, ladder=[tier(4, 5000)], tipping_point=10),
    }
    for why, answer in refused.items():
        assert answer.status_code == 422, (why, answer.text)
        assert answer.json()["code"] == "validation_error", why
    # A published deal's ladder is frozen: its teams formed on those terms.
    deal_id = good.json()["id"]
    assert client.post(f"/v1/deals/{deal_id}/publish", headers=staff.headers).status_code == 200
    frozen = client.patch(
        f"/v1/deals/{deal_id}", json={"ladder": [tier(3, 5000)]}, headers=staff.headers
    )
    assert frozen.status_code == 409
    assert frozen.json()["code"] == "deal_not_editable"


def test_a_tipping_deal_holds_its_full_teams_until_the_threshold_then_they_all_succeed(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, tipping_point=4)
    first, first_seats = team_of(client, services, deal.id, 2)
    payments = [pay(client, *seat) for seat in first_seats]
    Worker(services).run_until_idle()

    waiting = team(services, first)
    assert waiting.status == "forming"  # full and paid, waiting for the deal
    assert waiting.expires_at == deal.ends_at  # it waits until the deal's end
    assert {p.status for p in _payments(services, payments)} == {"authorized"}  # held only
    shown = client.get(f"/v1/deals/{deal.id}").json()
    assert (shown["tipping_point"], shown["tipped_at"]) == (4, None)

    second, second_seats = team_of(client, services, deal.id, 2)
    payments += [pay(client, *seat) for seat in second_seats]
    Worker(services).run_until_idle()

    assert {team(services, t).status for t in (first, second)} == {"succeeded"}
    assert {p.status for p in _payments(services, payments)} == {"captured"}
    assert client.get(f"/v1/deals/{deal.id}").json()["tipped_at"] is not None
    # After the tip, a team succeeds as soon as it is full and paid.
    third, third_seats = team_of(client, services, deal.id, 2)
    for seat in third_seats:
        pay(client, *seat)
    assert team(services, third).status == "succeeded"
    sound(services)


def test_a_deal_that_never_tips_fails_its_waiting_teams_and_gives_the_money_back(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, tipping_point=6)
    waiting, seats = team_of(client, services, deal.id, 2)
    payments = [pay(client, *seat) for seat in seats]
    Worker(services).run_until_idle()
    assert team(services, waiting).status == "forming"

    clock.offset = timedelta(days=8)  # past the deal's end
    Worker(services).run_until_idle()

    assert team(services, waiting).status == "failed"
    assert {p.status for p in _payments(services, payments)} == {"refunded"}
    sound(services)


def test_a_waiting_team_the_sweep_found_due_is_not_ended_once_its_deal_runs_longer(
    client: TestClient, services: Services
) -> None:
    # Given a full, paid team waiting for its deal to tip, which the sweep found due, and whose
    # deal's end then moved later (its window with it) before the sweep ended it
    deal = create_deal(services.db, create_merchant(services.db), team_size=2, tipping_point=4)
    waiting, seats = team_of(client, services, deal.id, 2)
    for seat in seats:
        pay(client, *seat)
    Worker(services).run_until_idle()
    assert team(services, waiting).expires_at > clock.now()

    # When the sweep ends what it found, under the teams' locks
    ended = services.db.run_raw_sync(close_expired_teams, [DueTeam(waiting, deal.id)], clock.now())

    # Then the team, whose window is not over, still waits
    assert ended == ([], [])
    assert team(services, waiting).status == "forming"
    sound(services)


def test_a_team_that_stopped_waiting_still_ends_with_its_deal_when_the_end_moves_earlier(
    client: TestClient, services: Services
) -> None:
    # given a full, paid team waiting for its deal to tip (its window is the deal's end)
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, team_size=2, tipping_point=4)
    waiting, seats = team_of(client, services, deal.id, 2)
    payments = [pay(client, *seat) for seat in seats]
    Worker(services).run_until_idle()
    assert team(services, waiting).expires_at == deal.ends_at
    # and a member who gives up their seat, so the team no longer waits
    shopper, seat_id = seats[1]
    cancelled = client.post(f"/v1/seats/{seat_id}/cancel", headers=shopper.headers)
    assert cancelled.status_code == 200, cancelled.text

    # when the merchant moves the deal's end to a minute from now, and it passes
    soon = clock.now() + timedelta(minutes=1)
    moved = client.patch(
        f"/v1/deals/{deal.id}", json={"ends_at": soon.isoformat()}, headers=staff.headers
    )
    assert moved.status_code == 200, moved.text
    assert team(services, waiting).expires_at == soon  # it ends with its deal
    clock.offset += timedelta(minutes=2)
    Worker(services).run_until_idle()

    # then the team failed with its deal, and no payment is left held for it
    assert team(services, waiting).status == "failed"
    assert "authorized" not in {p.status for p in _payments(services, payments)}
    sound(services)


def test_teams_of_one_make_a_plain_group_purchase_and_need_a_tipping_point(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    alone = client.post(
        "/v1/deals", json=deal_body(merchant.id, team_size=1), headers=staff.headers
    )
    assert alone.status_code == 422
    created = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, team_size=1, tipping_point=3, allow_solo=False),
        headers=staff.headers,
    )
    assert created.status_code == 201, created.text
    deal_id = created.json()["id"]
    assert client.post(f"/v1/deals/{deal_id}/publish", headers=staff.headers).status_code == 200

    bought = [team_of(client, services, deal_id, 1) for _ in range(3)]
    for team_id, seats in bought[:2]:
        pay(client, *seats[0])
        assert team(services, team_id).status == "forming"
    pay(client, *bought[2][1][0])

    assert {team(services, t).status for t, _ in bought} == {"succeeded"}
    Worker(services).run_until_idle()
    sound(services)


def test_the_ladder_arithmetic() -> None:
    ladder = Ladder.of(2, 1500, TIERS)
    assert [ladder.reached(n) for n in (1, 2, 3, 4, 5)] == [
        None,
        Tier(2, 1500),
        Tier(3, 1300),
        Tier(3, 1300),
        Tier(5, 1000),
    ]
    assert [ladder.next_after(n) for n in (1, 2, 4, 5)] == [
        Tier(2, 1500),
        Tier(3, 1300),
        Tier(5, 1000),
        None,
    ]
    assert refund_for(1500, 1000) == 500
    assert refund_for(900, 1000) == 0  # a leader's price below the tier keeps its bargain


def _payments(services: Services, paid: list[dict[str, Any]]) -> list[Payment]:
    ids = [p["id"] for p in paid]
    return services.db.run_sync(
        lambda s: list(s.scalars(select(Payment).where(Payment.id.in_(ids)))), write=False
    )


def _deal(services: Services, deal_id: str) -> Deal | None:
    return services.db.run_sync(lambda s: s.get(Deal, deal_id), write=False)
