"""The shopper's pages: deals by vertical, a deal, a team, sharing, paying.

Every action is a plain form (CSRF token, and a ``form_key`` so that it takes effect once) that
calls the same service functions as the JSON API; JavaScript only adds countdowns and sharing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import Field
from sqlalchemy.orm import Session

from pintuan.bargains import service as bargains
from pintuan.coupons import service as coupons
from pintuan.coupons.models import Coupon
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.deals import DealSort, Vertical
from pintuan.domain.ladder import stored_ladder
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import country_of, token_of
from pintuan.errors import AppError, Conflict, NotFound
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.query import QueryModel, query_of
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.readcache import deal_tag, team_tag
from pintuan.kit.routing import PlainRoute, Router
from pintuan.kit.time import utc_now
from pintuan.payments.api import pay_for_seat as api_pay_for_seat
from pintuan.payments.schemas import PaymentIn, PaymentOut
from pintuan.pickups import service as pickups
from pintuan.services import Services
from pintuan.teams import reads as team_reads
from pintuan.teams import service as teams
from pintuan.web.kit import queries
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import ERROR_MESSAGES, error_message
from pintuan.web.kit.forms import form_fields, run_form_write, run_raw_form_write
from pintuan.web.kit.i18n import N_, gettext, money_text, request_locale
from pintuan.web.kit.pagecache import is_shared_view, shared_page
from pintuan.web.kit.rendering import render
from pintuan.web.kit.resume import resumable
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, LoginRequired, page_principal
from pintuan.web.shopper import deal_list, delivery, home_feed, order_reads, sharing
from pintuan.web.shopper import pickups as pickup_pages
from pintuan.web.shopper.money_words import (
    leader_reward_sentence,
    lottery_outcome_sentence,
    percent_words,
    seat_money,
)

router = Router(include_in_schema=False)
# The home page and the deal and team pages, the links shoppers share and open first: the
# application matches them right after the join's routes instead of behind every API router
# (each router asked costs a pattern test, and these pages are the hottest reads).
read_pages_router = Router(include_in_schema=False, route_class=PlainRoute)

HOME_PAGE_SIZE = 12
JOINABLE_SHOWN = 5
_LIVE_SEATS = ("held", "paid", "confirmed")
# The team page's queries saying what the coupon form just did: lowered the seat's price, or
# was refused (the refusal's code, worded by the page).
COUPON_QUERY = "coupon"
COUPON_ERROR_QUERY = "coupon_error"

VERTICALS: dict[str, str] = {
    Vertical.GOODS.value: N_("Goods"),
    Vertical.FOOD.value: N_("Food"),
    Vertical.MOVIES.value: N_("Movies"),
    Vertical.TRAVEL.value: N_("Travel"),
    Vertical.LOCAL.value: N_("Local services"),
}


def tone(key: str) -> int:
    """One of six placeholder colours, stable for a deal."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:4], 16) % 6


def own_images(deal: Deal) -> list[str]:
    """The deal's pictures this site serves itself; the page policy allows no others."""
    return [url for url in deal.image_urls if url.startswith("/") and not url.startswith("//")]


def _labels() -> dict[str, Any]:
    return {
        "verticals": VERTICALS,
        "tone": tone,
        "own_images": own_images,
    }


# ---------------------------------------------------------------------------- home


class HomeQuery(QueryModel):
    vertical: str | None = None
    cursor: str | None = None
    q: Annotated[str | None, Field(max_length=2000)] = None
    more: Annotated[str | None, Field(max_length=8000)] = None


