"""HTTP endpoints of shares: make and list shares, open a share link, resolve a copy-paste
token, draw a QR poster, and the invite tree."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import country_of, is_bot, is_share_code
from pintuan.errors import NotFound, RateLimited
from pintuan.idempotency.http import run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery, client_address
from pintuan.kit.limits import ClientBuckets
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import require_operator
from pintuan.services import Services, ServicesDep
from pintuan.shares import attribution, service, wording
from pintuan.shares.models import Share
from pintuan.shares.posters import (
    PosterContent,
    poster_font,
    poster_key,
    posters,
    render_poster,
)
from pintuan.shares.schemas import (
    DepthCount,
    InviteeOut,
    InviteNodeOut,
    InviteTreeOut,
    MyInvitesOut,
    ResolvedTokenOut,
    ShareIn,
    ShareOut,
)
from pintuan.shares.service import PosterSubject
from pintuan.shares.visitors import set_visitor_cookie, visitor_id_of

router = Router(tags=["shares"])

VISIT_WINDOW_SECONDS = 60

DepthQuery = Annotated[int, Query(ge=1, le=attribution.MAX_INVITE_DEPTH, description="Levels down")]
LangQuery = Annotated[
    str | None, Query(max_length=20, description="en or zh-Hans; else Accept-Language")
]


def _viewer_locale(request: Request, principal: Principal | None, lang: str | None) -> str:
    return (
        wording.supported_locale(lang)
        or (wording.supported_locale(principal.locale) if principal else None)
        or wording.locale_from_accept_language(request.headers.get("accept-language"))
        or wording.DEFAULT_LOCALE
    )


# ---------------------------------------------------------------------------- making shares


async def _create(
    request: Request,
    principal: Principal,
    services: Services,
    body: ShareIn,
    *,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> Response:
    country = country_of(request.headers)
    locale = _viewer_locale(request, principal, None)

    def work(session: Session) -> ShareOut:
        view = service.create_share(
            session,
            principal,
            channel=body.channel,
            base_url=services.settings.base_url,
            country=country,
            locale=locale,
            now=utc_now(),
            team_id=team_id,
            deal_id=deal_id,
            from_code=body.from_code,
        )
        return ShareOut.of(view)

    return await run_write(request, services, principal, work, status_code=201)


@router.post("/v1/teams/{team_id}/shares", status_code=201, response_model=ShareOut)
async def share_team(
    team_id: str,
    body: ShareIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Share a forming team: a link, a copy-paste token (valid while the team's window is
    open) and a ready-made message."""
    return await _create(request, principal, services, body, team_id=team_id)


