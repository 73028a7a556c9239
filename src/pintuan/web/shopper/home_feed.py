"""The home page as the aggregated feed: one slate of deals and almost full teams across every
vertical, ranked for the viewer (``feed``), the vertical tabs filtering it, the viewer's market
narrowing it as the list did. Each card's link logs its click against the slate and slot.

A shopper without an account gets the first-party visitor id here, so that what they do after
signing in is credited to the slates they saw before it (``shares.visitors`` links the two).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from fastapi import Request, Response
from markupsafe import Markup

from pintuan.domain.roles import Principal
from pintuan.feed import service as feed
from pintuan.feed.serving import feed_runtime, pseudonym
from pintuan.feed.snapshot import DealEntry
from pintuan.kit.time import utc_now
from pintuan.shares.visitors import set_visitor_cookie, visitor_id_of
from pintuan.web.kit.frames import PageFrames
from pintuan.web.kit.i18n import money_text, request_locale, viewer_time_zone
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.shopper import deal_list
from pintuan.web.shopper.feed_cards import CardRenderer, FeedCards

HOME_SLOTS = 20


# Every card this process has rendered, by item, locale and countdown (see ``feed_cards``).
CARDS = FeedCards()
# The home page's frames for visitors who are not signed in (see ``web.kit.frames``).
FRAMES = PageFrames()


@lru_cache(maxsize=50_000)
def _money(amount: int, currency: str, locale: str) -> str:
    # CLDR's formatting costs a few milliseconds a price and the feed shows forty a page;
    # the catalogue's prices are few enough to keep each once.
    return money_text(amount, currency, locale)


@lru_cache(maxsize=2_000)
def _country_name(code: str, locale: str) -> str:
    # Babel parses the locale anew on every call (a scan of every locale it knows).
    return deal_list.country_name(code, locale)


def own_images(deal: DealEntry) -> list[str]:
    """The deal's pictures this site serves itself; the page policy allows no others."""
    return [url for url in deal.image_urls if url.startswith("/") and not url.startswith("//")]


async def feed_home(
    request: Request,
    principal: Principal | None,
    vertical: str | None,
    more: str | None,
    labels: dict[str, object],
) -> Response:
    """The home page's feed (see the module's docstring)."""
    services = services_of(request)
    runtime = feed_runtime(request)
    await runtime.ensure_ready()
    countries = runtime.snapshot.countries
    asked = (request.query_params.get("region") or "").strip().upper()
    guessed = deal_list.guessed_country(request, principal)
    if asked == deal_list.ALL_REGIONS.upper():
        region = None
    elif len(asked) == 2 and asked.isalpha():
        region = asked
    else:
        region = guessed if guessed in countries else None
    visitor, new_visitor = visitor_id_of(request)
    page = await feed.feed_page(
        runtime,
        viewer=pseudonym(
            services.settings,
            user_id=principal.user_id if principal else None,
            visitor=visitor,
        ),
        country=region,
        vertical=vertical,
        place=None,
        slots=HOME_SLOTS,
        cursor=more,
        now=utc_now(),
        first_visit=new_visitor and principal is None,
    )
    slate = page.slate
    locale = request_locale(request, principal)
    now = utc_now()

    def card_context() -> dict[str, object]:
        return {
            **labels,
            "locale": locale,
            "now": now,
            "time_zone": viewer_time_zone(request, principal),
            "feed_images": own_images,
            "feed_money": lambda amount, currency: _money(amount, currency, locale),
        }

    render_miss = CardRenderer(card_context)
    feed_items = CARDS.list_items(
        (s.item for s in slate.shown), slate.impression_id, locale, now, render_miss
    )
    kept = {"vertical": vertical, "region": region or (deal_list.ALL_REGIONS if guessed else None)}
    region_choices = {
        code: _country_name(code, locale)
        for code in sorted({*countries, *([region] if region else [])})
    }
    # The cursor is URL-safe base64, which a query takes as it is: quoting its thousand
    # characters one by one cost more than the rest of the link.
    filters = urlencode({k: v for k, v in kept.items() if v})
    more_url = (
        f"/?{filters}{'&' if filters else ''}more={page.next_cursor}" if page.next_cursor else None
    )
    context = {
        **labels,
        "vertical": vertical,
        "search_text": "",
        "searching": False,
        "search_error": None,
        "closed_deal_id": None,
        "forming_now": [],
        "deals": [],
        "region": region,
        "region_choices": region_choices,
        "region_name": region_choices.get(region, "") if region else "",
        "guessed": guessed,
        "sort": "",
        "sorts": deal_list.SORTS,
    }
    # What differs between two visitors' pages besides the frame's own key (see web.kit.frames).
    holes: dict[str, str | Markup | bytes] = {}
    if slate.shown:
        holes.update(feed_items=feed_items, impression_id=slate.impression_id)
    if more_url:
        holes["more_url"] = more_url
    if principal is None and more is None:
        key = (vertical, region, guessed, tuple(region_choices.items()))
        response = await FRAMES.render(request, "shopper/home.html", context, key=key, holes=holes)
    else:
        if slate.shown:  # the cards as the template takes them
            holes["feed_items"] = Markup(feed_items.decode())  # noqa: S704 - escaped cards
        response = await render(request, "shopper/home.html", {**context, **holes})
    if new_visitor:
        set_visitor_cookie(response, visitor, services.settings)
    return response
