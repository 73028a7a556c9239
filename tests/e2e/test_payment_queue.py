"""The operators' payments queue in a real browser, at 375 and 1280 px, in English and
Simplified Chinese: a hold the sandbox let go is in the queue with its history, and an operator
closes it, the payer having kept their money."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from pintuan.domain.roles import Role
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxProvider
from tests.e2e.browsing import screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import CASES, no_word_breaks_in_cells, signed_in
from tests.e2e.test_consoles import join_and_pay
from tests.factories import create_account, create_deal, create_merchant


def a_lapsed_hold(server: LiveServer) -> str:
    """A shopper's paid hold in a team still forming, which the sandbox then lets go."""
    services = server.services
    deal = create_deal(services.db, create_merchant(services.db), team_size=3)
    team_id = join_and_pay(server, deal.id, [create_account(services, name="Mei")])
    payment = services.db.run_sync(
        lambda s: s.scalars(select(Payment).where(Payment.team_id == team_id)).one(),
        write=False,
    )
    sandbox = services.providers["sandbox"]
    assert isinstance(sandbox, SandboxProvider)
    body, headers = sandbox.expire_hold(sandbox.intent_of_payment(payment.id).ref)
    with httpx.Client(base_url=server.url, timeout=10) as api:
        told = api.post("/v1/webhooks/sandbox", content=body, headers=headers)
        assert told.status_code == 200, told.text
    return payment.id


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_an_operator_sees_a_lapsed_hold_in_the_queue_and_closes_it(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    payment_id = a_lapsed_hold(live_server)
    operator = create_account(live_server.services, role=Role.OPERATOR, name="Olga")
    olga, page = signed_in(browser, live_server, operator, lang, width)

    page = olga.open("/console/operator/payments")
    row = page.locator(".console-table tbody tr", has_text=payment_id)
    expect(row).to_be_visible()
    expect(row).to_contain_text(
        "The hold ended before its capture" if lang == "en" else "预授权在扣款前已到期"
    )
    row.locator("summary").click()
    expect(row.locator(".attempts li")).to_have_count(1)
    problems = blocking_violations(page)
    no_word_breaks_in_cells(page)
    screenshot(page, f"operator-payments-queue-{lang}-{width}")

    row.locator(f"form[action$='/{payment_id}/refund'] button").click()
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator(".empty")).to_be_visible()
    screenshot(page, f"operator-payments-refunded-{lang}-{width}")
    olga.close()
    assert problems == [], problems
