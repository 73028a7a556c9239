"""The audit of honest auto-fill, recomputed from facts (``domain/autofill.py``): each budget
has used exactly the group price of the seats its filled teams record, within its limit; each
team the platform filled has exactly its one ``fill_subsidy`` journal, of that amount, to its
merchant; no other team has one."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.autofill import PLATFORM_PAYER, FundedBy, fill_cost
from pintuan.domain.ledger import JournalKind
from pintuan.fills.models import FillBudget
from pintuan.ledger.fills import fill_journal_id
from pintuan.ledger.models import Journal
from pintuan.teams.models import Team


def platform_fills(session: Session) -> dict[tuple[str, str], int]:
    """What the platform paid each merchant for filled seats, per (merchant, currency), from the
    teams themselves."""
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for merchant_id, currency, seats, price in session.execute(
        select(Deal.merchant_id, Deal.currency, Team.filled_seats, Deal.group_price_amount)
        .join(Deal, Deal.id == Team.deal_id)
        .where(Team.filled_by == FundedBy.PLATFORM.value, Team.status == "succeeded")
    ):
        paid[(merchant_id, currency)] += fill_cost(int(seats), int(price))
    return paid


def fill_breaches(session: Session) -> list[str]:
    found: list[str] = []
    used: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    subsidies: dict[str, tuple[int, str]] = {}
    for team_id, status, seats, funded_by, merchant_id, currency, price in session.execute(
        select(
            Team.id,
            Team.status,
            Team.filled_seats,
            Team.filled_by,
            Deal.merchant_id,
            Deal.currency,
            Deal.group_price_amount,
        )
        .join(Deal, Deal.id == Team.deal_id)
        .where(Team.filled_seats > 0)
    ):
        if status != "succeeded":
            found.append(f"team {team_id} is {status} yet has {seats} filled seats")
        payer = merchant_id if funded_by == FundedBy.MERCHANT.value else PLATFORM_PAYER
        cost = fill_cost(int(seats), int(price))
        used[(payer, currency)][0] += cost
        used[(payer, currency)][1] += int(seats)
        if funded_by == FundedBy.PLATFORM.value:
            subsidies[fill_journal_id(team_id)] = (cost, merchant_id)
    for budget in session.scalars(select(FillBudget)):
        amount, seats = used.pop((budget.payer, budget.currency), [0, 0])
        if (budget.used_amount, budget.filled_seats) != (amount, seats):
            found.append(
                f"fill budget {budget.payer} {budget.currency}: used {budget.used_amount} for "
                f"{budget.filled_seats} seats, but its teams filled {seats} seats worth {amount}"
            )
        if budget.used_amount > budget.limit_amount:
            found.append(f"fill budget {budget.payer} {budget.currency} is past its limit")
    for (payer, currency), (amount, _) in used.items():
        found.append(f"teams filled {amount} {currency} for {payer}, who has no budget")
    for journal_id, amount, owner in session.execute(
        select(Journal.id, Journal.amount, Journal.merchant_id).where(
            Journal.kind == JournalKind.FILL_SUBSIDY.value
        )
    ):
        expected = subsidies.pop(journal_id, None)
        if expected != (int(amount), owner):
            found.append(f"fill subsidy {journal_id} of {amount} for {owner}: {expected}")
    found += [f"team filled by the platform has no journal {j}" for j in subsidies]
    return found