@router.post("/v1/deals/{deal_id}/shares", status_code=201, response_model=ShareOut)
async def share_deal(
    deal_id: str,
    body: ShareIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Share a live deal: a link to its page."""
    return await _create(request, principal, services, body, deal_id=deal_id)


@router.get("/v1/me/shares", response_model=Page[ShareOut])
async def my_shares(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[ShareOut]:
    """Your shares, newest first, with the visits, orders, payments and successful teams each
    one brought."""
    cursor_id = decode_cursor(cursor) if cursor else None
    base_url = services.settings.base_url
    rows = await services.db.read(
        lambda s: service.my_shares(s, principal.user_id, base_url, cursor_id, limit)
    )
    return page_of(rows, limit, ShareOut.of)


@router.delete("/v1/me/shares/{share_id}", status_code=204)
async def delete_share(
    share_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Remove a share from your history. Its link keeps working for whoever has it, but it no
    longer says it was yours; what it brought stays in anonymous totals."""
    await services.db.run(service.delete_share, principal.user_id, share_id, utc_now())
    return Response(status_code=204)


# ---------------------------------------------------------------------------- opening shares


async def log_visit(
    request: Request,
    principal: Principal | None,
    services: Services,
    share_id: str,
    via: str,
) -> tuple[str, bool]:
    """Log one opening of a share (within the per-address limit); returns the visitor id and
    whether it must be set as a cookie. Share links, tokens and apps' deep links all come here."""
    visitor_id, new = visitor_id_of(request)
    facts = service.VisitFacts(
        visitor_id=visitor_id,
        user_id=principal.user_id if principal else None,
        user_agent=request.headers.get("user-agent"),
        country=country_of(request.headers),
        via=via,
    )

    bucket = f"visits:address:{client_address(request)}"
    limit = services.settings.share_visits_per_minute

    def work(session: Session) -> None:
        # Past the limit the visitor is still sent on, but the visit is not recorded: one
        # client cannot grow the visit log (or the funnels read from it) by reloading.
        count, _ = accounts.count_in_window(session, bucket, window_seconds=VISIT_WINDOW_SECONDS)
        if count > limit:
            return
        share = session.get(Share, share_id)
        assert share is not None
        service.record_visit(session, share, facts, utc_now())

    await services.db.run(work)
    return visitor_id, new and not is_bot(facts.user_agent)


@router.get("/s/{code}", include_in_schema=False)
async def open_share(
    code: str, request: Request, principal: MaybePrincipal, services: ServicesDep
) -> Response:
    """Log the visit and send the visitor on to the team's or deal's page."""
    if not is_share_code(code):
        raise NotFound(
            "This share link is unknown; check that it was copied whole.", code="share_not_found"
        )
    share = await services.db.read(service.find_share, code)
    visitor_id, set_cookie = await log_visit(request, principal, services, share.id, "link")
    # A team's page greets the friend with who invited them: it is told which share they came by.
    page = (
        f"/teams/{share.team_id}?via={share.code}" if share.team_id else f"/deals/{share.deal_id}"
    )
    response = RedirectResponse(page, status_code=302, headers={"Cache-Control": "no-store"})
    if set_cookie:
        set_visitor_cookie(response, visitor_id, services.settings)
    return response


async def _resolve(
    text: str, request: Request, principal: Principal | None, services: Services
) -> Response:
    resolved = await services.db.read(service.resolve_token, text, utc_now())
    visitor_id, set_cookie = await log_visit(
        request, principal, services, resolved.share.id, "token"
    )
    response = Response(
        ResolvedTokenOut.of(resolved).model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
    if set_cookie:
        set_visitor_cookie(response, visitor_id, services.settings)
    return response


@router.get("/v1/share-tokens", response_model=ResolvedTokenOut)
async def resolve_pasted_text(
    text: Annotated[
        str, Query(min_length=1, max_length=2000, description="A pasted message with a token")
    ],
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
) -> Response:
    """Find the copy-paste token in a pasted message and resolve it to its team
    (404 ``share_token_not_found``, 410 ``share_token_expired``)."""
    return await _resolve(text, request, principal, services)


@router.get("/v1/share-tokens/{token}", response_model=ResolvedTokenOut)
async def resolve_token(
    token: str, request: Request, principal: MaybePrincipal, services: ServicesDep
) -> Response:
    """Resolve a copy-paste token (with or without its ¥ marks) to its team
    (404 ``share_token_not_found``, 410 ``share_token_expired``)."""
    return await _resolve(token[:200], request, principal, services)


# ---------------------------------------------------------------------------- posters


def _poster_buckets(request: Request, services: Services) -> ClientBuckets:
    """This app's per-client budget of poster renders. In-process on purpose: what it guards
    is this process's CPU (a render takes about 0.1 s), so each process keeps its own."""
    state = request.app.state
    buckets: ClientBuckets | None = getattr(state, "poster_buckets", None)
    if buckets is None:
        buckets = state.poster_buckets = ClientBuckets(services.settings.poster_renders_per_minute)
    return buckets


async def _poster(
    request: Request,
    principal: Principal | None,
    services: Services,
    lang: str | None,
    *,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> Response:
    locale = _viewer_locale(request, principal, lang)
    country = country_of(request.headers)
    now = utc_now()

    def load(session: Session) -> tuple[PosterSubject, str]:
        subject = service.poster_subject(
            session,
            principal,
            base_url=services.settings.base_url,
            country=country,
            now=now,
            team_id=team_id,
            deal_id=deal_id,
        )
        # Signed in: the viewer's own zone. Anonymous: the shop's, never a cookie's, so that
        # one poster is drawn once for everybody rather than once per cookie value.
        merchant = session.get(Merchant, subject.deal.merchant_id)
        shop_zone = merchant.time_zone if merchant is not None else "UTC"
        return subject, principal.time_zone if principal else shop_zone

    subject, time_zone = await services.db.run(load, write=principal is not None)
    deal, team = subject.deal, subject.team
    font = poster_font()
    words = wording.words(locale)
    if team is not None:
        left = wording.seats_left_text(team.team_size - team.taken, locale)
        detail = words["poster_seats_left"].format(seats=left)
        ends_at = team.expires_at
    else:
        detail = words["poster_team_of"].format(n=deal.team_size)
        ends_at = deal.ends_at
    content = PosterContent(
        title=deal.title,
        group_price=wording.money_text(deal.group_price_amount, deal.currency, locale),
        group_price_label=words["poster_group_price"],
        list_price=wording.money_text(deal.list_price_amount, deal.currency, locale),
        detail=detail,
        ends=words["poster_ends"].format(ends=wording.instant_text(ends_at, time_zone, locale)),
        scan=words["poster_scan"],
        url=subject.url,
        seed=deal.id,
    )
    etag = '"' + poster_key(content, font) + '"'
    headers = {
        "ETag": etag,
        # The poster follows the team's fill; let clients keep it and ask again cheaply.
        "Cache-Control": "private, no-cache" if principal else "public, no-cache",
        "Vary": "Accept-Language, Authorization, Cookie",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    png = posters.get(etag)
    if png is None:
        wait = _poster_buckets(request, services).take(client_address(request))
        if wait:
            raise RateLimited(
                "Too many posters drawn for you in a minute; try again shortly.",
                retry_after_seconds=wait,
            )
        png = await anyio.to_thread.run_sync(render_poster, content, font)
        posters.put(etag, png)
    return Response(png, media_type="image/png", headers=headers)


@router.get("/v1/teams/{team_id}/poster.png", response_class=Response)
async def team_poster(
    team_id: str,
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
    lang: LangQuery = None,
) -> Response:
    """A phone-sized PNG poster of a forming team with a QR code of your share link (or of the
    team's page when you are not signed in)."""
    return await _poster(request, principal, services, lang, team_id=team_id)


@router.get("/v1/deals/{deal_id}/poster.png", response_class=Response)
async def deal_poster(
    deal_id: str,
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
    lang: LangQuery = None,
) -> Response:
    """A phone-sized PNG poster of a live deal with a QR code of your share link."""
    return await _poster(request, principal, services, lang, deal_id=deal_id)


# ---------------------------------------------------------------------------- invite tree


@router.get("/v1/me/invites", response_model=MyInvitesOut)
async def my_invites(
    principal: CurrentPrincipal, services: ServicesDep, depth: DepthQuery = 3
) -> MyInvitesOut:
    """Who you brought: by name those whose first order came through your shares, and how
    many people they brought in turn, level by level."""
    nodes, truncated = await services.db.read(
        lambda s: attribution.invite_tree(s, principal.user_id, depth)
    )
    levels: dict[int, int] = {}
    for node in nodes:
        levels[node.depth] = levels.get(node.depth, 0) + 1
    return MyInvitesOut(
        direct=[
            InviteeOut(display_name=n.display_name, channel=n.channel, invited_at=n.invited_at)
            for n in nodes
            if n.depth == 1
        ],
        by_depth=[DepthCount(depth=d, people=c) for d, c in sorted(levels.items())],
        total=len(nodes),
        truncated=truncated,
    )


@router.get("/v1/ops/invite-tree", response_model=InviteTreeOut)
async def invite_tree(
    principal: CurrentPrincipal,
    services: ServicesDep,
    root: Annotated[str, Query(min_length=1, max_length=40, description="A user id")],
    depth: DepthQuery = 3,
) -> InviteTreeOut:
    """Operators: everyone a user brought, level by level, with who brought each of them."""
    require_operator(principal)
    nodes, truncated = await services.db.read(lambda s: attribution.invite_tree(s, root, depth))
    return InviteTreeOut(
        root=root,
        depth=depth,
        data=[InviteNodeOut.of(n) for n in nodes],
        truncated=truncated,
    )
