"""HTTP endpoints of deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.deals import service
from pintuan.deals.schemas import DealIn, DealOut, DealPatch
from pintuan.domain.deals import DealSort, Vertical
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.roles import Principal
from pintuan.idempotency.http import run_write
from pintuan.kit.cached_reads import anonymous_json
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.readcache import DEAL_LISTS, deal_tag
from pintuan.kit.routing import Router
from pintuan.kit.schemas import ReasonIn
from pintuan.media.service import require_stored
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1/deals", tags=["deals"])


async def _require_stored(services: Services, urls: list[str]) -> None:
    await require_stored(services.media_store(), urls, "image_urls")


@router.post("", status_code=201, response_model=DealOut)
async def create_deal(
    body: DealIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Create a draft deal for a merchant you are staff of."""
    draft = body.to_draft()
    await _require_stored(services, draft.image_urls)

    def work(session: Session) -> DealOut:
        return DealOut.of(service.create_deal(session, principal, draft))

    return await run_write(request, services, principal, work, status_code=201)


@router.get("", response_model=Page[DealOut])
async def list_deals(
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
    merchant_id: Annotated[str | None, Query(max_length=40)] = None,
    vertical: Vertical | None = None,
    status: DealStatus | None = None,
    text: Annotated[
        str | None, Query(max_length=100, description="Words in title or description")
    ] = None,
    country: Annotated[
        str | None,
        Query(pattern="^[A-Z]{2}$", description="Only deals of merchants in this country"),
    ] = None,
    currency: Annotated[
        str | None, Query(pattern="^[A-Z]{3}$", description="Only deals priced in this currency")
    ] = None,
    sort: Annotated[
        DealSort,
        Query(
            description="newest (default), ending_soon (nearest end first), discount (largest "
            "share off the list price first) or popular (most units taken first)"
        ),
    ] = DealSort.NEWEST,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[DealOut] | Response:
    """Deals newest first, or in ``sort`` order. Live ones by default; drafts only for a
    merchant you manage. A cursor continues the order it came from. Anonymous callers get an
    answer at most a second old, with an ``ETag``."""
    filters = service.DealFilters(
        merchant_id=merchant_id,
        vertical=vertical,
        status=status,
        text=text,
        country=country,
        currency=currency,
        sort=sort,
    )

    async def build() -> tuple[Page[DealOut], list[str]]:
        rows = await services.db.read_stale(
            lambda s: service.list_deals(s, principal, filters, cursor=cursor, limit=limit)
        )
        page = page_of(rows, limit, DealOut.of)
        if page.next_cursor is not None:
            page.next_cursor = service.deal_cursor(sort, rows[limit - 1])
        return page, [DEAL_LISTS]

    if principal is None and services.reads.enabled:
        return await anonymous_json(request, services.reads, build)
    return (await build())[0]


@router.get("/{deal_id}", response_model=DealOut)
async def read_deal(
    deal_id: str, request: Request, principal: MaybePrincipal, services: ServicesDep
) -> DealOut | Response:
    """A deal; anonymous callers get it at most a second old, with an ``ETag``."""

    async def build() -> tuple[DealOut, list[str]]:
        deal = DealOut.of(await services.db.read(service.visible_deal, principal, deal_id))
        return deal, [deal_tag(deal_id)]

    if principal is None and services.reads.enabled:
        return await anonymous_json(request, services.reads, build)
    return (await build())[0]


@router.patch("/{deal_id}", response_model=DealOut)
async def update_deal(
    deal_id: str, body: DealPatch, principal: CurrentPrincipal, services: ServicesDep
) -> DealOut:
    """Change a deal. Drafts change freely; live and paused deals only their copy, stock, end."""
    changes = body.to_changes()
    await _require_stored(services, changes.get("image_urls", []))
    deal = await services.db.run(service.update_deal, principal, deal_id, changes)
    return DealOut.of(deal)


async def _change_status(
    deal_id: str,
    action: str,
    request: Request,
    principal: Principal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    reason = body.reason if body else None

    def work(session: Session) -> DealOut:
        return DealOut.of(
            service.change_deal_status(session, principal, deal_id, action, reason=reason)
        )

    return await run_write(request, services, principal, work)


@router.post("/{deal_id}/publish", response_model=DealOut)
async def publish_deal(
    deal_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Put a draft or paused deal live (its merchant must be approved)."""
    return await _change_status(deal_id, "publish", request, principal, services)


@router.post("/{deal_id}/pause", response_model=DealOut)
async def pause_deal(
    deal_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    """Stop new teams and joins for a while; teams already forming keep their window.
    An optional ``reason`` is kept in the audit log."""
    return await _change_status(deal_id, "pause", request, principal, services, body)


@router.post("/{deal_id}/end", response_model=DealOut)
async def end_deal(
    deal_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    """End a deal for good."""
    return await _change_status(deal_id, "end", request, principal, services, body)


@router.post("/{deal_id}/moderate", response_model=DealOut)
async def moderate_deal(
    deal_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    """Stop a live or paused deal (operators): it takes no joins, leaves public lists, and only
    an operator can release it."""
    return await _change_status(deal_id, "moderate", request, principal, services, body)


@router.post("/{deal_id}/unmoderate", response_model=DealOut)
async def unmoderate_deal(
    deal_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ReasonIn | None = None,
) -> Response:
    """Release a moderated deal (operators); it is paused until its merchant publishes it."""
    return await _change_status(deal_id, "unmoderate", request, principal, services, body)
