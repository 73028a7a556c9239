"""Settlement by effective date: a day settles after its grace period, and money dated a day
but recorded after its statement lands on the next statement, never outside every statement.

The issue's probe: two teams of 20,000 each succeed just before the merchant's midnight; one's
capture is confirmed only after the day was settled. Before, the day's statement showed 20,000
while 40,000 of earnings were dated that day, and the audit passed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pintuan.audit.facts import check_facts
from pintuan.audit.service import audit_database
from pintuan.ledger.models import SettlementLine, SettlementStatement
from pintuan.ledger.settlement import settle_day
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_ledger import pay
from tests.features.test_settlement import at
from tests.tampering import tamper

SEAT = 10000  # a team of two is 20,000
D = date(2026, 11, 20)
# Shanghai is UTC+8: its midnight between the 20th and the 21st is 16:00 UTC on the 20th.
MIDNIGHT = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def _fill(client: TestClient, services: Services, deal_id: str) -> None:
    shoppers = [create_account(services) for _ in range(2)]
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers).json()
    joined = client.post(
        f"/v1/teams/{started['team']['id']}/seats", headers=shoppers[1].headers
    ).json()
    for shopper, seat in zip(shoppers, (started["seat"], joined["seat"]), strict=True):
        pay(client, shopper, seat["id"])


def _statements(services: Services, merchant_id: str) -> dict[date, SettlementStatement]:
    def read(s: Session) -> dict[date, SettlementStatement]:
        rows = s.scalars(
            select(SettlementStatement).where(SettlementStatement.merchant_id == merchant_id)
        ).all()
        for row in rows:
            s.expunge(row)
        return {row.day: row for row in rows}

    return services.db.run_sync(read, write=False)


def _sound(services: Services) -> None:
    assert services.db.run_sync(check_facts, write=False) == []


@pytest.fixture
def merchant(services: Services) -> Merchant:
    return create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")


def test_a_day_settles_only_after_its_grace_period(
    client: TestClient, services: Services, merchant: Merchant
) -> None:
    at(MIDNIGHT - timedelta(minutes=30))
    deal = create_deal(services.db, merchant, team_size=2, group_price=SEAT, list_price=2 * SEAT)
    _fill(client, services, deal.id)
    Worker(services).run_until_idle()

    at(MIDNIGHT + timedelta(minutes=59))
    early = services.db.run_sync(lambda s: settle_day(s, merchant.id, D))
    at(MIDNIGHT + timedelta(minutes=61))
    on_time = services.db.run_sync(lambda s: settle_day(s, merchant.id, D))
    again = services.db.run_sync(lambda s: settle_day(s, merchant.id, D))

    assert (early, on_time, again) == (0, 1, 0)
    statement = _statements(services, merchant.id)[D]
    assert (statement.orders, statement.gross, statement.adjustments) == (2, 2 * SEAT, 0)
    assert statement.cutoff_at == MIDNIGHT
    _sound(services)


def test_money_dated_a_settled_day_lands_on_the_next_statement_as_an_adjustment(
    client: TestClient, services: Services, merchant: Merchant
) -> None:
    # given two teams succeeding at 23:50 and 23:55 Shanghai time; the first is captured at once
    at(MIDNIGHT - timedelta(minutes=10))
    deal = create_deal(services.db, merchant, team_size=2, group_price=SEAT, list_price=2 * SEAT)
    _fill(client, services, deal.id)
    Worker(services).run_until_idle()
    at(MIDNIGHT - timedelta(minutes=5))
    _fill(client, services, deal.id)  # its captures are owed; nobody runs the worker yet

    # when the day is settled after the grace period, before the second team's captures
    at(MIDNIGHT + timedelta(hours=1, minutes=5))
    assert services.db.run_sync(lambda s: settle_day(s, merchant.id, D)) == 1
    _sound(services)
    # and the captures are confirmed afterwards, dated when the team succeeded
    at(MIDNIGHT + timedelta(hours=2))
    Worker(services).run_until_idle()
    _sound(services)
    # and the next day settles
    at(MIDNIGHT + timedelta(days=1, hours=1, minutes=5))
    Worker(services).run_until_idle()

    # then the day's statement kept what it saw, and the next one carries the rest
    statements = _statements(services, merchant.id)
    first, second = statements[D], statements[D + timedelta(days=1)]
    assert (first.orders, first.gross, first.net) == (2, 2 * SEAT, 2 * SEAT)
    assert (second.orders, second.gross, second.adjustments) == (0, 0, 2 * SEAT)
    assert second.closing_balance == 4 * SEAT  # all 40,000 dated the 20th, on some statement
    assert services.db.run_sync(audit_database, write=False) == []

    # and a journal taken off every statement is reported
    tamper(
        services.db,
        lambda s: s.execute(delete(SettlementLine).where(SettlementLine.statement_id == second.id)),
    )
    details = [f.detail for f in services.db.run_sync(check_facts, write=False)]
    assert any("is on no statement" in d for d in details), details
    assert any("its journals add up to" in d for d in details), details


def test_the_probe_a_statement_short_of_what_is_dated_its_day_is_reported(
    client: TestClient, services: Services, merchant: Merchant
) -> None:
    at(MIDNIGHT - timedelta(minutes=10))
    deal = create_deal(services.db, merchant, team_size=2, group_price=SEAT, list_price=2 * SEAT)
    _fill(client, services, deal.id)
    _fill(client, services, deal.id)
    Worker(services).run_until_idle()
    at(MIDNIGHT + timedelta(hours=1, minutes=5))
    assert services.db.run_sync(lambda s: settle_day(s, merchant.id, D)) == 1
    statement = _statements(services, merchant.id)[D]
    assert statement.gross == 4 * SEAT

    # a statement rewritten to show half of the day (as the old race left it)
    tamper(
        services.db,
        lambda s: s.execute(
            SettlementStatement.__table__.update()
            .where(SettlementStatement.id == statement.id)
            .values(orders=2, gross=2 * SEAT, net=2 * SEAT, closing_balance=2 * SEAT)
        ),
    )

    details = [f.detail for f in services.db.run_sync(check_facts, write=False)]
    assert any(statement.id in d and "add up to" in d for d in details), details