@read_pages_router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The aggregated feed of deals and almost full teams, one tab per vertical filtering it, in
    the viewer's market (``region``: a country, or ``all``); ``more`` continues it. Asking for a
    ``sort`` (newest, ending_soon, discount, popular) lists the deals in that order with the
    teams forming now instead; ``q`` searches them by text, and a pasted share message or token
    (``¥…¥``) opens its team."""
    # The query read by one model and the viewer by a plain call (``kit.query``): the
    # framework's resolution of both was an eighth of the feed's page.
    query = query_of(HomeQuery, request)
    principal = await page_principal(request)
    vertical, cursor, more = query.vertical, query.cursor, query.more
    text = (query.q or "").strip()
    if not text and cursor is None and not request.query_params.get("sort"):
        chosen = vertical if vertical in VERTICALS else None
        return await home_feed.feed_home(request, principal, chosen, more, _labels())
    if text and token_of(text) is not None:
        try:
            return await sharing.open_pasted_token(request, principal, text)
        except AppError as refused:
            if refused.status >= 500:
                raise
            return await _home_page(
                request,
                principal,
                vertical,
                cursor,
                text,
                search_error=error_message(refused, request_locale(request, principal)),
                closed_deal_id=refused.extra.get("deal_id"),
                status_code=refused.status,
            )
    return await _home_page(request, principal, vertical, cursor, text)


async def _home_page(
    request: Request,
    principal: Principal | None,
    vertical: str | None,
    cursor: str | None,
    text: str,
    *,
    search_error: str | None = None,
    closed_deal_id: str | None = None,
    status_code: int = 200,
) -> Response:
    chosen = Vertical(vertical) if vertical in VERTICALS else None
    if cursor is not None:
        decode_cursor(cursor)  # refuse a made-up cursor before any query
    now = utc_now()
    searching = bool(text) and search_error is None
    sort = deal_list.chosen_sort(request.query_params.get("sort"))
    asked = (request.query_params.get("region") or "").strip().upper()
    guessed = deal_list.guessed_country(request, principal)

    def read(session: Session) -> dict[str, Any]:
        countries = deal_list.live_countries(session)
        if asked == deal_list.ALL_REGIONS.upper():
            region = None
        elif len(asked) == 2 and asked.isalpha():
            region = asked
        else:
            # The guess narrows the list only where there is something to show there.
            region = guessed if guessed in countries else None
        market = (region, deal_list.currency_of_country(region)) if region else None
        rows = deals.list_deals(
            session,
            principal,
            deals.DealFilters(
                vertical=chosen, text=text if searching else None, market=market, sort=sort
            ),
            cursor=cursor,
            limit=HOME_PAGE_SIZE,
        )
        shown = rows[:HOME_PAGE_SIZE]
        ids = [d.id for d in shown]
        return {
            "deals": shown,
            "next_cursor": deals.deal_cursor(sort, shown[-1])
            if len(rows) > HOME_PAGE_SIZE
            else None,
            "forming": queries.joinable_team_counts(session, ids, now),
            "merchants": queries.merchant_names(session, [d.merchant_id for d in shown]),
            "region": region,
            "countries": countries,
            "forming_now": []
            if searching or cursor
            else deal_list.teams_forming_now(session, now, region),
        }

    context = await services_of(request).db.read_stale(read)
    region = context["region"]
    locale = request_locale(request, principal)
    more = {
        "vertical": chosen.value if chosen else None,
        "q": text if searching else None,
        "sort": sort.value if sort != DealSort.NEWEST else None,
        "region": region or (deal_list.ALL_REGIONS if guessed else None),
    }
    region_choices = {
        code: deal_list.country_name(code, locale)
        for code in sorted({*context["countries"], *([region] if region else [])})
    }
    context.update(
        _labels(),
        vertical=more["vertical"],
        search_text=text,
        searching=searching,
        search_error=search_error,
        closed_deal_id=closed_deal_id,
        more_query=urlencode({k: v for k, v in more.items() if v}),
        sort=sort.value,
        sorts=deal_list.SORTS,
        region_choices=region_choices,
        region_name=region_choices.get(region, "") if region else "",
        guessed=guessed,
    )
    return await render(request, "shopper/home.html", context, status_code=status_code)


# ---------------------------------------------------------------------------- a deal


def mechanics_words(deal: Deal, locale: str) -> dict[str, Any]:
    """The deal's options said for its pages (the template adds their links and the lottery's,
    pickup's and tipping point's lines, which need only the deal's row)."""
    ladder = stored_ladder(deal.team_size, deal.group_price_amount, deal.ladder)
    return {
        "ladder_tiers": [
            (tier.size, money_text(tier.price, deal.currency, locale)) for tier in ladder.tiers
        ]
        if ladder
        else [],
        "leader_reward_words": leader_reward_sentence(deal, locale),
        "referral_share": percent_words(deal.referral_commission_bps, locale)
        if deal.referral_commission_bps > 0
        else None,
    }


