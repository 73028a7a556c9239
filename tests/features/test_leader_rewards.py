"""Leader rewards (团长免单): the leader of each successful team of a deal that rewards them gets
part of their seat back (fixed, a share, or all of it), once their payment is the merchant's,
as a refund of source ``reward``: funded by the merchant (and the fee in proportion), once per
team whatever the workers do, nothing for a team that failed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant, deal_body
from tests.features.test_ledger import balance, pay, wallet
from tests.features.vouchering import sound

PRICE = 1500


def rewarded_team(
    client: TestClient,
    services: Services,
    reward: LeaderReward,
    *,
    succeed: bool = True,
    **paid: Any,
) -> tuple[str, list[Any], list[str]]:
    merchant = create_merchant(services.db)
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=1000)
        )
    )
    deal = create_deal(services.db, merchant, team_size=3, leader_reward=reward)
    shoppers = [create_account(services) for _ in range(3)]
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shoppers[0].headers).json()
    seats = [started["seat"]["id"]]
    for shopper in shoppers[1:]:
        joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=shopper.headers)
        seats.append(joined.json()["seat"]["id"])
    for shopper, seat_id in list(zip(shoppers, seats, strict=True))[: 3 if succeed else 2]:
        pay(client, shopper, seat_id, **paid)
    return merchant.id, shoppers, seats


def rewards_of(services: Services) -> list[tuple[str, int, str]]:
    return services.db.run_sync(
        lambda s: [
            (r.seat_id, r.amount, r.destination)
            for r in s.scalars(select(Refund).where(Refund.source == "reward"))
        ]
    )


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        (LeaderReward(RewardKind.FIXED, 300), 300),
        (LeaderReward(RewardKind.PERCENT, 2500), 375),
        (LeaderReward(RewardKind.FREE), PRICE),
        (LeaderReward(RewardKind.FIXED, 99_999), PRICE),  # never more than was paid
    ],
)
def test_the_leader_of_a_successful_team_gets_the_reward_once(
    client: TestClient, services: Services, reward: LeaderReward, expected: int
) -> None:
    merchant_id, shoppers, seats = rewarded_team(client, services, reward, refund_to="wallet")

    Worker(services).run_until_idle()
    Worker(services).run_until_idle()

    assert rewards_of(services) == [(seats[0], expected, "wallet")]
    assert wallet(services, shoppers[0].user_id) == expected
    # The merchant funds it, and the fee on it comes back too (charged only on what it kept):
    # the reward's parts are nine tenths from the merchant and one tenth from the fee.
    (merchant_part, fee_part) = services.db.run_sync(
        lambda s: s.execute(
            select(Refund.merchant_part, Refund.fee_part).where(Refund.source == "reward")
        ).one()
    )
    assert merchant_part + fee_part == expected
    assert abs(fee_part - expected / 10) <= 1
    assert -balance(services, f"merchant_payable:{merchant_id}") == 3 * 1350 - merchant_part
    sound(services)


def test_a_reward_waits_for_the_leaders_hold_to_be_captured_and_a_failed_team_gets_none(
    client: TestClient, services: Services
) -> None:
    reward = LeaderReward(RewardKind.FIXED, 500)
    _, _, failed_seats = rewarded_team(client, services, reward, succeed=False)
    _, _, seats = rewarded_team(client, services, reward)
    # Paid by holds: nothing is the merchant's until the worker's captures are confirmed.
    assert rewards_of(services) == []

    Worker(services).run_until_idle()

    assert rewards_of(services) == [(seats[0], 500, "original")]
    assert failed_seats[0] not in {seat for seat, _, _ in rewards_of(services)}
    sound(services)


def test_a_deal_states_its_reward_and_a_bad_one_is_refused(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    def create(reward: dict[str, Any]) -> Any:
        body = deal_body(merchant.id, leader_reward=reward)
        return client.post("/v1/deals", json=body, headers=staff.headers)

    made = create({"kind": "percent", "basis_points": 1000})
    assert made.status_code == 201, made.text
    assert made.json()["leader_reward"] == {"kind": "percent", "amount": None, "basis_points": 1000}
    assert create({"kind": "fixed"}).status_code == 422
    assert create({"kind": "percent", "basis_points": 20_000}).status_code == 422
    assert create({"kind": "free", "amount": 5}).status_code == 422
    assert create({"kind": "gift"}).status_code == 422
    dropped = client.patch(
        f"/v1/deals/{made.json()['id']}", json={"leader_reward": None}, headers=staff.headers
    )
    assert dropped.json()["leader_reward"] is None


def test_workers_sweeping_at_once_reward_each_leader_once(
    client: TestClient, services: Services
) -> None:
    reward = LeaderReward(RewardKind.FIXED, 200)
    leaders = [rewarded_team(client, services, reward, refund_to="wallet")[2][0] for _ in range(6)]
    workers = [Worker(services) for _ in range(4)]

    with ThreadPoolExecutor(len(workers)) as pool:
        for _ in range(3):
            list(pool.map(lambda w: w.run_until_idle(), workers))

    assert sorted(seat for seat, _, _ in rewards_of(services)) == sorted(leaders)
    sound(services)
