"""Budgets for honest auto-fill (``domain/autofill.py``): a merchant's staff set their merchant's
limit, operators the platform's (per currency), and both see what was used and which teams were
filled. The fills themselves happen in the engine (``teams/service.py``), by one conditional
write on the budget's row; here only the limit is set, never below what is used already."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.autofill import PLATFORM_PAYER
from pintuan.domain.roles import Principal
from pintuan.errors import Conflict, Forbidden, InvalidInput, NotFound
from pintuan.fills.models import FillBudget
from pintuan.kit.money import Money, max_amount
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.teams.models import Team


@dataclass(frozen=True, slots=True)
class BudgetView:
    payer: str
    currency: str
    limit: int
    used: int
    filled_seats: int
    updated_at: datetime | None

    @property
    def left(self) -> int:
        return self.limit - self.used


@dataclass(frozen=True, slots=True)
class FilledTeam:
    id: str  # the team's
    deal_id: str
    deal_title: str
    merchant_id: str
    seats: int
    funded_by: str
    cost: int
    currency: str
    ended_at: datetime | None


def require_payer(session: Session, principal: Principal, payer: str) -> str:
    """Who may read and set ``payer``'s budget: its merchant's staff, and operators (the
    platform's: operators only). Returns the budget's currency for a merchant (its own), or
    an empty string for the platform (it has one budget per currency)."""
    if payer == PLATFORM_PAYER:
        if not principal.is_operator:
            raise Forbidden("Only platform operators manage its budget.", code="operator_only")
        return ""
    merchant = session.get(Merchant, payer)
    if merchant is None or not principal.can_manage(payer):
        raise NotFound(f"No merchant {payer}.", code="merchant_not_found")
    return merchant.currency


def budget_of(session: Session, payer: str, currency: str) -> BudgetView:
    found = session.get(FillBudget, (payer, currency))
    if found is None:
        return BudgetView(payer, currency, 0, 0, 0, None)
    return BudgetView(
        payer,
        currency,
        found.limit_amount,
        found.used_amount,
        found.filled_seats,
        found.updated_at,
    )


def budgets_of_platform(session: Session) -> list[BudgetView]:
    rows = session.scalars(
        select(FillBudget).where(FillBudget.payer == PLATFORM_PAYER).order_by(FillBudget.currency)
    )
    return [
        BudgetView(r.payer, r.currency, r.limit_amount, r.used_amount, r.filled_seats, r.updated_at)
        for r in rows
    ]


def set_limit(session: Session, principal: Principal, payer: str, limit: Money) -> BudgetView:
    """Set ``payer``'s limit in ``limit.currency`` (a merchant's: its own currency only); never
    below what it has used (``409 fill_budget_below_used``)."""
    own = require_payer(session, principal, payer)
    if own and limit.currency != own:
        raise InvalidInput(
            f"A merchant's budget is in its currency, {own}.",
            extra={"errors": [{"field": "limit.currency", "message": f"must be {own}"}]},
        )
    if not 0 <= limit.amount <= max_amount(limit.currency):
        raise InvalidInput(
            "A limit is 0 or more minor units.",
            extra={"errors": [{"field": "limit.amount", "message": "must be 0 or more"}]},
        )
    now = utc_now()
    found = session.get(FillBudget, (payer, limit.currency))
    if found is None:
        session.add(
            FillBudget(
                payer=payer,
                currency=limit.currency,
                limit_amount=limit.amount,
                used_amount=0,
                filled_seats=0,
                updated_at=now,
            )
        )
        session.flush()
        return budget_of(session, payer, limit.currency)
    # Conditional on what is used, which a fill may be moving at this very moment.
    changed = session.execute(
        update(FillBudget)
        .where(
            FillBudget.payer == payer,
            FillBudget.currency == limit.currency,
            FillBudget.used_amount <= limit.amount,
        )
        .values(limit_amount=limit.amount, updated_at=now)
        .returning(FillBudget.payer)
    ).first()
    if changed is None:
        session.refresh(found)
        raise Conflict(
            f"{found.used_amount} minor units of this budget are used already; the limit "
            "cannot go below them.",
            code="fill_budget_below_used",
            extra={"used": found.used_amount},
        )
    session.expire(found)
    return budget_of(session, payer, limit.currency)


def filled_teams(
    session: Session, payer: str, *, cursor: str | None, limit: int
) -> list[FilledTeam]:
    """Teams a budget filled, newest first (``limit + 1`` rows): for a merchant, every filled
    team of its deals (by its budget or the platform's); for the platform, those it paid."""
    query = (
        select(
            Team.id,
            Team.deal_id,
            Deal.title,
            Deal.merchant_id,
            Team.filled_seats,
            Team.filled_by,
            Deal.group_price_amount,
            Deal.currency,
            Team.ended_at,
        )
        .join(Deal, Deal.id == Team.deal_id)
        .where(Team.filled_seats > 0)
        .order_by(Team.id.desc())
        .limit(limit + 1)
    )
    if payer == PLATFORM_PAYER:
        query = query.where(Team.filled_by == "platform")
    else:
        query = query.where(Deal.merchant_id == payer)
    if cursor:
        query = query.where(Team.id < decode_cursor(cursor))
    return [
        FilledTeam(
            id=r[0],
            deal_id=r[1],
            deal_title=r[2],
            merchant_id=r[3],
            seats=int(r[4]),
            funded_by=str(r[5]),
            cost=int(r[4]) * int(r[6]),
            currency=r[7],
            ended_at=r[8],
        )
        for r in session.execute(query)
    ]