def seconds_until_opening(deal: Deal, now: datetime) -> int | None:
    """How many seconds a live deal waits yet to open (a flash sale's countdown), rounded up so
    that a page reloading when it reaches zero asks no sooner than the opening; None when the
    deal is not waiting to open. Pages count down from this, not from the browser's clock,
    which may be wrong."""
    if deal.status != "live" or deal.merchant_suspended or now >= deal.starts_at:
        return None
    return math.ceil((deal.starts_at - now).total_seconds())


async def _deal_page(
    request: Request,
    deal_id: str,
    *,
    error: str | None = None,
    share_error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await _deal_context(request, deal_id, error=error, share_error=share_error)
    return await render(request, "shopper/deal.html", context, status_code=status_code)


async def _deal_context(
    request: Request,
    deal_id: str,
    *,
    error: str | None = None,
    share_error: str | None = None,
) -> dict[str, Any]:
    principal = await page_principal(request)
    now = utc_now()
    locale = request_locale(request, principal)
    base = services_of(request).settings.base_url.rstrip("/")

    def read(session: Session) -> dict[str, Any]:
        deal = deals.visible_deal(session, principal, deal_id)
        joinable = team_reads.joinable_teams(session, deal_id, now, JOINABLE_SHOWN)
        mine = (
            queries.teams_with_user(session, principal.user_id, [t.id for t in joinable])
            if principal
            else set()
        )
        return {
            "deal": deal,
            "merchant_name": queries.merchant_names(session, [deal.merchant_id]).get(
                deal.merchant_id, ""
            ),
            "joinable": joinable,
            "my_team_ids": mine,
            "forming": queries.joinable_team_counts(session, [deal_id], now).get(deal_id, 0),
            "bargain_terms": bargains.deal_terms(session, deal.id, deal.currency),
            "tipping_seats": team_reads.tipping_seats(session, deal),
            "shown_share": sharing.shown_share(
                session,
                principal,
                request.query_params.get(sharing.SHARE_QUERY),
                base_url=base,
                locale=locale,
                now=now,
                deal_id=deal_id,
            ),
        }

    context = await services_of(request).db.read(read)
    deal = context["deal"]
    context.update(
        _labels(),
        **sharing.share_box(principal, context.pop("shown_share"), locale, deal_id=deal.id),
        error=error,
        share_error=share_error,
        is_open=deal.status == "live"
        and not deal.merchant_suspended
        and deal.starts_at <= now < deal.ends_at,
        opens_in=seconds_until_opening(deal, now),
        units_left=deal.stock - deal.committed,
        **mechanics_words(deal, locale),
        share_url=f"{base}/deals/{deal.id}",
    )
    return context


@read_pages_router.get("/deals/{deal_id}", response_class=HTMLResponse)
async def deal_page(request: Request, deal_id: str) -> Response:
    """A deal: its prices, the teams forming now, start or join one. A visitor's page is
    shared by every visitor for a second at most (see ``web/kit/pagecache.py``)."""
    if await is_shared_view(request):

        async def build() -> tuple[str, dict[str, Any], list[str]]:
            return "shopper/deal.html", await _deal_context(request, deal_id), [deal_tag(deal_id)]

        return await shared_page(request, "deal", deal_id, build)
    return await _deal_page(request, deal_id)


@router.post("/deals/{deal_id}/teams", dependencies=[CsrfProtected])
@resumable
async def start_team(request: Request, deal_id: str) -> Response:
    """Start a team (holding the leader seat), then go and pay for it."""

    def take(tx: RawTx, user_id: str, hold: timedelta) -> dict[str, Any]:
        start = teams.start_team(tx, user_id, deal_id, utc_now(), hold=hold)
        return {"team_id": start.team_id, "seat_id": start.seat.id, "status": start.seat.status}

    async def again(error: str, status_code: int) -> Response:
        return await _deal_page(request, deal_id, error=error, status_code=status_code)

    return await _take_seat(request, f"/deals/{quote(deal_id)}", take, "deal_not_found", again)


@router.post("/deals/{deal_id}/solo", dependencies=[CsrfProtected])
async def buy_alone(request: Request, deal_id: str) -> Response:
    """Buy alone at the list price (a team of one), then go and pay for it."""

    def take(tx: RawTx, user_id: str, hold: timedelta) -> dict[str, Any]:
        start = teams.buy_alone(tx, user_id, deal_id, utc_now(), hold=hold)
        return {"team_id": start.team_id, "seat_id": start.seat.id, "status": start.seat.status}

    async def again(error: str, status_code: int) -> Response:
        return await _deal_page(request, deal_id, error=error, status_code=status_code)

    return await _take_seat(request, f"/deals/{quote(deal_id)}", take, "deal_not_found", again)


async def _take_seat(
    request: Request,
    page: str,
    take: Callable[[RawTx, str, timedelta], dict[str, Any]],
    missing: str,
    again: Callable[[str, int], Awaitable[Response]],
) -> Response:
    """Take a seat once per form (``take``), then go and pay for it; a refusal shows ``page``
    again with the reason (unless what it names, ``missing``, does not exist)."""
    principal = await page_principal(request)
    if principal is None:
        raise LoginRequired(page)
    services = services_of(request)
    hold = timedelta(minutes=services.settings.seat_hold_minutes)
    try:
        outcome = await run_raw_form_write(
            request, services, principal, lambda tx: take(tx, principal.user_id, hold)
        )
    except AppError as refused:
        if refused.status >= 500 or refused.code == missing:
            raise
        return await again(
            error_message(refused, request_locale(request, principal)), refused.status
        )
    return await _after_taking_seat(request, principal, outcome)


# ---------------------------------------------------------------------------- a team


async def _team_page(
    request: Request,
    team_id: str,
    *,
    error: str | None = None,
    share_error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await _team_context(request, team_id, error=error, share_error=share_error)
    return await render(request, "shopper/team.html", context, status_code=status_code)


async def _team_context(
    request: Request,
    team_id: str,
    *,
    error: str | None = None,
    share_error: str | None = None,
) -> dict[str, Any]:
    principal = await page_principal(request)
    now = utc_now()
    locale = request_locale(request, principal)
    services = services_of(request)
    base = services.settings.base_url.rstrip("/")

    def read(session: Session) -> dict[str, Any]:
        team = team_reads.get_team(session, team_id)
        deal = queries.find_deal(session, team.deal_id)
        if deal is None:
            raise NotFound(f"No team {team_id}.", code="team_not_found")
        my_seats = (
            queries.seats_of_user_in_team(session, principal.user_id, team_id) if principal else []
        )
        my_payments = (
            queries.payments_of_seats(session, [my_seats[0].id])[my_seats[0].id] if my_seats else []
        )
        coupon_id = my_seats[0].coupon_id if my_seats else None
        return {
            "team": team,
            "deal": deal,
            "merchant_name": queries.merchant_names(session, [deal.merchant_id]).get(
                deal.merchant_id, ""
            ),
            "my_seat": my_seats[0] if my_seats else None,
            "my_payments": my_payments,
            # The shopper's coupons they could take off their held seat's price before paying,
            # and the one taken off it already.
            "usable_coupons": coupons.usable_for_seat(
                session, principal.user_id, my_seats[0], deal, now
            )
            if principal and my_seats
            else [],
            "applied_coupon": session.get(Coupon, coupon_id) if coupon_id else None,
            "tipping_seats": team_reads.tipping_seats(session, deal),
            "payers": order_reads.display_names(session, [p.user_id for p in my_payments]),
            "shown_share": sharing.shown_share(
                session,
                principal,
                request.query_params.get(sharing.SHARE_QUERY),
                base_url=base,
                locale=locale,
                now=now,
                team_id=team_id,
            ),
            "delivery": delivery.delivery_of_seat(
                session, principal, my_seats[0] if my_seats else None, deal
            ),
            "pickup": pickup_pages.pickup_of_seat(
                session, principal, my_seats[0] if my_seats else None, deal
            ),
            # A seat that was not drawn: where its refund is (the draw itself is on the seat).
            "lottery_refund": queries.lottery_refund_status(session, my_seats[0].id)
            if my_seats and my_seats[0].lottery_won is False
            else None,
            "member_share": sharing.member_share(
                session, principal, team_id, base_url=base, locale=locale, now=now
            )
            if principal and my_seats and my_seats[0].status in _LIVE_SEATS
            else None,
            "inviter": sharing.inviter_name(
                session, principal, request.query_params.get(sharing.VIA_QUERY), team_id
            ),
        }

    context = await services.db.read(read)
    team, my_seat = context["team"], context["my_seat"]
    context["my_money"] = (
        seat_money(
            my_seat,
            context["my_payments"],
            viewer_id=my_seat.user_id,
            names=context.pop("payers"),
            team_status=team.status,
            now=now,
            locale=locale,
        )
        if my_seat is not None
        else None
    )
    refund_status = context.pop("lottery_refund")
    context["lottery_outcome"] = (
        lottery_outcome_sentence(my_seat.lottery_won, refund_status, locale)
        if my_seat is not None and my_seat.lottery_won is not None
        else None
    )
    live_seat = my_seat is not None and my_seat.status in _LIVE_SEATS
    is_open = team.status == "forming" and team.expires_at > now
    shown, mine = context.pop("shown_share"), context.pop("member_share")
    if principal and live_seat and is_open and not team.solo and shown is None and mine is None:
        # A member's first look at their team: make their link on the default channel now,
        # so that sharing is one tap (the poster's own share is made the same way on demand).
        mine = await services.db.run(
            lambda session: sharing.make_member_share(
                session,
                principal,
                team_id,
                base_url=base,
                country=country_of(request.headers),
                locale=locale,
                now=now,
            )
        )
    refused_code = request.query_params.get(COUPON_ERROR_QUERY, "")
    context.update(
        _labels(),
        **sharing.share_box(principal, shown or mine, locale, team_id=team.id),
        error=error,
        share_error=share_error,
        share_url=f"{base}/teams/{team.id}",
        seats_left=team.seats_left,
        is_open=is_open,
        is_member=live_seat,
        can_pay=my_seat is not None
        and my_seat.status == "held"
        and (my_seat.hold_expires_at is None or my_seat.hold_expires_at > now),
        **delivery.delivery_messages(request, locale),
        **pickup_pages.pickup_messages(request, locale),
        **pickup_pages.pickup_labels(),
        **mechanics_words(context["deal"], locale),
        # Said once, on the way back from the coupon's form: the price lowered (only when the
        # seat has a coupon), or why not (unknown codes say nothing, so that a crafted link
        # cannot put words of its own on the page).
        coupon_just_applied=request.query_params.get(COUPON_QUERY) == "applied"
        and context["applied_coupon"] is not None,
        coupon_error=gettext(locale, ERROR_MESSAGES[refused_code])
        if refused_code in ERROR_MESSAGES
        else None,
    )
    return context


@read_pages_router.get("/teams/{team_id}", response_class=HTMLResponse)
async def team_page(request: Request, team_id: str) -> Response:
    """A team: its members, seats left and time left; join it, pay, share it. A visitor's page
    is shared by every visitor for a second at most (see ``web/kit/pagecache.py``)."""
    if await is_shared_view(request):

        async def build() -> tuple[str, dict[str, Any], list[str]]:
            context = await _team_context(request, team_id)
            tags = [team_tag(team_id), deal_tag(context["deal"].id)]
            return "shopper/team.html", context, tags

        return await shared_page(request, "team", team_id, build)
    return await _team_page(request, team_id)


@router.post("/teams/{team_id}/join", dependencies=[CsrfProtected])
@resumable
async def join_team(request: Request, team_id: str) -> Response:
    """Join a forming team (holding a seat), then go and pay for it."""

    def take(tx: RawTx, user_id: str, hold: timedelta) -> dict[str, Any]:
        seat = teams.join_team(tx, user_id, team_id, utc_now(), hold=hold)
        return {"team_id": team_id, "seat_id": seat.id, "status": seat.status}

    async def again(error: str, status_code: int) -> Response:
        return await _team_page(request, team_id, error=error, status_code=status_code)

    return await _take_seat(request, f"/teams/{quote(team_id)}", take, "team_not_found", again)


# ---------------------------------------------------------------------------- sharing


@router.post("/teams/{team_id}/shares", dependencies=[CsrfProtected])
@resumable
async def share_team(request: Request, team_id: str) -> Response:
    """Make the viewer's share of a forming team for the chosen channel, then show its link,
    its copy-paste message and the poster on the team's page."""
    return await _share(request, f"/teams/{quote(team_id)}", team_id=team_id)


@router.post("/deals/{deal_id}/shares", dependencies=[CsrfProtected])
@resumable
async def share_deal(request: Request, deal_id: str) -> Response:
    """Make the viewer's share of a live deal, then show its link on the deal's page."""
    return await _share(request, f"/deals/{quote(deal_id)}", deal_id=deal_id)


async def _share(
    request: Request, page: str, *, team_id: str | None = None, deal_id: str | None = None
) -> Response:
    principal = await page_principal(request)
    if principal is None:
        raise LoginRequired(page)
    services = services_of(request)
    locale = request_locale(request, principal)
    country = country_of(request.headers)

    def work(session: Session) -> dict[str, Any]:
        code = sharing.make_share(
            session,
            principal,
            channel,
            base_url=services.settings.base_url,
            country=country,
            locale=locale,
            now=utc_now(),
            team_id=team_id,
            deal_id=deal_id,
        )
        return {"code": code}

    try:
        channel = sharing.channel_of((await form_fields(request)).get("channel"))
        outcome = await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code in ("team_not_found", "deal_not_found"):
            raise
        message = error_message(refused, locale)
        if team_id is not None:
            return await _team_page(
                request, team_id, share_error=message, status_code=refused.status
            )
        assert deal_id is not None
        return await _deal_page(request, deal_id, share_error=message, status_code=refused.status)
    code = quote(str(outcome["code"]))
    return RedirectResponse(f"{page}?{sharing.SHARE_QUERY}={code}#share", status_code=303)


async def _after_taking_seat(
    request: Request, principal: Principal, outcome: dict[str, Any]
) -> Response:
    """Straight to the checkout for a held seat; to the team for a free one, and for goods first
    to the team's delivery block, to choose the address before paying."""
    team_url = f"/teams/{quote(str(outcome['team_id']))}"
    if outcome.get("status") != "held":
        return RedirectResponse(team_url, status_code=303)
    seat_id = str(outcome["seat_id"])
    if await services_of(request).db.read(fulfilment.needs_address_first, seat_id):
        return RedirectResponse(f"{team_url}#delivery", status_code=303)
    if await services_of(request).db.run_raw(pickups.needs_pickup_first, seat_id, write=False):
        return RedirectResponse(f"{team_url}#pickup", status_code=303)
    try:
        url = await _open_checkout(request, principal, seat_id)
    except AppError:
        # The seat is held; the team page offers paying again while the hold lasts.
        return RedirectResponse(team_url, status_code=303)
    return RedirectResponse(url or team_url, status_code=303)


# ---------------------------------------------------------------------------- paying


def checkout_provider(services: Services) -> str:
    """The provider whose hosted page pages send shoppers to: the sandbox where it runs."""
    if "sandbox" in services.providers:
        return "sandbox"
    for name, provider in services.providers.items():
        if "hosted_page" in provider.capabilities.checkout_kinds:
            return name
    return "sandbox"  # refused by the API below, which names what is available


async def _open_checkout(request: Request, principal: Principal, seat_id: str) -> str | None:
    """The provider's page to pay for the seat, opened by ``POST /v1/seats/{id}/payments``
    itself, so a page follows every rule the API does (styles, holds, reuse of an open
    payment); returns its ``next_action.url``."""
    answer = await api_pay_for_seat(
        seat_id,
        PaymentIn(provider=checkout_provider(services_of(request))),
        request,
        principal,
        services_of(request),
    )
    paid = PaymentOut.model_validate_json(bytes(answer.body))
    return paid.next_action.url if paid.next_action else None


@router.post("/seats/{seat_id}/pay", dependencies=[CsrfProtected])
@resumable
async def pay_for_seat(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Go to the provider's page to pay for a held seat."""
    services = services_of(request)
    seat = await services.db.read(team_reads.owned_seat, principal.user_id, seat_id)
    try:
        url = await _open_checkout(request, principal, seat_id)
    except AppError as refused:
        if refused.status >= 500:
            raise
        message = error_message(refused, request_locale(request, principal))
        return await _team_page(request, seat.team_id, error=message, status_code=refused.status)
    if url is None:
        raise Conflict("This payment has no page to pay on.", code="unknown_provider")
    return RedirectResponse(url, status_code=303)


@router.post("/seats/{seat_id}/coupon", dependencies=[CsrfProtected])
async def use_coupon(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Take one of the shopper's coupons off their held seat's price, through the same service
    as ``POST /v1/seats/{seat_id}/coupon``, once per form; back to the team's page, at the
    seat, whose pay button then asks the lowered price, or which says why not."""
    services = services_of(request)
    seat = await services.db.read(team_reads.owned_seat, principal.user_id, seat_id)
    coupon_id = (await form_fields(request)).get("coupon_id", "")

    def work(tx: RawTx) -> dict[str, Any]:
        coupons.apply_coupon(tx, principal.user_id, seat_id, coupon_id, utc_now())
        return {"coupon_id": coupon_id}

    try:
        await run_raw_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "seat_not_found":
            raise
        said = {COUPON_ERROR_QUERY: refused.code}
    else:
        said = {COUPON_QUERY: "applied"}
    return RedirectResponse(
        f"/teams/{quote(seat.team_id)}?{urlencode(said)}#you-heading", status_code=303
    )


@router.get("/payments/{payment_id}/return")
async def payment_return(request: Request, payment_id: str, principal: LoggedIn) -> Response:
    """Where the provider's page sends the shopper back: the team the payment was for."""
    team_id = await services_of(request).db.read(
        queries.team_of_payment, principal.user_id, payment_id
    )
    return RedirectResponse(f"/teams/{quote(team_id)}" if team_id else "/orders", status_code=303)


@router.post("/seats/{seat_id}/cancel", dependencies=[CsrfProtected])
async def cancel_seat(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Give up a seat of a forming team: a held seat is released, a paid one refunded."""
    services = services_of(request)

    def work(session: Session) -> dict[str, Any]:
        ended = teams.cancel_seat(raw_tx(session), principal.user_id, seat_id, utc_now())
        return {"team_id": ended.team_id}

    try:
        outcome = await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "seat_not_found":
            raise
        seat = await services.db.read(team_reads.owned_seat, principal.user_id, seat_id)
        message = error_message(refused, request_locale(request, principal))
        return await _team_page(request, seat.team_id, error=message, status_code=refused.status)
    return RedirectResponse(f"/teams/{quote(str(outcome['team_id']))}", status_code=303)
