"""HTTP endpoints of the partner API (offers in, deals out) and the deep links apps send
shoppers through."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse

from pintuan.accounts.dependencies import MaybePrincipal
from pintuan.apps.dependencies import require_scope
from pintuan.deals.images_api import read_upload
from pintuan.domain.apps import AppPrincipal, Scope
from pintuan.domain.deals import Vertical
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.media.service import require_stored, store_image
from pintuan.partners import deep_links, service
from pintuan.partners.schemas import (
    ExternalId,
    OfferIn,
    OfferOut,
    PartnerDealOut,
    PartnerImageOut,
    PartnerTeamOut,
    PartnerTeamsOut,
    PublishedOfferOut,
)
from pintuan.services import Services, ServicesDep
from pintuan.shares.api import log_visit
from pintuan.shares.visitors import set_visitor_cookie

router = Router(prefix="/v1/partner", tags=["partner"])
links_router = Router(include_in_schema=False)

Publisher = Annotated[AppPrincipal, Depends(require_scope(Scope.OFFERS_WRITE))]
Reader = Annotated[AppPrincipal, Depends(require_scope(Scope.OFFERS_READ))]
ExternalIdPath = Annotated[ExternalId, Path()]


@router.put(
    "/offers/{external_id}",
    response_model=PublishedOfferOut,
    responses={201: {"model": PublishedOfferOut, "description": "The offer is new"}},
)
async def publish_offer(
    external_id: ExternalIdPath, body: OfferIn, app: Publisher, services: ServicesDep
) -> Response:
    """Publish or update an offer of the shop the token acts for: a live deal of that merchant.

    201 when it is new; 200 when it was updated or was already exactly this (``result`` says
    which). Once published only its copy, stock and end may change; stock never goes below
    what shoppers hold or bought (409 ``stock_below_committed``)."""
    offer = body.to_offer()
    await require_stored(services.media_store(), offer.media_urls, "media_urls")
    published = await services.db.run(service.publish_offer, app, external_id, offer, utc_now())
    out = PublishedOfferOut.of_published(published)
    status = 201 if published.outcome is service.Outcome.CREATED else 200
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


@router.post("/images", status_code=201, response_model=PartnerImageOut)
async def upload_offer_image(
    app: Publisher,
    services: ServicesDep,
    file: Annotated[UploadFile | None, File(description="A JPEG, PNG, WebP or GIF")] = None,
) -> PartnerImageOut:
    """Keep a picture for the app's offers (multipart field ``file``); put its ``url`` in an
    offer's ``media_urls``. Pages show only pictures this site serves, so an offer's pictures
    are uploaded here, checked, stripped of metadata and resized like a merchant's."""
    data = await read_upload(file, services)
    image = await anyio.to_thread.run_sync(
        lambda: store_image(
            services.media_store(),
            data,
            max_bytes=services.settings.media_max_bytes,
            max_pixels=services.settings.media_max_pixels,
        )
    )
    return PartnerImageOut(
        url=image.url, thumbnail_url=image.thumbnail_url, width=image.width, height=image.height
    )


@router.delete("/offers/{external_id}", response_model=OfferOut)
async def withdraw_offer(
    external_id: ExternalIdPath, app: Publisher, services: ServicesDep
) -> OfferOut:
    """Withdraw an offer: its deal ends as if its merchant ended it. Teams already forming
    keep their window and succeed or fail (refunded) as every team does."""
    deal = await services.db.run(service.withdraw_offer, app, external_id, utc_now())
    return OfferOut.of(deal)


@router.get("/offers", response_model=Page[OfferOut])
async def list_offers(
    app: Publisher,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[OfferOut]:
    """The app's offers, newest first (for the shop the token acts for, when it acts for one)."""
    rows = await services.db.read(lambda s: service.list_offers(s, app, cursor=cursor, limit=limit))
    return page_of(rows, limit, OfferOut.of)


@router.get("/deals", response_model=Page[PartnerDealOut])
async def live_deals(
    app: Reader,
    services: ServicesDep,
    vertical: Vertical | None = None,
    country: Annotated[
        str | None,
        Query(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$", description="ISO 3166, e.g. CN"),
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[PartnerDealOut]:
    """Deals shoppers can join now, newest first, each with a deep link credited to the app."""
    now = utc_now()
    rows = await services.db.read(
        lambda s: service.live_deals(
            s,
            now,
            vertical=vertical,
            country=country.upper() if country else None,
            cursor=cursor,
            limit=limit,
        )
    )
    base = services.settings.base_url
    return page_of(
        rows,
        limit,
        lambda row: PartnerDealOut.of(row, deep_links.deal_link(base, app.app_id, row.id)),
    )


@router.get("/deals/{deal_id}/teams", response_model=PartnerTeamsOut)
async def joinable_teams(
    deal_id: Annotated[str, Path(max_length=40)],
    app: Reader,
    services: ServicesDep,
    limit: LimitQuery = DEFAULT_PAGE,
) -> PartnerTeamsOut:
    """A live deal's teams with free places, the nearest to full first, each with its seats
    left and a deep link credited to the app."""
    teams = await services.db.read(service.joinable_teams, deal_id, utc_now(), limit)
    base = services.settings.base_url
    return PartnerTeamsOut(
        data=[PartnerTeamOut.of(t, deep_links.team_link(base, app.app_id, t.id)) for t in teams]
    )


# ---------------------------------------------------------------------------- deep links


async def _open(
    request: Request,
    principal: MaybePrincipal,
    services: Services,
    app_id: str,
    page: str,
    *,
    deal_id: str | None = None,
    team_id: str | None = None,
) -> Response:
    credit, share_id = await services.db.read(
        lambda s: deep_links.credited_share(s, app_id, deal_id=deal_id, team_id=team_id)
    )
    if credit and share_id is None:
        share_id = await services.db.run(
            lambda s: deep_links.make_app_share(
                s, app_id, utc_now(), deal_id=deal_id, team_id=team_id
            )
        )
    response = RedirectResponse(page, status_code=302, headers={"Cache-Control": "no-store"})
    if share_id is not None:
        visitor_id, set_cookie = await log_visit(request, principal, services, share_id, "link")
        if set_cookie:
            set_visitor_cookie(response, visitor_id, services.settings)
    return response


@links_router.get("/a/{app_id}/deals/{deal_id}")
async def open_deal_link(
    app_id: str, deal_id: str, request: Request, principal: MaybePrincipal, services: ServicesDep
) -> Response:
    """An app's deep link to a deal: log the visit for the app, then show the deal."""
    return await _open(
        request, principal, services, app_id[:40], f"/deals/{deal_id}", deal_id=deal_id[:40]
    )


@links_router.get("/a/{app_id}/teams/{team_id}")
async def open_team_link(
    app_id: str, team_id: str, request: Request, principal: MaybePrincipal, services: ServicesDep
) -> Response:
    """An app's deep link to a team: log the visit for the app, then show the team."""
    return await _open(
        request, principal, services, app_id[:40], f"/teams/{team_id}", team_id=team_id[:40]
    )
