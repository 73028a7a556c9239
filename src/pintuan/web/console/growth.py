"""The growth pages of both consoles: funnel, K-factor, cycle time and channel decay, drawn
from the daily roll-ups with the consoles' SVG charts.

Merchant staff see their merchant's deals (``/console/merchants/{id}/growth``), operators every
deal (``/console/operator/growth``). The figures and their definitions are those of the growth
API (``pintuan.growth``); the pages link to its CSV export with the same filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.apps.models import App
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import (
    CHANNEL_LENGTH,
    Channel,
    app_channel,
    is_channel,
    week_label,
    week_of,
)
from pintuan.growth import service as growth
from pintuan.kit.pagination import MAX_LIMIT
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.teams import reports
from pintuan.web.console import shared
from pintuan.web.console.charts import Point, bar_chart, line_chart
from pintuan.web.console.shared import NOTHING, clean_text
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator, StaffOfMerchant
from pintuan.web.shopper.sharing import CHANNELS as CHANNEL_NAMES

router = Router(prefix="/console", include_in_schema=False)

PERIODS = ("4", "8", "12", "26")
DEFAULT_WEEKS = 8
CHANNEL_CHARTS = 4  # the busiest channels get a chart; the table lists them all
CHANNELS = {c.value: c.value for c in Channel}


@dataclass(frozen=True, slots=True)
class GrowthPage:
    total: growth.FunnelRow
    weeks: list[growth.FunnelRow]
    decay: dict[str, list[growth.ChannelWeek]]
    charts: dict[str, Markup]
    # (an id for the page, the channel's name, its chart)
    channel_charts: list[tuple[str, str, Markup]]
    # Every channel a filter offers, with its name: the sharing channels, then each app's.
    channels: list[tuple[str, str]]

    def channel_name(self, channel: str) -> str:
        return dict(self.channels).get(channel, channel)


def _channel_names(session: Session, locale: str) -> list[tuple[str, str]]:
    """Sharing channels by their names in ``locale``; apps' channels as "App: <its name>"."""
    apps = session.execute(select(App.id, App.name).order_by(App.name, App.id)).all()
    label = gettext(locale, N_("App: %(name)s"))
    return [(c, channel_name(c, locale)) for c in sorted(CHANNELS)] + [
        (app_channel(app_id), label % {"name": name}) for app_id, name in apps
    ]


def _channel_slug(channel: str) -> str:
    """A channel as it may stand in an element's id (``app:app_01…`` → ``app-app_01…``)."""
    return channel.replace(":", "-")


def _number(value: float | None, locale: str) -> str:
    return NOTHING if value is None else str(format_decimal(round(value, 2), locale=locale))


def _duration(seconds: float | None, locale: str) -> str:
    if seconds is None:
        return NOTHING
    return str(format_timedelta(timedelta(seconds=seconds), threshold=1.1, locale=locale))


def _count(value: float) -> str:
    return str(round(value))


def _charts(
    total: growth.FunnelRow,
    weeks: list[growth.FunnelRow],
    decay: dict[str, list[growth.ChannelWeek]],
    names: dict[str, str],
    locale: str,
) -> tuple[dict[str, Markup], list[tuple[str, str, Markup]]]:
    def t(message: str) -> str:
        return gettext(locale, message)

    steps = [
        (t(N_("Shares")), total.shares),
        (t(N_("Visits")), total.visits),
        (t(N_("Orders")), total.orders),
        (t(N_("Paid")), total.paid),
        (t(N_("Team successes")), total.successes),
    ]
    funnel = bar_chart(
        [Point(label, value, str(value)) for label, value in steps],
        chart_id="funnel-chart",
        title=t(N_("Funnel")),
        description=t(
            N_("Shares, then the visits, orders, payments and team successes they brought")
        )
        + ": "
        + ", ".join(f"{label} {value}" for label, value in steps),
        format_value=_count,
    )
    k_factor = line_chart(
        [
            Point(
                str(row.group),
                row.k_factor.k,
                _number(row.k_factor.k, locale),
            )
            for row in weeks
        ],
        chart_id="k-chart",
        title=t(N_("K-factor per cohort week")),
        description=t(
            N_("Paid orders each paid order brought through sharing, by the week shares were made")
        ),
        format_value=lambda v: _number(v, locale),
    )
    visited = [c for c in decay if any(w.visits for w in decay[c])]
    busiest = sorted(visited, key=lambda c: -sum(w.visits for w in decay[c]))[:CHANNEL_CHARTS]
    channel_charts = [
        (
            _channel_slug(channel),
            names.get(channel, channel),
            line_chart(
                [
                    Point(
                        week_label(w.week),
                        float(w.visits),
                        t(N_("%(visits)d visits, %(ratio)s times the week before"))
                        % {"visits": w.visits, "ratio": _number(w.visits_ratio, locale)},
                    )
                    for w in decay[channel]
                ],
                chart_id=f"channel-{_channel_slug(channel)}-chart",
                title=t(N_("Visits per week: %(channel)s"))
                % {"channel": names.get(channel, channel)},
                description=t(
                    N_("Visits from this channel each week, with the ratio to the week before")
                ),
                format_value=_count,
            ),
        )
        for channel in busiest
    ]
    return {"funnel": funnel, "k_factor": k_factor}, channel_charts


