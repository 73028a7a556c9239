"""What operators read across the platform: users, refunds of every merchant, and audit runs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from pintuan.audit.runs import latest_audit_run
from pintuan.cli import app as cli
from pintuan.config import get_settings
from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.errors import Forbidden
from pintuan.ops import directory
from pintuan.services import Services
from tests.console_data import pay_over_api, start_over_api
from tests.factories import create_account, create_deal, create_merchant


def test_operators_find_users_by_role_and_by_name_or_email(services: Services) -> None:
    merchant = create_merchant(services.db, slug="tea-house")
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant, name="Sam Staff")
    shopper = create_account(services, name="Quinn", email="quinn@shop.example")

    def users(**filters: Any) -> list[directory.UserRow]:
        return services.db.run_sync(
            lambda s: directory.list_users(s, operator.principal, cursor=None, limit=10, **filters)
        )

    assert [u.id for u in users()] == [shopper.user_id, staff.user_id, operator.user_id]
    assert [u.id for u in users(role=Role.MERCHANT)] == [staff.user_id]
    assert [u.id for u in users(text="SHOP.EXAMPLE")] == [shopper.user_id]
    assert [u.id for u in users(text="sam")] == [staff.user_id]
    assert [u.id for u in users(text=operator.user_id)] == [operator.user_id]
    found = users(role=Role.MERCHANT)[0]
    assert [(s.merchant_id, s.merchant_name) for s in found.staff_of] == [
        (merchant.id, "Tea-House")
    ]


def test_only_operators_list_users_refunds_and_audit_runs(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    shopper = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)

    for path in ("/v1/users", "/v1/refunds", "/v1/audit/runs"):
        for account in (staff, shopper):
            refused = client.get(path, headers=account.headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "operator_only"), path
        assert client.get(path).status_code == 401
        assert client.get(path, headers=operator.headers).status_code == 200
    assert client.post("/v1/audit/runs", headers=staff.headers).status_code == 403
    with pytest.raises(Forbidden):
        services.db.run_sync(lambda s: latest_audit_run(s, staff.principal))


def test_the_users_endpoint_pages_with_a_cursor(client: TestClient, services: Services) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    shoppers = [create_account(services) for _ in range(3)]

    first = client.get("/v1/users?role=shopper&limit=2", headers=operator.headers).json()
    rest = client.get(
        f"/v1/users?role=shopper&limit=2&cursor={first['next_cursor']}", headers=operator.headers
    ).json()

    assert [u["id"] for u in first["data"] + rest["data"]] == [s.user_id for s in shoppers[::-1]]
    assert rest["next_cursor"] is None


def test_operators_see_refunds_of_every_merchant_and_can_narrow_to_one(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    paid: dict[str, str] = {}
    for name in ("north", "south"):
        merchant = create_merchant(services.db, slug=name)
        shopper = create_account(services)
        team = start_over_api(client, shopper, create_deal(services.db, merchant, team_size=2).id)
        paid[merchant.id] = pay_over_api(client, shopper, team.seat_id)
        cancelled = client.post(f"/v1/seats/{team.seat_id}/cancel", headers=shopper.headers)
        assert cancelled.status_code == 200

    everything = client.get("/v1/refunds", headers=operator.headers).json()["data"]
    north_id = next(iter(paid))
    one = client.get(f"/v1/refunds?merchant_id={north_id}", headers=operator.headers).json()

    assert {r["id"] for r in everything} == set(paid.values())
    assert {r["merchant_name"] for r in everything} == {"North", "South"}
    assert [r["id"] for r in one["data"]] == [paid[north_id]]
    assert one["data"][0]["state"] == "owed"


def test_an_audit_run_from_the_console_is_kept_with_its_breaches(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    deal = create_deal(services.db, create_merchant(services.db))

    clean = client.post("/v1/audit/runs", headers=operator.headers)
    # Given a counter that no longer matches its rows:
    services.db.run_sync(
        lambda s: s.execute(update(Deal).where(Deal.id == deal.id).values(committed=2))
    )
    broken = client.post("/v1/audit/runs", headers=operator.headers)
    listed = client.get("/v1/audit/runs", headers=operator.headers).json()["data"]
    latest = services.db.run_sync(lambda s: latest_audit_run(s, operator.principal))

    assert clean.status_code == 201, clean.text
    assert clean.json()["passed"] is True
    assert clean.json()["ran_by"] == {"user_id": operator.user_id, "display_name": "Olga"}
    assert broken.json()["passed"] is False
    assert broken.json()["breaches"] == [
        {
            "invariant": "2 deal stock",
            "detail": f"deal {deal.id}: committed 2, live seats 0, stock 100",
        }
    ]
    assert [r["id"] for r in listed] == [broken.json()["id"], clean.json()["id"]]
    assert latest is not None
    assert (latest.id, latest.breach_count, latest.source) == (broken.json()["id"], 1, "console")


def test_an_audit_posted_twice_with_one_idempotency_key_is_kept_once(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    headers = {**operator.headers, "Idempotency-Key": "audit-once"}

    first = client.post("/v1/audit/runs", headers=headers)
    again = client.post("/v1/audit/runs", headers=headers)

    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(client.get("/v1/audit/runs", headers=operator.headers).json()["data"]) == 1


def test_the_audit_command_keeps_its_result_for_the_console(
    tmp_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINTUAN_DATABASE_URL", tmp_sqlite_url)
    monkeypatch.setenv("PINTUAN_ENV", "test")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        audited = runner.invoke(cli, ["audit"])
        from pintuan.bootstrap import build_services

        services = build_services(get_settings())
        operator = create_account(services, role=Role.OPERATOR)
        latest = services.db.run_sync(lambda s: latest_audit_run(s, operator.principal))
        services.db.dispose()
    finally:
        get_settings.cache_clear()

    assert audited.exit_code == 0, audited.output
    assert latest is not None
    assert (latest.source, latest.ran_by, latest.passed) == ("cli", None, True)
