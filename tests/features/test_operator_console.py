"""The operator console in a browser's shoes: merchants to approve or suspend, deals to
moderate, refunds, users and the audit, for operators only, in two languages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from tests.console_data import (
    HTML,
    form_post,
    log_in,
    pay_over_api,
    speak_chinese,
    start_over_api,
)
from tests.factories import create_account, create_deal, create_merchant

PAGES = ["", "/merchants", "/deals", "/refunds", "/users", "/audit"]


@pytest.mark.parametrize("rest", PAGES)
def test_only_operators_open_the_operator_console(
    client: TestClient, services: Services, rest: str
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    as_staff = client.get(f"/console/operator{rest}", headers=HTML)
    log_in(client, create_account(services, role=Role.OPERATOR))
    as_operator = client.get(f"/console/operator{rest}", headers=HTML)

    assert as_staff.status_code == 403
    assert as_operator.status_code == 200
    assert "Operator console" in as_operator.text


def test_an_operator_approves_a_pending_merchant_and_returns_to_the_same_list(
    client: TestClient, services: Services
) -> None:
    pending = create_merchant(services.db, approved=False, slug="new-noodles")
    log_in(client, create_account(services, role=Role.OPERATOR))
    listed = client.get("/console/operator/merchants", headers=HTML).text
    assert "New-Noodles" in listed

    response = form_post(
        client,
        "/console/operator/merchants?status=pending",
        f"/console/operator/merchants/{pending.id}/approve",
        {"next": "/console/operator/merchants?status=pending"},
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/console/operator/merchants?status=pending&done=approve"
    assert services.db.run_sync(lambda s: s.get(Merchant, pending.id).status) == "approved"
    after = client.get(response.headers["location"], headers=HTML).text
    assert "The merchant is approved." in after
    assert "New-Noodles" not in after


def test_a_suspension_without_the_csrf_token_is_refused(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.OPERATOR))
    client.get("/console/operator/merchants", headers=HTML)

    response = client.post(f"/console/operator/merchants/{merchant.id}/suspend", headers=HTML)

    assert response.status_code == 403
    assert services.db.run_sync(lambda s: s.get(Merchant, merchant.id).status) == "approved"


def test_a_return_address_off_the_console_is_not_followed(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.OPERATOR))

    response = form_post(
        client,
        "/console/operator/merchants",
        f"/console/operator/merchants/{merchant.id}/suspend",
        {"next": "https://evil.example/phish", "reason": "Selling counterfeits"},
    )

    assert response.headers["location"] == "/console/operator/merchants?done=suspend"


def test_an_operator_pauses_and_ends_a_live_deal_of_any_merchant(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), title="Too good to be true")
    log_in(client, create_account(services, role=Role.OPERATOR))
    assert "Too good to be true" in client.get("/console/operator/deals", headers=HTML).text

    paused = form_post(
        client,
        "/console/operator/deals",
        f"/console/operator/deals/{deal.id}/pause",
        {"reason": "Checking the claims"},
    )
    status_after_pause = services.db.run_sync(lambda s: s.get(Deal, deal.id).status)
    ended = form_post(
        client,
        "/console/operator/deals?status=paused",
        f"/console/operator/deals/{deal.id}/end",
        {"reason": "The claims are false"},
    )
    publish = form_post(
        client, "/console/operator/deals", f"/console/operator/deals/{deal.id}/publish", {}
    )

    assert (paused.status_code, status_after_pause) == (303, "paused")
    assert ended.status_code == 303
    assert services.db.run_sync(lambda s: s.get(Deal, deal.id).status) == "ended"
    assert publish.status_code == 404  # moderation stops deals; it does not put them live


def test_refunds_and_users_are_listed_across_merchants(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, slug="north")
    shopper = create_account(services, name="Wen Refund", email="wen@example.com")
    team = start_over_api(client, shopper, create_deal(services.db, merchant, team_size=2).id)
    pay_over_api(client, shopper, team.seat_id)
    assert (
        client.post(f"/v1/seats/{team.seat_id}/cancel", headers=shopper.headers).status_code == 200
    )
    log_in(client, create_account(services, role=Role.OPERATOR))

    refunds = client.get("/console/operator/refunds?state=owed", headers=HTML).text
    users = client.get("/console/operator/users?text=wen%40", headers=HTML).text
    staff = client.get("/console/operator/users?role=operator", headers=HTML).text

    assert "Wen Refund" in refunds
    assert "North" in refunds
    assert "wen@example.com" in users
    assert "wen@example.com" not in staff


def test_the_audit_runs_from_the_console_and_shows_its_breaches(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    services.db.run_sync(
        lambda s: s.execute(update(Deal).where(Deal.id == deal.id).values(committed=3))
    )
    log_in(client, create_account(services, role=Role.OPERATOR, name="Olga"))
    assert "The audit has not run yet." in client.get("/console/operator/audit", headers=HTML).text

    response = form_post(client, "/console/operator/audit", "/console/operator/audit", {})
    page = client.get(response.headers["location"], headers=HTML).text

    assert response.status_code == 303
    assert "The audit has run." in page
    assert "Failed: 1 breach." in page
    assert "2. A deal never commits more units than its stock" in page
    assert f"deal {deal.id}: committed 3, live seats 0, stock 100" in page
    assert "by Olga" in page


def test_the_operator_console_speaks_chinese(client: TestClient, services: Services) -> None:
    create_merchant(services.db, approved=False)
    operator = create_account(services, role=Role.OPERATOR)
    speak_chinese(services, operator)
    log_in(client, operator)

    overview = client.get("/console/operator", headers=HTML).text
    merchants = client.get("/console/operator/merchants", headers=HTML).text

    assert "运营后台" in overview
    assert "待审核商家" in overview
    assert "通过" in merchants
    assert "待审核" in merchants
