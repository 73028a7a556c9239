"""HTTP endpoints of auto-fill budgets (``domain/autofill.py``): a merchant's, set by its staff;
the platform's, per currency, set by operators; and the teams each filled."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.autofill import PLATFORM_PAYER
from pintuan.domain.roles import Principal
from pintuan.fills import service
from pintuan.fills.schemas import BudgetIn, BudgetOut, FilledTeamOut, PlatformBudgetsOut
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1", tags=["auto-fill"])


@router.get("/merchants/{merchant_id}/fill-budget", response_model=BudgetOut)
async def merchant_budget(
    merchant_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> BudgetOut:
    """The merchant's auto-fill budget: its limit, what filled seats used, what is left."""

    def read(session: Session) -> BudgetOut:
        currency = service.require_payer(session, principal, merchant_id)
        return BudgetOut.of(service.budget_of(session, merchant_id, currency))

    return await services.db.read(read)


@router.put("/merchants/{merchant_id}/fill-budget", response_model=BudgetOut)
async def set_merchant_budget(
    merchant_id: str, body: BudgetIn, principal: CurrentPrincipal, services: ServicesDep
) -> BudgetOut:
    """Set the limit of the merchant's auto-fill budget (never below what is used)."""
    return BudgetOut.of(
        await services.db.run(
            lambda s: service.set_limit(s, principal, merchant_id, body.limit.to_money())
        )
    )


@router.get("/merchants/{merchant_id}/filled-teams", response_model=Page[FilledTeamOut])
async def merchant_filled_teams(
    merchant_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[FilledTeamOut]:
    """The merchant's teams that a budget filled (its own or the platform's), newest first."""

    return await _filled_teams(services, principal, merchant_id, cursor, limit)


@router.get("/ops/fill-budget", response_model=PlatformBudgetsOut)
async def platform_budgets(
    principal: CurrentPrincipal, services: ServicesDep
) -> PlatformBudgetsOut:
    """The platform's auto-fill budgets, one per currency (operators)."""

    def read(session: Session) -> PlatformBudgetsOut:
        service.require_payer(session, principal, PLATFORM_PAYER)
        return PlatformBudgetsOut(
            data=[BudgetOut.of(b) for b in service.budgets_of_platform(session)]
        )

    return await services.db.read(read)


@router.put("/ops/fill-budget", response_model=BudgetOut)
async def set_platform_budget(
    body: BudgetIn, principal: CurrentPrincipal, services: ServicesDep
) -> BudgetOut:
    """Set the limit of the platform's auto-fill budget in the limit's currency (operators)."""
    return BudgetOut.of(
        await services.db.run(
            lambda s: service.set_limit(s, principal, PLATFORM_PAYER, body.limit.to_money())
        )
    )


@router.get("/ops/filled-teams", response_model=Page[FilledTeamOut])
async def platform_filled_teams(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[FilledTeamOut]:
    """Teams the platform's budget filled, newest first (operators)."""

    return await _filled_teams(services, principal, PLATFORM_PAYER, cursor, limit)


async def _filled_teams(
    services: Services, principal: Principal, payer: str, cursor: str | None, limit: int
) -> Page[FilledTeamOut]:
    def read(session: Session) -> Page[FilledTeamOut]:
        service.require_payer(session, principal, payer)
        rows = service.filled_teams(session, payer, cursor=cursor, limit=limit)
        return page_of(rows, limit, FilledTeamOut.of)

    return await services.db.report(read)