def _from_first_activity(
    decay: dict[str, list[growth.ChannelWeek]],
) -> dict[str, list[growth.ChannelWeek]]:
    """The weeks from the first one with any visit or order, so a long period of silence
    before sharing started does not fill the page."""
    weeks = [w for channel in decay.values() for w in channel if w.visits or w.conversions]
    if not weeks:
        return {}
    first = min(w.week for w in weeks)
    return {channel: [w for w in rows if w.week >= first] for channel, rows in decay.items()}


def _page(
    session: Session, principal: Principal, filters: growth.GrowthFilters, locale: str
) -> GrowthPage:
    scoped = growth.scoped(session, principal, filters)
    (total,) = growth.funnel(session, scoped)
    weeks = growth.funnel(session, scoped, "week")
    decay = _from_first_activity(growth.channel_decay(session, scoped))
    channels = _channel_names(session, locale)
    charts, channel_charts = _charts(total, weeks, decay, dict(channels), locale)
    return GrowthPage(total, weeks, decay, charts, channel_charts, channels)


def _filters(
    merchant_id: str | None,
    period: str | None,
    deal_id: str | None,
    channel: str | None,
    country: str | None,
) -> tuple[growth.GrowthFilters, int]:
    weeks = int(period) if period in PERIODS else DEFAULT_WEEKS
    last = week_of(utc_now().date())
    chosen_country = clean_text(country, 2)
    chosen_channel = clean_text(channel, CHANNEL_LENGTH)
    return (
        growth.GrowthFilters(
            deal_id=clean_text(deal_id, 40),
            merchant_id=merchant_id,
            channel=chosen_channel if chosen_channel and is_channel(chosen_channel) else None,
            country=chosen_country.upper()
            if chosen_country and chosen_country.isalpha() and len(chosen_country) == 2
            else None,
            from_week=last - timedelta(weeks=weeks - 1),
            to_week=last,
        ),
        weeks,
    )


def _export_links(filters: growth.GrowthFilters) -> dict[str, str]:
    params = {
        "deal_id": filters.deal_id,
        "merchant_id": filters.merchant_id,
        "channel": filters.channel,
        "country": filters.country,
        "from": week_label(filters.from_week) if filters.from_week else None,
        "to": week_label(filters.to_week) if filters.to_week else None,
    }
    kept = {k: v for k, v in params.items() if v}
    return {
        report: "/v1/growth/export.csv?" + urlencode({"report": report, **kept})
        for report in ("funnel", "k-factor", "channels")
    }


def channel_name(channel: str, locale: str) -> str:
    """A share channel as the shopper's share box names it (``copy`` → "Copy and paste")."""
    return gettext(locale, CHANNEL_NAMES.get(channel, channel))


def _context(
    request: Request,
    principal: Principal,
    page: GrowthPage,
    filters: growth.GrowthFilters,
    weeks: int,
    action: str,
) -> dict[str, Any]:
    locale = request_locale(request, principal)
    return {
        "growth": page,
        "filters": filters,
        "period": weeks,
        "periods": PERIODS,
        "channels": page.channels,
        "channel_name": page.channel_name,
        "action": action,
        "exports": _export_links(filters),
        "labels": shared,
        "tone": lambda status: shared.STATUS_TONES.get(status, ""),
        "week_label": week_label,
        "number": lambda v: _number(v, locale),
        "duration": lambda s: _duration(s, locale),
        "rate": lambda v: shared.rate_text(v, locale),
    }


@router.get("/merchants/{merchant_id}/growth", response_class=HTMLResponse)
async def merchant_growth(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    weeks: str | None = None,
    deal_id: str | None = None,
    channel: str | None = None,
    country: str | None = None,
) -> Response:
    """One merchant's growth figures, for its staff and for operators."""
    filters, period = _filters(merchant_id, weeks, deal_id, channel, country)
    locale = request_locale(request, principal)

    def work(session: Session) -> tuple[Any, GrowthPage, list[Deal]]:
        merchant = reports.managed_merchant(session, principal, merchant_id)
        recent = deals.list_deals(
            session,
            principal,
            deals.DealFilters(merchant_id=merchant_id),
            cursor=None,
            limit=MAX_LIMIT,
        )[:MAX_LIMIT]
        return merchant, _page(session, principal, filters, locale), recent

    merchant, page, recent = await services_of(request).db.report_stale(work)
    context = _context(
        request, principal, page, filters, period, f"/console/merchants/{merchant_id}/growth"
    )
    context.update(merchant=merchant, tab="growth", deals=recent)
    return await render(request, "merchant/growth.html", context)


@router.get("/operator/growth", response_class=HTMLResponse)
async def operator_growth(
    request: Request,
    principal: Operator,
    weeks: str | None = None,
    deal_id: str | None = None,
    channel: str | None = None,
    country: str | None = None,
) -> Response:
    """Growth figures across every merchant."""
    filters, period = _filters(None, weeks, deal_id, channel, country)
    locale = request_locale(request, principal)
    page, cross = await services_of(request).db.report_stale(
        lambda s: (
            _page(s, principal, filters, locale),
            growth.cross_vertical(s, growth.scoped(s, principal, filters)),
        ),
        long=True,  # the cross-vertical flow passes over the paid seats
    )
    context = _context(request, principal, page, filters, period, "/console/operator/growth")
    context.update(tab="growth", deals=[], cross_vertical=cross)
    return await render(request, "operator/growth.html", context)
