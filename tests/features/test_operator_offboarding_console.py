"""The operator console's buttons for stopping a deal and disabling a user."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.console_data import HTML, form_post, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant


def test_an_operator_stops_a_deal_from_the_console_and_releases_it_again(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), title="Too good to be true")
    log_in(client, create_account(services, role=Role.OPERATOR))

    stopped = form_post(
        client,
        "/console/operator/deals",
        f"/console/operator/deals/{deal.id}/moderate",
        {"reason": "Misleading pictures"},
    )
    status_after_stop = services.db.run_sync(lambda s: s.get(Deal, deal.id).status)
    queue = client.get("/console/operator/deals?status=moderated", headers=HTML).text
    released = form_post(
        client,
        "/console/operator/deals?status=moderated",
        f"/console/operator/deals/{deal.id}/unmoderate",
        {},
    )

    assert (stopped.status_code, status_after_stop) == (303, "moderated")
    assert "Too good to be true" in queue
    assert "Stopped by operators" in queue
    assert released.status_code == 303
    assert services.db.run_sync(lambda s: s.get(Deal, deal.id).status) == "paused"


def test_an_operator_disables_a_user_from_the_console_and_their_token_stops_working(
    client: TestClient, services: Services
) -> None:
    shopper = create_account(services, name="Wen Gone", email="wen@example.com")
    operator = create_account(services, role=Role.OPERATOR)
    speak_chinese(services, operator)
    log_in(client, operator)

    page = client.get("/console/operator/users?text=wen%40", headers=HTML).text
    disabled = form_post(
        client,
        "/console/operator/users?text=wen%40",
        f"/console/operator/users/{shopper.user_id}/disable",
        {"next": "/console/operator/users?text=wen%40"},
    )
    after = client.get(disabled.headers["location"], headers=HTML).text

    assert "停用" in page
    assert disabled.status_code == 303
    assert services.db.run_sync(lambda s: s.get(User, shopper.user_id).disabled_at) is not None
    assert "该用户已停用" in after
    assert "启用" in after
    client.cookies.clear()
    assert client.get("/v1/me", headers=shopper.headers).status_code == 401
