"""Vouchers under real concurrency: API processes on one database, requests fired at once, and
the worker's expiry sweep running while the counter redeems.

Twenty redeemers of one code redeem it once; a redemption racing the shopper's refund, or the
expiry refund, ends in exactly one state, and the money follows the winner: the merchant's part
to its payable for a redemption, the whole price back to the payer for a refund. The ledger's
checks and the engine's audit pass after each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.vouchers.models import Voucher
from pintuan.worker import Worker
from tests.concurrency.cluster import Call, Cluster, assert_no_server_errors, running_cluster
from tests.concurrency.test_fulfilment_races import events
from tests.concurrency.test_races import sweep
from tests.factories import create_account
from tests.features.test_ledger import balance
from tests.features.vouchering import PRICE, VoucherTeam, merchant_part, sound, voucher_team

SERVERS = 3


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def stored(services: Services) -> dict[str, Voucher]:
    return services.db.run_sync(lambda s: {v.id: v for v in s.scalars(select(Voucher))})


def refunded_seats(services: Services) -> Counter[str]:
    return Counter(
        services.db.run_sync(
            lambda s: list(s.scalars(select(Refund.seat_id).where(Refund.amount == PRICE)))
        )
    )


def money_follows_the_winner(services: Services, team: VoucherTeam) -> None:
    vouchers = stored(services)
    redeemed = sum(1 for v in vouchers.values() if v.status == "redeemed")
    gone = {v.seat_id for v in vouchers.values() if v.status in ("refunded", "expired")}
    still = sum(1 for v in vouchers.values() if v.status == "issued")
    assert refunded_seats(services) == Counter(gone)
    assert -balance(services, f"merchant_payable:{team.merchant.id}") == (
        redeemed * merchant_part()
    )
    assert -balance(services, f"merchant_unredeemed:{team.merchant.id}") == (
        still * merchant_part()
    )
    sound(services)


def test_twenty_redeemers_of_one_code_redeem_it_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    team = voucher_team(client, services)
    second = create_account(services, role=Role.MERCHANT, merchant=team.merchant)
    code = team.vouchers(client)[0]["code"]
    calls = [
        Call("POST", "/v1/vouchers/redeem", staff.token, {"code": code})
        for _ in range(10)
        for staff in (team.staff, second)
    ]

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    outcomes = Counter(r.outcome for r in replies)
    assert outcomes == {"200": 1, "409 voucher_already_redeemed": 19}, outcomes
    (redeemed,) = [v for v in stored(services).values() if v.status == "redeemed"]
    winner = next(r for r in replies if r.status == 200)
    by = team.staff if winner.call.token == team.staff.token else second
    assert redeemed.redeemed_by == by.user_id
    assert events(services, "voucher.redeemed") == {redeemed.id: 1}
    money_follows_the_winner(services, team)


def test_redemptions_racing_the_shoppers_refunds_end_each_voucher_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    team = voucher_team(client, services, size=6, refund_to="wallet")
    vouchers = team.vouchers(client)
    calls = []
    for shopper, voucher in zip(team.shoppers, vouchers, strict=True):
        calls += [
            Call("POST", "/v1/vouchers/redeem", team.staff.token, {"code": voucher["code"]}),
            Call("POST", f"/v1/vouchers/{voucher['id']}/refund", shopper.token),
        ] * 3

    replies = cluster.fire(calls)

    assert_no_server_errors(cluster, replies)
    final = stored(services)
    for voucher in vouchers:
        status = final[voucher["id"]].status
        assert status in ("redeemed", "refunded")
        mine = [
            r
            for r in replies
            if voucher["id"] in r.call.path or (r.call.json or {}).get("code") == voucher["code"]
        ]
        # Exactly one request changed it; every other one was told what it had become.
        assert sum(1 for r in mine if r.status == 200) == 1
        refused = {r.outcome for r in mine if r.status != 200}
        assert refused <= {f"409 voucher_{status}", "409 voucher_already_redeemed"}
    money_follows_the_winner(services, team)


def test_redemptions_racing_the_expiry_sweep_end_each_voucher_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    team = voucher_team(client, services, size=8)
    vouchers = team.vouchers(client)
    due = utc_now() + timedelta(seconds=1)
    services.db.run_sync(lambda s: s.execute(update(Voucher).values(expires_at=due)))
    worker = Worker(services)

    async def both() -> tuple[list, int]:
        calls = [
            Call("POST", "/v1/vouchers/redeem", team.staff.token, {"code": v["code"]})
            for v in vouchers
        ]
        at = [due + timedelta(milliseconds=(i % 5) * 20 - 40) for i in range(len(calls))]
        return await asyncio.gather(
            cluster.fire_async(calls, at),
            asyncio.to_thread(sweep, worker, utc_now(), due + timedelta(milliseconds=300)),
        )

    replies, ticks = asyncio.run(both())
    Worker(services).run_until_idle()

    assert ticks > 0
    assert_no_server_errors(cluster, replies)
    final = stored(services)
    for reply, voucher in zip(replies, vouchers, strict=True):
        won = final[voucher["id"]]
        assert won.status in ("redeemed", "expired")
        assert reply.outcome == ("200" if won.status == "redeemed" else "409 voucher_expired")
        if won.status == "redeemed":
            assert won.redeemed_at is not None
            assert won.redeemed_at < due
    money_follows_the_winner(services, team)
