"""An attacker with database rights changes posted money; ``pintuan audit`` finds each change.

The world: a merchant at a 10% commission; one team of holds captured (the merchant earns 4,500
of each 5,000 seat, the platform 500), one team of charges failed and refunded, the day settled.
Every case lifts the ledger's append-only triggers first, as a real attacker would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pintuan.cli import app as cli
from pintuan.config import get_settings
from pintuan.kit.time import clock, utc_now
from pintuan.ledger.models import Entry, Journal, SettlementStatement
from pintuan.ledger.settlement import settle_day
from pintuan.merchants.models import Merchant
from pintuan.payments.providers.sandbox import SandboxOperation
from pintuan.services import Services
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_ledger import pay
from tests.tampering import tamper

PRICE = 5000


@pytest.fixture
def world(
    client: TestClient,
    charging: tuple[TestClient, Services],
    services: Services,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    merchant = create_merchant(services.db, time_zone="UTC")
    services.db.run_sync(
        lambda s: s.execute(
            update(Merchant).where(Merchant.id == merchant.id).values(commission_bps=1000)
        )
    )
    deal = create_deal(services.db, merchant, team_size=2, group_price=PRICE, list_price=2 * PRICE)
    held = _team(client, services, deal.id)
    Worker(services).run_until_idle()  # the team succeeded: both holds are captured
    charge_client, charge_services = charging
    charged = _team(charge_client, charge_services, deal.id, fill=False)
    clock.advance(timedelta(days=1, hours=2))
    Worker(charge_services).run_until_idle()  # the lone charge's team fails: refunded
    day = (utc_now() - timedelta(days=1, hours=2)).date()  # (and the day is settled)
    services.db.run_sync(lambda s: settle_day(s, merchant.id, day))  # if the worker has not
    assert (
        services.db.run_sync(
            lambda s: s.scalar(
                select(SettlementStatement.gross).where(SettlementStatement.day == day)
            ),
            write=False,
        )
        == 2 * PRICE
    )
    monkeypatch.setenv("PINTUAN_DATABASE_URL", database_url)
    monkeypatch.setenv("PINTUAN_ENV", "test")
    get_settings.cache_clear()
    yield {"merchant": merchant.id, "held": held[0], "charged": charged[0]}
    get_settings.cache_clear()


def _team(client: TestClient, services: Services, deal_id: str, *, fill: bool = True) -> list[str]:
    shoppers = [create_account(services) for _ in range(2 if fill else 1)]
    started = client.post(f"/v1/deals/{deal_id}/teams", headers=shoppers[0].headers).json()
    seats = [started["seat"]["id"]]
    if fill:
        joined = client.post(
            f"/v1/teams/{started['team']['id']}/seats", headers=shoppers[1].headers
        ).json()
        seats.append(joined["seat"]["id"])
    return [pay(client, shopper, seat)["id"] for shopper, seat in zip(shoppers, seats, strict=True)]


def audit() -> Any:
    return CliRunner().invoke(cli, ["audit"])


def _one_entry(s: Session, journal_id: str, account_like: str) -> int:
    found = s.scalar(
        select(Entry.id).where(Entry.journal_id == journal_id, Entry.account.like(account_like))
    )
    assert found is not None
    return found


def change_one_entry(s: Session, world: dict[str, str]) -> None:
    entry = _one_entry(s, f"{world['held']}:earn", "merchant_payable:%")
    s.execute(update(Entry).where(Entry.id == entry).values(amount=Entry.amount - 1))


def move_the_fee(s: Session, world: dict[str, str]) -> None:
    journal = f"{world['held']}:earn"
    fee = _one_entry(s, journal, "platform_fees")
    to_merchant = _one_entry(s, journal, "merchant_payable:%")
    s.execute(update(Entry).where(Entry.id == fee).values(amount=-1))
    s.execute(update(Entry).where(Entry.id == to_merchant).values(amount=Entry.amount - 499))


def halve_an_authorisation(s: Session, world: dict[str, str]) -> None:
    s.execute(
        update(Entry)
        .where(Entry.journal_id == f"{world['held']}:authorize")
        .values(amount=Entry.amount / 2)
    )


def delete_a_refund(s: Session, world: dict[str, str]) -> None:
    journal = f"{world['charged']}:refund"
    assert s.execute(delete(Entry).where(Entry.journal_id == journal)).rowcount == 2
    s.execute(delete(Journal).where(Journal.id == journal))


def edit_a_statement(s: Session, world: dict[str, str]) -> None:
    s.execute(
        update(SettlementStatement)
        .where(SettlementStatement.merchant_id == world["merchant"])
        .values(gross=SettlementStatement.gross - PRICE, net=SettlementStatement.net - 4500)
    )


def duplicate_a_capture(s: Session, world: dict[str, str]) -> None:
    capture = s.scalars(select(SandboxOperation).where(SandboxOperation.kind == "capture")).first()
    assert capture is not None
    s.execute(
        insert(SandboxOperation).values(
            idempotency_key=capture.idempotency_key + ":again",
            ref=capture.ref,
            kind="capture",
            amount=capture.amount,
            created_at=capture.created_at,
        )
    )


CASES: dict[str, tuple[Callable[[Session, dict[str, str]], None], str]] = {
    "change one entry's amount": (change_one_entry, "is off by"),
    "move 499 of a 500 fee to the merchant": (move_the_fee, "10 fees at the rate in force"),
    "halve an authorisation's entries": (halve_an_authorisation, "but its entries move 2500"),
    "delete a refund journal": (delete_a_refund, "our ledger paid back 0 at the provider"),
    "edit a statement": (edit_a_statement, "10 statements re-add from entries"),
    "duplicate a capture at the provider": (duplicate_a_capture, "6 captured + voided + held"),
}


def test_the_untouched_world_passes_the_audit(world: dict[str, str]) -> None:
    result = audit()

    assert result.exit_code == 0, result.output
    assert "Audit passed" in result.output


@pytest.mark.parametrize("case", list(CASES))
def test_each_tampering_is_reported_by_the_audit(
    case: str, world: dict[str, str], services: Services
) -> None:
    change, expected = CASES[case]
    tamper(services.db, lambda s: change(s, world))

    result = audit()

    assert result.exit_code == 1, result.output
    assert expected in result.output, result.output


def test_posted_entries_and_journals_refuse_change_without_tampering(
    world: dict[str, str], services: Services
) -> None:
    attempts: list[Callable[[Session], Any]] = [
        lambda s: s.execute(update(Entry).values(amount=Entry.amount * 2)),
        lambda s: s.execute(delete(Entry)),
        lambda s: s.execute(update(Journal).where(Journal.kind == "earn").values(amount=1)),
        lambda s: s.execute(delete(Journal).where(Journal.kind == "refund")),
        lambda s: s.execute(
            update(Journal).where(Journal.kind == "authorize").values(status="pending")
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Exception, match="append-only"):
            services.db.run_sync(attempt)

    assert audit().exit_code == 0
