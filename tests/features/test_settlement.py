"""Settlement statements by business day, payouts, and reconciliation with the provider."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.config import get_settings
from pintuan.domain.roles import Role
from pintuan.kit.time import clock, utc_now
from pintuan.ledger import settlement
from pintuan.ledger.models import Journal, SettlementStatement
from pintuan.ledger.reconcile import reconcile_day
from pintuan.ledger.settlement import settle_day
from pintuan.merchants.models import Merchant
from pintuan.payments.providers.sandbox import SandboxOperation
from pintuan.services import Services
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import PASSWORD, Account, create_account, create_deal, create_merchant
from tests.features.test_payments_api import sandbox
from tests.tampering import tamper

SAME_ORIGIN = {"Origin": "http://testserver"}  # what a browser sends from the site's pages


def at(instant: datetime) -> None:
    """Move the application clock so that it reads ``instant`` now."""
    clock.offset = timedelta(0)
    clock.offset = instant - utc_now()


def succeed_team(client: TestClient, services: Services, deal_id: str) -> list[dict[str, Any]]:
    shoppers = [create_account(services), create_account(services)]
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers).json()
    joined = client.post(
        f"/v1/teams/{started['team']['id']}/seats", headers=shoppers[1].headers
    ).json()
    paid = []
    for shopper, seat in zip(shoppers, (started["seat"], joined["seat"]), strict=True):
        payment = client.post(
            f"/v1/seats/{seat['id']}/payments", json={}, headers=shopper.headers
        ).json()
        done = client.post(
            f"/v1/test_helpers/payments/{payment['id']}/succeed", headers=shopper.headers
        )
        paid.append(done.json())
    Worker(services).run_until_idle()
    return paid


def shanghai_merchant(services: Services, commission_bps: int = 500) -> Merchant:
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=commission_bps)
        )
    )
    return merchant


def staff_of(services: Services, merchant: Merchant) -> Account:
    return create_account(services, role=Role.MERCHANT, merchant=merchant)


def operator(services: Services) -> Account:
    return create_account(services, role=Role.OPERATOR)


def test_a_business_day_follows_the_merchants_time_zone(
    client: TestClient, services: Services
) -> None:
    merchant = shanghai_merchant(services)
    # given teams succeeding at 23:30 and 00:30 Shanghai time (15:30 and 16:30 UTC)
    at(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    deal = create_deal(services.db, merchant, team_size=2, group_price=10000, list_price=20000)
    at(datetime(2026, 11, 20, 15, 30, tzinfo=UTC))
    succeed_team(client, services, deal.id)
    at(datetime(2026, 11, 20, 16, 30, tzinfo=UTC))
    succeed_team(client, services, deal.id)

    # when the worker runs after both days are over in Shanghai
    at(datetime(2026, 11, 22, 1, 0, tzinfo=UTC))
    Worker(services).run_until_idle()
    again = services.db.run_sync(
        lambda s: [settle_day(s, merchant.id, date(2026, 11, d)) for d in (20, 21, 22)]
    )
    staff = staff_of(services, merchant)
    statements = client.get(f"/v1/merchants/{merchant.id}/settlements", headers=staff.headers)

    # then each team lands on its own local day, and settling again writes nothing (the day
    # not yet over in Shanghai has no statement)
    assert again == [0, 0, 0]
    assert statements.status_code == 200, statements.text
    days = {s["day"]: s for s in statements.json()["data"]}
    assert sorted(days) == ["2026-11-20", "2026-11-21"]
    first = days["2026-11-20"]
    assert first["orders"] == 2
    assert first["gross"] == {"amount": 20000, "currency": "CNY"}
    assert first["fees"] == {"amount": 1000, "currency": "CNY"}
    assert first["net"] == {"amount": 19000, "currency": "CNY"}
    assert first["closing_balance"] == {"amount": 19000, "currency": "CNY"}
    assert days["2026-11-21"]["closing_balance"] == {"amount": 38000, "currency": "CNY"}


def test_a_payout_is_recorded_for_operators_only_and_never_above_the_balance(
    client: TestClient, services: Services
) -> None:
    merchant = shanghai_merchant(services, commission_bps=0)
    deal = create_deal(services.db, merchant, team_size=2, group_price=10000, list_price=20000)
    succeed_team(client, services, deal.id)
    ops, staff = operator(services), staff_of(services, merchant)

    too_much = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": 20001, "currency": "CNY"}},
        headers={**ops.headers, "Idempotency-Key": "too-much"},
    )
    by_staff = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": 100, "currency": "CNY"}},
        headers=staff.headers,
    )
    paid_out = client.post(
        f"/v1/merchants/{merchant.id}/payouts",
        json={"amount": {"amount": 15000, "currency": "CNY"}},
        headers={**ops.headers, "Idempotency-Key": "paid-out"},
    )
    balance = client.get(f"/v1/merchants/{merchant.id}/balance", headers=staff.headers)

    assert too_much.status_code == 422
    assert too_much.json()["code"] == "payout_exceeds_balance"
    assert by_staff.status_code == 403
    assert paid_out.status_code == 201, paid_out.text
    assert balance.json()["owed"] == [{"amount": 5000, "currency": "CNY"}]
    check = client.get("/v1/ops/ledger/check", headers=ops.headers).json()
    assert check["sound"] is True, check["breaches"]


def test_settlements_are_private_to_the_merchant_and_operators(
    client: TestClient, services: Services
) -> None:
    merchant = shanghai_merchant(services)
    other = staff_of(services, create_merchant(services.db))
    shopper = create_account(services)

    for caller in (other, shopper):
        seen = client.get(f"/v1/merchants/{merchant.id}/settlements", headers=caller.headers)
        assert seen.status_code == 404
        assert seen.json()["code"] == "merchant_not_found"
    ops = client.get(f"/v1/merchants/{merchant.id}/settlements", headers=operator(services).headers)
    assert ops.status_code == 200


def test_reconciliation_matches_the_sandbox_statement_and_reports_each_difference(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    merchant = create_merchant(services.db)
    today = utc_now().date()
    succeeded = succeed_team(client, services, create_deal(services.db, merchant, team_size=2).id)
    failing = create_deal(services.db, merchant, team_size=2)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{failing.id}/teams", headers=shopper.headers).json()
    lone = client.post(
        f"/v1/seats/{started['seat']['id']}/payments", json={}, headers=shopper.headers
    ).json()
    client.post(f"/v1/test_helpers/payments/{lone['id']}/succeed", headers=shopper.headers)
    # the lone shopper gives up: charged, then refunded
    cancelled = client.post(f"/v1/seats/{started['seat']['id']}/cancel", headers=shopper.headers)
    assert cancelled.status_code == 200, cancelled.text
    Worker(services).run_until_idle()
    provider = sandbox(services)

    def compare() -> Any:
        records = provider.records_for_day(today)
        return services.db.run_sync(lambda s: reconcile_day(s, provider, today, records))

    clean = compare()
    # the provider lost a refund, we lost a charge's journal amount, and one more charge
    services.db.run_sync(
        lambda s: s.execute(delete(SandboxOperation).where(SandboxOperation.kind == "refund"))
    )
    tamper(
        services.db,
        lambda s: s.execute(
            update(Journal).where(Journal.id == f"{succeeded[0]['id']}:charge").values(amount=1499)
        ),
    )
    dirty = compare()

    assert clean.findings == []
    assert clean.matched == 4  # three charges and one refund
    found = {(f.difference.value, f.kind.value) for f in dirty.findings}
    assert found == {("extra", "refund"), ("different", "payment")}
    assert dirty.matched == 2


def test_reconciliation_is_offered_to_operators_for_a_finished_day(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    succeed_team(
        client, services, create_deal(services.db, create_merchant(services.db), team_size=2).id
    )
    day = utc_now().date()
    ops = operator(services)

    too_soon = client.get(
        "/v1/ops/reconciliation",
        params={"provider": "sandbox", "date": day.isoformat()},
        headers=ops.headers,
    )
    clock.offset += timedelta(days=1)
    report = client.get(
        "/v1/ops/reconciliation",
        params={"provider": "sandbox", "date": day.isoformat()},
        headers=ops.headers,
    )
    shopper = client.get(
        "/v1/ops/reconciliation",
        params={"provider": "sandbox", "date": day.isoformat()},
        headers=create_account(services).headers,
    )

    assert too_soon.status_code == 404
    assert too_soon.json()["code"] == "statement_not_ready"
    assert report.status_code == 200, report.text
    assert report.json()["clean"] is True
    assert report.json()["matched"] == 2
    assert shopper.status_code == 403


def test_the_cli_checks_the_ledger_and_reconciles_a_day(
    run_cli: Any, tmp_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINTUAN_SANDBOX_STYLE", "charge")
    get_settings.cache_clear()
    settings = make_settings(tmp_sqlite_url, sandbox_style="charge")
    services = build_services(settings)
    with TestClient(create_app(settings, services)) as client:
        succeed_team(
            client, services, create_deal(services.db, create_merchant(services.db), team_size=2).id
        )
    day = utc_now().date().isoformat()

    checked = run_cli("ledger", "check")
    matched = run_cli("reconcile", "--provider", "sandbox", "--date", day)
    services.db.run_sync(lambda s: s.execute(delete(SandboxOperation)))
    tamper(
        services.db,
        lambda s: s.execute(update(Journal).where(Journal.kind == "charge").values(amount=1)),
    )
    broken = run_cli("ledger", "check")
    differs = run_cli("reconcile", "--provider", "sandbox", "--date", day)
    bad_day = run_cli("reconcile", "--provider", "sandbox", "--date", "yesterday")
    services.db.dispose()

    assert checked.exit_code == 0, checked.output
    assert "Ledger sound" in checked.output
    assert "USD (minor units): authorized 0" in checked.output
    assert matched.exit_code == 0, matched.output
    assert "2 matched, 0 differences" in matched.output
    assert broken.exit_code == 1
    assert "BREACH 6 the ledger balances" in broken.output
    assert differs.exit_code == 1
    assert "DIFFERENT" in differs.output
    assert bad_day.exit_code == 1
    assert "--date must be a calendar day" in bad_day.output


def test_the_operator_console_shows_the_reconciliation_in_both_languages(
    charging: tuple[TestClient, Services],
) -> None:
    client, services = charging
    merchant = create_merchant(services.db)
    succeed_team(client, services, create_deal(services.db, merchant, team_size=2).id)
    day = utc_now().date().isoformat()
    clock.offset += timedelta(days=1)
    ops = operator(services)
    page = "/console/operator/reconciliation"

    client.cookies.clear()
    client.post("/v1/sessions", json={"email": ops.email, "password": PASSWORD})
    english = client.get(page, params={"provider": "sandbox", "date": day})
    client.patch("/v1/me", json={"locale": "zh-Hans"}, headers=SAME_ORIGIN)
    chinese = client.get(page, params={"provider": "sandbox", "date": day})
    client.patch("/v1/me", json={"locale": "en"}, headers=SAME_ORIGIN)
    bad_day = client.get(page, params={"provider": "sandbox", "date": "soon"})
    client.cookies.clear()
    shopper = create_account(services)
    client.post("/v1/sessions", json={"email": shopper.email, "password": PASSWORD})
    refused = client.get(page, headers={"accept": "text/html"})

    assert english.status_code == 200, english.text
    assert "2 items agree with the provider." in english.text
    assert "2 笔与支付机构一致。" in chinese.text
    assert "Choose the statement day from the calendar." in bad_day.text
    assert refused.status_code == 403


def test_the_cli_settles_a_day_each_merchant_in_a_transaction_of_its_own(
    run_cli: Any, tmp_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_sqlite_url)
    services = build_services(settings)
    # given two merchants whose teams succeeded on one day
    at(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    merchants = [create_merchant(services.db), create_merchant(services.db)]
    with TestClient(create_app(settings, services)) as client:
        for merchant in merchants:
            succeed_team(client, services, create_deal(services.db, merchant, team_size=2).id)
    at(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    # and a look, before each merchant is settled, at what another connection sees settled
    seen: list[int] = []
    real_settle_day = settle_day

    def watched(session: Any, merchant_id: str, *args: Any) -> int:
        seen.append(services.db.run_sync(_statements, write=False))
        return real_settle_day(session, merchant_id, *args)

    monkeypatch.setattr(settlement, "settle_day", watched)
    # when the operator settles the day, and again
    first = run_cli("settle", "--date", "2026-11-20")
    again = run_cli("settle", "--date", "2026-11-20")
    services.db.dispose()

    # then each merchant's statement is written, the first committed before the second began,
    # and settling again writes nothing
    assert first.exit_code == 0, first.output
    assert "2 statements written for 2026-11-20 across 2 merchants." in first.output
    assert seen[:2] == [0, 1]
    assert again.exit_code == 0, again.output
    assert "0 statements written" in again.output


def _statements(session: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(SettlementStatement)) or 0)
