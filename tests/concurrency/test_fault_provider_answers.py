"""A provider that does the work and then fails to say so (a 500 or a timeout after the capture
or refund happened): the worker retries until the call is recorded, the provider did it exactly
once (its idempotency key), and the audit is clean.

The sandbox is driven here through the worker; the Stripe, Alipay and WeChat Pay adapters are
tested against their fakes' outages in their own test modules (a 500 before the work, a hang or a
lost answer after it), Alipay's lost answer through the worker too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.audit.service import audit_database
from pintuan.domain.payments import ProviderError
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxOperation, SandboxProvider
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import Account, create_account, create_deal, create_merchant

FAILURES = 3  # answers lost in a row before one gets through


def paid_team(client: TestClient, services: Services, members: int, size: int) -> list[str]:
    """A team of ``size`` with ``members`` paid seats; returns their payment ids."""
    deal = create_deal(services.db, create_merchant(services.db), team_size=size)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers).json()
    seats: list[tuple[Account, str]] = [(leader, started["seat"]["id"])]
    for _ in range(members - 1):
        friend = create_account(services)
        joined = client.post(f"/v1/teams/{started['team']['id']}/seats", headers=friend.headers)
        seats.append((friend, joined.json()["seat"]["id"]))
    paid = []
    for shopper, seat in seats:
        payment = client.post(f"/v1/seats/{seat}/payments", json={}, headers=shopper.headers)
        paid.append(payment.json()["id"])
        done = client.post(f"/v1/test_helpers/payments/{paid[-1]}/succeed", headers=shopper.headers)
        assert done.status_code == 200, done.text
    return paid


def losing_answers(monkeypatch: pytest.MonkeyPatch, call: str, error: Exception) -> list[str]:
    """Make the sandbox's ``call`` do its work and then raise ``error``, FAILURES times."""
    real = getattr(SandboxProvider, call)
    lost: list[str] = []

    def done_then_failed(self: SandboxProvider, *args: Any) -> None:
        real(self, *args)
        if len(lost) < FAILURES:
            lost.append(args[-1])
            raise error

    monkeypatch.setattr(SandboxProvider, call, done_then_failed)
    return lost


def retry_until_settled(services: Services) -> int:
    """Run the worker, moving the clock past each backoff, until nothing is owed; the rounds."""
    for rounds in range(1, 20):
        Worker(services).run_until_idle()
        owed = services.db.run_sync(
            lambda s: s.scalar(select(Payment.id).where(Payment.pending_action.is_not(None))),
            write=False,
        )
        if owed is None:
            return rounds
        clock.advance(timedelta(minutes=10))
    raise AssertionError("the provider calls never settled")


def operations(services: Services) -> list[str]:
    """What the sandbox did, one entry per capture or refund that happened."""
    return services.db.run_sync(
        lambda s: sorted(s.scalars(select(SandboxOperation.kind))), write=False
    )


ERRORS = [ProviderError("sandbox: 500 after the work"), TimeoutError("read timed out")]


@pytest.mark.parametrize("error", ERRORS, ids=["500", "timeout"])
def test_a_capture_whose_answer_is_lost_is_retried_to_exactly_one_capture(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    paid_team(client, services, members=2, size=2)
    lost = losing_answers(monkeypatch, "capture", error)

    rounds = retry_until_settled(services)

    assert len(lost) == FAILURES
    statuses = services.db.run_sync(
        lambda s: sorted(s.scalars(select(Payment.status))), write=False
    )
    assert statuses == ["captured", "captured"]
    assert operations(services) == ["capture", "capture"]
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    assert rounds > 1


@pytest.mark.parametrize("error", ERRORS, ids=["500", "timeout"])
def test_a_refund_whose_answer_is_lost_is_retried_to_exactly_one_refund(
    charging: tuple[TestClient, Services],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    client, services = charging
    paid_team(client, services, members=1, size=3)
    lost = losing_answers(monkeypatch, "refund", error)
    clock.advance(timedelta(days=2))  # the team fails: its charge is owed back

    rounds = retry_until_settled(services)

    assert len(lost) == FAILURES
    statuses = services.db.run_sync(lambda s: list(s.scalars(select(Payment.status))), write=False)
    assert statuses == ["refunded"]
    assert operations(services) == ["refund"]
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []
    assert rounds > 1
