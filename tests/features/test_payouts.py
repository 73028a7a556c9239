"""Payouts with a lifecycle: pending → sent → paid | failed | returned, each start keyed by an
Idempotency-Key; a failed or returned payout is owed to the merchant again, by a journal."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text
from sqlalchemy.orm import Session

from pintuan.audit.service import audit_database
from pintuan.domain.roles import Principal, Role
from pintuan.errors import Conflict
from pintuan.kit.time import utc_now
from pintuan.ledger.models import Payout
from pintuan.ledger.payouts import PayoutStatus, move_payout
from pintuan.services import Services
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.features.test_settlement import shanghai_merchant, succeed_team


@pytest.fixture
def owed(client: TestClient, services: Services) -> tuple[str, Account, Account]:
    merchant = shanghai_merchant(services, commission_bps=0)
    deal = create_deal(services.db, merchant, team_size=2, group_price=10000, list_price=20000)
    succeed_team(client, services, deal.id)  # the merchant is owed 20,000
    ops = create_account(services, role=Role.OPERATOR)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    return merchant.id, ops, staff


def _start(
    client: TestClient, merchant_id: str, ops: Account, amount: int, key: str | None
) -> Response:
    headers = {**ops.headers, **({"Idempotency-Key": key} if key else {})}
    return client.post(
        f"/v1/merchants/{merchant_id}/payouts",
        json={"amount": {"amount": amount, "currency": "CNY"}},
        headers=headers,
    )


def _owed(client: TestClient, merchant_id: str, who: Account) -> int:
    owed = client.get(f"/v1/merchants/{merchant_id}/balance", headers=who.headers).json()["owed"]
    return sum(m["amount"] for m in owed)


def _move(client: TestClient, payout_id: str, ops: Account, status: str) -> Response:
    return client.post(
        f"/v1/payouts/{payout_id}/status", json={"status": status}, headers=ops.headers
    )


def test_a_payout_needs_an_idempotency_key_and_a_repeat_pays_once(
    client: TestClient, services: Services, owed: tuple[str, Account, Account]
) -> None:
    merchant_id, ops, staff = owed

    keyless = _start(client, merchant_id, ops, 5000, None)
    first = _start(client, merchant_id, ops, 5000, "po-1")
    again = _start(client, merchant_id, ops, 5000, "po-1")

    assert keyless.status_code == 400
    assert keyless.json()["code"] == "idempotency_key_required"
    assert first.status_code == 201, first.text
    assert again.json() == first.json()
    assert first.json()["status"] == "pending"
    assert _owed(client, merchant_id, staff) == 15000
    listed = client.get(f"/v1/merchants/{merchant_id}/payouts", headers=staff.headers).json()
    assert [p["id"] for p in listed["data"]] == [first.json()["id"]]


@pytest.mark.parametrize("ending", ["failed", "returned"])
def test_a_payout_that_fails_or_comes_back_is_owed_to_the_merchant_again(
    client: TestClient, services: Services, owed: tuple[str, Account, Account], ending: str
) -> None:
    merchant_id, ops, staff = owed
    payout = _start(client, merchant_id, ops, 20000, f"po-{ending}").json()
    assert _owed(client, merchant_id, staff) == 0

    sent = _move(client, payout["id"], ops, "sent")
    ended = _move(client, payout["id"], ops, ending)
    twice = _move(client, payout["id"], ops, ending)
    then_paid = _move(client, payout["id"], ops, "paid")

    assert sent.json()["status"] == "sent"
    assert ended.json()["status"] == ending
    assert ended.json()["return_journal_id"] == f"{payout['id']}:payout_return"
    assert twice.json() == ended.json()
    assert then_paid.status_code == 409
    assert then_paid.json()["code"] == "payout_transition_invalid"
    assert _owed(client, merchant_id, staff) == 20000
    assert services.db.run_sync(audit_database, write=False) == []


def test_a_paid_payout_stays_paid_out_and_only_operators_move_payouts(
    client: TestClient, services: Services, owed: tuple[str, Account, Account]
) -> None:
    merchant_id, ops, staff = owed
    payout = _start(client, merchant_id, ops, 8000, "po-paid").json()

    by_staff = _move(client, payout["id"], staff, "sent")
    _move(client, payout["id"], ops, "sent")
    paid = _move(client, payout["id"], ops, "paid")
    unknown = _move(client, "po_nothing", ops, "sent")
    other = create_merchant(services.db)
    foreign = client.get(f"/v1/merchants/{other.id}/payouts", headers=staff.headers)

    assert by_staff.status_code == 403
    assert paid.json()["status"] == "paid"
    assert unknown.status_code == 404
    assert foreign.status_code == 404
    assert _owed(client, merchant_id, staff) == 12000
    assert services.db.run_sync(audit_database, write=False) == []


def test_a_move_decides_by_the_status_under_its_lock_not_one_read_before(
    client: TestClient, services: Services, owed: tuple[str, Account, Account]
) -> None:
    """The console reads a payout before moving it. Another operator's move committed in
    between (here written in the same transaction, as if it had been) must decide: a payout
    just marked paid cannot then be marked failed, which would give its money back as well."""
    merchant_id, ops, _ = owed
    started = _start(client, merchant_id, ops, 5000, "stale-read")
    payout_id = started.json()["id"]
    assert _move(client, payout_id, ops, "sent").status_code == 200

    def stale_then_move(session: Session) -> None:
        before = session.get(Payout, payout_id)  # held, as the console's page holds it
        assert before is not None
        assert before.status == "sent"
        paid = text("UPDATE payouts SET status = 'paid' WHERE id = :id")
        session.execute(paid, {"id": payout_id})
        operator = Principal(ops.user_id, Role.OPERATOR, "Ops", "en", "UTC", frozenset())
        move_payout(session, operator, payout_id, PayoutStatus.FAILED, utc_now())

    with pytest.raises(Conflict) as refused:
        services.db.run_sync(stale_then_move)
    assert refused.value.code == "payout_transition_invalid"
    assert _owed(client, merchant_id, ops) == 20000 - 5000
