"""Refunds of one seat racing over three API processes never take back more than was paid: of
twelve refunds of 400 of a 1500 seat, exactly three go through, the rest are refused as
exceeding what is left, and the ledger holds. Operators racing on one refund in their queue act
on it once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.ledger import check_ledger
from pintuan.domain.roles import Role
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.worker import Worker
from tests.concurrency.cluster import (
    Call,
    Cluster,
    assert_no_server_errors,
    outcomes,
    running_cluster,
)
from tests.factories import create_account
from tests.features.test_ledger import wallet
from tests.features.test_payment_properties import Fault, faltering_sandbox
from tests.features.test_refunds import confirmed_team, refund

SERVERS = 3
RACERS = 12


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(database_url, SERVERS, tmp_path_factory.mktemp("servers")) as running:
        yield running


def test_concurrent_refunds_of_one_seat_never_exceed_what_was_paid(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    # Given a confirmed seat of 1500, earned by its merchant
    _, staff, seats = confirmed_team(client, services)
    seat_id = seats[0][1]

    # When its merchant's staff send twelve refunds of 400 at once, each with its own key
    replies = cluster.fire(
        [
            Call(
                "POST",
                f"/v1/seats/{seat_id}/refunds",
                staff.token,
                {"amount": 400, "reason": "race"},
                headers=(("Idempotency-Key", f"race-{n}"),),
            )
            for n in range(RACERS)
        ]
    )

    # Then three go through and nine are refused; the payment counts exactly what they took
    assert_no_server_errors(cluster, replies)
    assert outcomes(replies) == {"201": 3, "422 refund_exceeds_paid": RACERS - 3}
    refunded, counted = services.db.run_sync(
        lambda s: (
            sum(s.scalars(select(Refund.amount).where(Refund.seat_id == seat_id))),
            s.scalar(select(Payment.refunded_amount).where(Payment.seat_id == seat_id)),
        ),
        write=False,
    )
    assert refunded == counted == 1200
    assert services.db.run_sync(check_ledger, write=False).breaches == []


def test_operators_racing_on_one_queued_refund_act_once(
    cluster: Cluster, services: Services, client: TestClient
) -> None:
    # Given a refund its provider refused, waiting in the operators' queue
    _, staff, seats = confirmed_team(client, services)
    payer, seat_id = seats[1]
    operators = [create_account(services, role=Role.OPERATOR) for _ in range(3)]
    faltering_sandbox(services).faults["refund"].append(Fault.DECLINED)
    made = refund(client, staff, seat_id, 700).json()
    Worker(services).tick()
    before = wallet(services, payer.user_id)

    # When operators on three processes pay it into the wallet or retry it, all at once
    replies = cluster.fire(
        [
            Call(
                "POST",
                f"/v1/operator/refunds/{made['id']}/actions",
                operators[n % len(operators)].token,
                {"action": "wallet" if n % 2 else "retry"},
                headers=(("Idempotency-Key", f"queue-race-{n}"),),
            )
            for n in range(RACERS)
        ]
    )

    # Then exactly one acts; the rest find it out of the queue; the money moved at most once
    assert_no_server_errors(cluster, replies)
    assert outcomes(replies) == {"200": 1, "409 refund_not_queued": RACERS - 1}
    row = services.db.run_sync(lambda s: s.get(Refund, made["id"]), write=False)
    assert row is not None
    paid_to_wallet = wallet(services, payer.user_id) - before
    if row.resolution == "wallet":
        assert (row.status, paid_to_wallet) == ("succeeded", 700)
    else:
        assert (row.resolution, row.status, paid_to_wallet) == ("retry", "pending", 0)
    assert services.db.run_sync(check_ledger, write=False).breaches == []
