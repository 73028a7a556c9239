"""Operators and merchants answer for what they stop: a confirmation with a reason, kept in the
audit log and shown on the merchant's and the deal's pages; merchants registered from the
console; and anyone signed in may apply to sell, which operators approve or reject."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.auditlog.models import AuditEntry
from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.merchants.models import Merchant, MerchantApplication, MerchantStaff
from pintuan.services import Services
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant

APPLICATION = {
    "name": "Bakso Pak Min",
    "slug": "bakso-pak-min",
    "country": "ID",
    "currency": "IDR",
    "time_zone": "Asia/Jakarta",
    "pitch": "Meatball soup for four, delivered in Menteng.",
}


def entries(services: Services) -> list[AuditEntry]:
    return list(
        services.db.run_sync(lambda s: list(s.scalars(select(AuditEntry).order_by(AuditEntry.id))))
    )


def test_a_suspension_without_a_reason_is_refused_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.OPERATOR))

    refused = form_post(
        client,
        "/console/operator/merchants?status=approved",
        f"/console/operator/merchants/{merchant.id}/suspend",
        {"reason": "   "},
    )

    assert refused.status_code == 422
    assert "the reason is kept in the audit log" in refused.text
    assert services.db.run_sync(lambda s: s.get(Merchant, merchant.id).status) == "approved"
    assert [e.action for e in entries(services) if e.action == "suspend"] == []


def test_a_suspension_and_its_reason_show_on_the_merchants_page_and_through_the_api(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    other_staff = create_account(
        services, role=Role.MERCHANT, merchant=create_merchant(services.db)
    )
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)

    done = form_post(
        client,
        "/console/operator/merchants?status=approved",
        f"/console/operator/merchants/{merchant.id}/suspend",
        {"reason": "Selling counterfeit sneakers"},
    )
    log_in(client, staff)
    dashboard = client.get(f"/console/merchants/{merchant.id}", headers=HTML).text
    client.cookies.clear()
    as_staff = client.get(f"/v1/merchants/{merchant.id}/audit-log", headers=staff.headers)
    as_other = client.get(f"/v1/merchants/{merchant.id}/audit-log", headers=other_staff.headers)

    assert done.status_code == 303
    assert "Selling counterfeit sneakers" in dashboard
    assert "Audit log" in dashboard
    suspension = as_staff.json()["data"][0]
    assert suspension["action"] == "suspend"
    assert suspension["reason"] == "Selling counterfeit sneakers"
    assert suspension["actor"]["id"] == operator.user_id
    assert suspension["target"] == {"kind": "merchant", "id": merchant.id}
    assert suspension["created_at"].endswith("Z") or "+00:00" in suspension["created_at"]
    assert as_other.status_code == 404


def test_pausing_and_ending_a_deal_say_why_on_the_deals_page(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    log_in(client, staff)
    page = f"/console/merchants/{merchant.id}/deals/{deal.id}"

    without = form_post(client, page, f"{page}/pause", {})
    paused = form_post(client, page, f"{page}/pause", {"reason": "Out of pork until Friday"})
    shown = client.get(page, headers=HTML).text
    by_api = client.get(
        f"/v1/merchants/{merchant.id}/audit-log?target_id={deal.id}", headers=staff.headers
    ).json()

    assert without.status_code == 422
    assert paused.status_code == 303
    assert services.db.run_sync(lambda s: s.get(Deal, deal.id).status) == "paused"
    assert "Out of pork until Friday" in shown
    assert [(e["action"], e["reason"]) for e in by_api["data"]] == [
        ("pause", "Out of pork until Friday"),
        ("publish", None),  # when the deal was put live
    ]


def test_an_operator_registers_a_merchant_and_sees_every_problem_at_once(
    client: TestClient, services: Services
) -> None:
    log_in(client, create_account(services, role=Role.OPERATOR))

    wrong = form_post(
        client,
        "/console/operator/merchants",
        "/console/operator/merchants",
        {
            "name": "",
            "slug": "Not A Slug",
            "country": "XX",
            "currency": "RUPIAH",
            "time_zone": "Mars",
        },
    )
    right = form_post(
        client,
        "/console/operator/merchants",
        "/console/operator/merchants",
        {k: v for k, v in APPLICATION.items() if k != "pitch"},
    )

    assert wrong.status_code == 422
    for field in ("name", "slug", "country", "currency", "time_zone"):
        assert f'id="{field}-error"' in wrong.text, field
    assert right.status_code == 303
    created = services.db.run_sync(
        lambda s: s.scalar(select(Merchant).where(Merchant.slug == "bakso-pak-min"))
    )
    assert created is not None
    assert created.status == "pending"


def test_an_application_approved_makes_a_merchant_with_the_applicant_as_staff(
    client: TestClient, services: Services
) -> None:
    applicant = create_account(services)
    log_in(client, applicant)
    sent = form_post(client, "/sell", "/sell", APPLICATION)
    again = form_post(client, "/sell", "/sell", {**APPLICATION, "slug": "bakso-dua"})
    application = services.db.run_sync(lambda s: s.scalar(select(MerchantApplication)))
    assert application is not None

    log_in(client, create_account(services, role=Role.OPERATOR))
    queue = client.get("/console/operator/applications", headers=HTML).text
    approved = form_post(
        client,
        "/console/operator/applications",
        f"/console/operator/applications/{application.id}/approve",
        {},
    )
    twice = form_post(
        client,
        "/console/operator/applications",
        f"/console/operator/applications/{application.id}/approve",
        {},
    )
    merchant_id = services.db.run_sync(
        lambda s: s.get(MerchantApplication, application.id).merchant_id
    )
    log_in(client, applicant)
    console = client.get(f"/console/merchants/{merchant_id}", headers=HTML)

    assert sent.status_code == 303
    assert again.status_code == 409
    assert "Bakso Pak Min" in queue
    assert approved.status_code == 303
    assert twice.status_code == 409
    assert merchant_id is not None
    assert services.db.run_sync(lambda s: s.get(Merchant, merchant_id).status) == "approved"
    assert services.db.run_sync(lambda s: s.get(MerchantStaff, (merchant_id, applicant.user_id)))
    assert console.status_code == 200


def test_a_rejection_needs_a_reason_and_the_applicant_reads_it_in_chinese(
    client: TestClient, services: Services
) -> None:
    applicant = create_account(services)
    log_in(client, applicant)
    form_post(client, "/sell", "/sell", APPLICATION)
    application = services.db.run_sync(lambda s: s.scalar(select(MerchantApplication)))
    assert application is not None
    log_in(client, create_account(services, role=Role.OPERATOR))
    action = f"/console/operator/applications/{application.id}/reject"

    without = form_post(client, "/console/operator/applications", action, {"reason": ""})
    rejected = form_post(
        client, "/console/operator/applications", action, {"reason": "No food licence attached"}
    )
    speak_chinese(services, applicant)
    log_in(client, applicant)
    page = client.get("/sell", headers=HTML).text

    assert without.status_code == 422
    assert rejected.status_code == 303
    assert "No food licence attached" in page
    assert "已拒绝" in page
    assert services.db.run_sync(lambda s: s.scalar(select(Merchant.id))) is None


def test_the_api_keeps_the_reason_it_is_given_for_a_suspension_a_pause_and_an_end(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    paused, ended = create_deal(services.db, merchant), create_deal(services.db, merchant)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    operator = create_account(services, role=Role.OPERATOR)

    pause = client.post(
        f"/v1/deals/{paused.id}/pause", json={"reason": "Kitchen closed"}, headers=staff.headers
    )
    end = client.post(f"/v1/deals/{ended.id}/end", headers=staff.headers)
    too_long = client.post(
        f"/v1/merchants/{merchant.id}/suspend", json={"reason": "x" * 501}, headers=operator.headers
    )
    still = services.db.run_sync(lambda s: s.get(Merchant, merchant.id).status)
    suspend = client.post(
        f"/v1/merchants/{merchant.id}/suspend",
        json={"reason": "Chargebacks piling up"},
        headers=operator.headers,
    )
    log = client.get(f"/v1/merchants/{merchant.id}/audit-log", headers=staff.headers).json()

    assert (pause.status_code, end.status_code, suspend.status_code) == (200, 200, 200)
    assert too_long.status_code == 422
    assert still == "approved"
    reasons = {(e["action"], e["target"]["id"]): e["reason"] for e in log["data"]}
    assert reasons[("pause", paused.id)] == "Kitchen closed"
    assert reasons[("end", ended.id)] is None  # the API may say why; it need not
    assert reasons[("suspend", merchant.id)] == "Chargebacks piling up"
