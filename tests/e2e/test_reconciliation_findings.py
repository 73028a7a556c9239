"""The daily reconciliation's open findings on the operator console, in a real browser at 375
and 1280 px, in English and Simplified Chinese: an operator explains one with a note."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import Browser, expect

from pintuan.domain.roles import Role
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from pintuan.ledger.models import ReconciliationFinding
from tests.e2e.browsing import screenshot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_accessibility import blocking_violations
from tests.e2e.test_console_oversight import CASES, no_word_breaks_in_cells, signed_in
from tests.factories import create_account


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_an_operator_explains_an_open_finding(
    browser: Browser, live_server: LiveServer, lang: str, width: str
) -> None:
    services = live_server.services
    ref = f"sbx_{lang}{width}"
    now = utc_now()
    services.db.run_sync(
        lambda s: s.add(
            ReconciliationFinding(
                id=new_id("rcf"),
                key=f"sandbox|2026-11-20|extra|payment|{ref}",
                provider="sandbox",
                day=date(2026, 11, 20),
                difference="extra",
                kind="payment",
                provider_ref=ref,
                ours_id=f"{ref}:charge",
                ours_amount=1500,
                currency="USD",
                state="open",
                found_at=now,
                updated_at=now,
            )
        )
    )
    operator = create_account(services, role=Role.OPERATOR, name="Olga")
    olga, page = signed_in(browser, live_server, operator, lang, width)

    page = olga.open("/console/operator/reconciliation")
    row = page.locator("#kept-heading ~ .table-wrap tr", has_text=ref)
    expect(row).to_be_visible()
    problems = blocking_violations(page)
    no_word_breaks_in_cells(page)
    screenshot(page, f"operator-reconciliation-findings-{lang}-{width}")
    row.locator("input[name=note]").fill("late notification" if lang == "en" else "通知迟到")
    row.locator("button[value=explained]").click()

    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("#kept-heading ~ .table-wrap tr", has_text=ref)).to_have_count(0)
    screenshot(page, f"operator-reconciliation-explained-{lang}-{width}")
    olga.close()
    assert problems == [], problems
