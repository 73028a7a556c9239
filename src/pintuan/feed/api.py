"""HTTP endpoints of the feed: a slate for the caller, the click link every served card carries,
and the operators' rules and policies."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import (
    SESSION_COOKIE,
    CurrentPrincipal,
    optional_principal,
    principal_of_session_cookie,
)
from pintuan.domain.deals import Vertical
from pintuan.domain.markets import guess_country
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import is_visitor_id
from pintuan.feed import service
from pintuan.feed.encoding import FeedJson
from pintuan.feed.rules import LiveConfig
from pintuan.feed.schemas import FeedConfigIn, FeedConfigOut, FeedOut
from pintuan.feed.serving import FeedRuntime, feed_runtime, pseudonym, runtime_of
from pintuan.kit.query import QueryModel, documented, query_of
from pintuan.kit.routing import PlainRoute, Router
from pintuan.kit.time import utc_now
from pintuan.services import Services, ServicesDep, services_of
from pintuan.shares.visitors import VISITOR_COOKIE

router = Router(tags=["feed"], route_class=PlainRoute)
clicks_router = Router(include_in_schema=False)

Runtime = Annotated[FeedRuntime, Depends(runtime_of)]
MAX_SLOTS = 50
_IMPRESSION = re.compile(r"^imp_[0-9A-Z]{26}$")
_ITEM = re.compile(r"^(deal|team)_[0-9A-Z]{26}$")
ANSWERS = FeedJson()  # every answer's parts kept per item, in this process


def viewer_pseudonym(services: Services, request: Request, principal: Principal | None) -> str:
    """The caller as the feed logs them: a keyed hash of their account or visitor cookie."""
    visitor = request.cookies.get(VISITOR_COOKIE)
    return pseudonym(
        services.settings,
        user_id=principal.user_id if principal else None,
        visitor=visitor if is_visitor_id(visitor) else None,
    )


class FeedQuery(QueryModel):
    slots: Annotated[int, Field(ge=1, le=MAX_SLOTS, description="Items in the slate")] = 20
    vertical: Vertical | None = None
    country: Annotated[
        str | None,
        Field(pattern="^[A-Z]{2}$", description="The viewer's market; guessed when absent"),
    ] = None
    lat: Annotated[float | None, Field(ge=-90, le=90)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180)] = None
    cursor: Annotated[str | None, Field(max_length=8000)] = None


@router.get("/v1/feed", response_model=FeedOut, openapi_extra=documented(FeedQuery))
async def read_feed(request: Request) -> Response:
    """A slate of deals and almost full teams across every vertical, ranked for the caller, each
    item with the probability the policy had of showing it in its slot. ``next_cursor``
    continues the feed as a new slate (a continuation impression) without what was shown."""
    # The services, the caller and the feed found by plain calls, as the join finds its own
    # (``teams/api.py``): the framework's resolution of three dependencies that need nothing
    # from it was about a tenth of a slate's CPU; the query read by one model (``kit.query``).
    query = query_of(FeedQuery, request)
    services = services_of(request)
    principal = await optional_principal(request, services)
    runtime = feed_runtime(request)
    place = service.place_of(query.lat, query.lon)
    zone = principal.time_zone if principal else None
    page = await service.feed_page(
        runtime,
        viewer=viewer_pseudonym(services, request, principal),
        country=query.country or guess_country(request.headers, zone),
        vertical=query.vertical.value if query.vertical else None,
        place=place,
        slots=query.slots,
        cursor=query.cursor,
        now=utc_now(),
    )
    # ``feed_out(page.slate, page.next_cursor)``, written from parts kept per item.
    return Response(ANSWERS.encode(page.slate, page.next_cursor), media_type="application/json")


@clicks_router.get("/feed/go/{impression_id}/{position}/{item_id}")
async def follow_feed_card(
    request: Request,
    services: ServicesDep,
    runtime: Runtime,
    impression_id: Annotated[str, Path(max_length=40)],
    position: Annotated[int, Path(ge=0, le=MAX_SLOTS * 10)],
    item_id: Annotated[str, Path(max_length=40)],
) -> RedirectResponse:
    """Log a click on a served card, then open its deal or team. The click counts once per
    slot, and only if that slot showed that item."""
    if not _ITEM.match(item_id):
        return RedirectResponse("/", status_code=303)
    kind = item_id.split("_", 1)[0]
    if _IMPRESSION.match(impression_id):
        runtime.record_click(impression_id, position, kind, item_id, utc_now())
        principal = await _page_or_api_principal(request, services)
        runtime.forget_viewer(viewer_pseudonym(services, request, principal))
    return RedirectResponse(f"/{kind}s/{item_id}", status_code=303)


async def _page_or_api_principal(request: Request, services: Services) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return await principal_of_session_cookie(services, cookie) if cookie else None


@router.get("/v1/operator/feed", response_model=FeedConfigOut)
async def read_feed_rules(principal: CurrentPrincipal, services: ServicesDep) -> FeedConfigOut:
    """The feed's rules and the policies serving, with their traffic shares (operators)."""
    config = await services.db.read(service.read_feed_config, principal, services.settings)
    return FeedConfigOut.model_validate(service.config_json(config))


@router.put("/v1/operator/feed", response_model=FeedConfigOut)
async def change_feed_rules(
    body: FeedConfigIn, principal: CurrentPrincipal, services: ServicesDep, runtime: Runtime
) -> FeedConfigOut:
    """Set the feed's rules (exploration, least share per vertical, pins, boosts, merchant cap,
    reward weights) and the live policy or an A/B split of several (operators). Every serving
    process picks them up within ``PINTUAN_FEED_RELOAD_SECONDS``."""

    def work(session: Session) -> LiveConfig:
        return service.change_feed_config(
            session,
            principal,
            services.settings,
            body.rules.model_dump(),
            [arm.model_dump() for arm in body.arms],
            body.version,
        )

    config = await services.db.run(work)
    runtime.use_config(config)
    return FeedConfigOut.model_validate(service.config_json(config))
