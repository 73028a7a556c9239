"""Reconciliation on a schedule: the worker reconciles each provider's finished day once, keeps
every difference as a finding (open, explained, fixed), matches a difference of timing across
the statement-day boundary, and reconciles the holds the provider still keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.ledger import findings
from pintuan.ledger.models import ReconciliationDay, ReconciliationFinding
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_ledger import pay
from tests.features.test_settlement import at, succeed_team


def _kept(services: Services) -> list[ReconciliationFinding]:
    def read(s: object) -> list[ReconciliationFinding]:
        rows = list(s.scalars(select(ReconciliationFinding).order_by(ReconciliationFinding.id)))  # type: ignore[attr-defined]
        for row in rows:
            s.expunge(row)  # type: ignore[attr-defined]
        return rows

    return services.db.run_sync(read, write=False)


def test_the_worker_reconciles_each_finished_day_once_and_keeps_its_findings(
    client: TestClient, services: Services
) -> None:
    at(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    succeed_team(client, services, deal.id)  # two holds captured on the 20th
    # the provider lost one capture from its records
    services.db.run_sync(
        lambda s: s.execute(
            SandboxOperation.__table__.delete().where(
                SandboxOperation.idempotency_key
                == s.scalars(select(SandboxOperation.idempotency_key)).first()
            )
        )
    )

    at(datetime(2026, 11, 21, 3, 0, tzinfo=UTC))  # the 20th is over, plus the margin
    Worker(services).run_until_idle()
    clock.advance(timedelta(hours=1))
    Worker(services).run_until_idle()  # a second run of the same day keeps nothing twice

    kept = _kept(services)
    assert [(f.difference, f.kind, f.state) for f in kept] == [("extra", "payment", "open")]
    days = services.db.run_sync(
        lambda s: s.scalars(select(ReconciliationDay.day).order_by(ReconciliationDay.day)).all(),
        write=False,
    )
    assert [d.isoformat() for d in days] == ["2026-11-19", "2026-11-20"]  # each day once

    ops = create_account(services, role=Role.OPERATOR)
    listed = client.get("/v1/ops/reconciliation/findings?state=open", headers=ops.headers)
    explained = client.post(
        f"/v1/ops/reconciliation/findings/{kept[0].id}",
        json={"state": "explained", "note": "the provider's export was cut short"},
        headers=ops.headers,
    )
    reopened = client.post(
        f"/v1/ops/reconciliation/findings/{kept[0].id}",
        json={"state": "fixed", "note": "again"},
        headers=ops.headers,
    )
    still_open = client.get("/v1/ops/reconciliation/findings?state=open", headers=ops.headers)

    assert [f["id"] for f in listed.json()["data"]] == [kept[0].id]
    assert explained.status_code == 200, explained.text
    assert explained.json()["state"] == "explained"
    assert reopened.status_code == 409
    assert reopened.json()["code"] == "finding_state_invalid"
    assert still_open.json()["data"] == []


def test_a_difference_of_timing_across_midnight_is_matched_with_the_next_day(
    client: TestClient, services: Services
) -> None:
    at(datetime(2026, 11, 20, 23, 59, tzinfo=UTC))
    deal = create_deal(services.db, create_merchant(services.db), team_size=2)
    succeed_team(client, services, deal.id)
    # the provider dates the captures a minute later, on its next day
    services.db.run_sync(
        lambda s: s.execute(
            update(SandboxOperation).values(created_at=datetime(2026, 11, 21, 0, 0, 30, tzinfo=UTC))
        )
    )
    sandbox = services.provider("sandbox")
    at(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    day = datetime(2026, 11, 20, tzinfo=UTC).date()

    def run(d: object) -> None:
        records = sandbox.records_for_day(d)  # type: ignore[arg-type]
        services.db.run_sync(
            lambda s: findings.reconcile_and_keep(s, sandbox, d, records, None, utc_now())  # type: ignore[arg-type]
        )

    run(day)
    first = _kept(services)
    run(day + timedelta(days=1))
    after = _kept(services)

    assert [(f.day, f.difference, f.state) for f in first] == [(day, "extra", "open")] * 2
    assert [f.state for f in after] == ["explained", "explained"]
    assert all((f.note or "").startswith("timing") for f in after)


def test_holds_are_reconciled_against_the_providers_open_holds(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers).json()
    held = pay(client, shopper, started["seat"]["id"])
    assert held["status"] == "authorized"
    sandbox = services.provider("sandbox")
    today = utc_now().date() - timedelta(days=1)

    def run() -> int:
        holds = [findings.HoldRecord(*h) for h in sandbox.open_holds()]  # type: ignore[attr-defined]
        return services.db.run_sync(
            lambda s: findings.keep_hold_findings(
                s, "sandbox", today, holds, findings.held_by_us(s, "sandbox"), utc_now()
            )
        )

    agreed = run()
    # the provider let the hold go (it expired there) while we still think it is held
    services.db.run_sync(lambda s: s.execute(update(SandboxIntent).values(status="voided")))
    differs = run()

    assert agreed == 0
    assert differs == 1
    (finding,) = _kept(services)
    assert (finding.difference, finding.ours_amount, finding.theirs_amount) == (
        "hold",
        held["amount"]["amount"] if isinstance(held["amount"], dict) else held["amount"],
        None,
    )
