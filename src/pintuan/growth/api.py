"""HTTP endpoints of growth analytics: funnel, K-factor, channel decay, and CSV export.

Operators read every deal; merchant staff only their own merchants' deals (another merchant's
deal is 404, another merchant is 403); shoppers nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import CHANNEL_LENGTH, Channel, is_channel, parse_week
from pintuan.errors import field_error
from pintuan.growth import service
from pintuan.growth.schemas import (
    ChannelOut,
    ChannelsOut,
    ChannelWeekOut,
    CrossVerticalOut,
    CrossVerticalWeekOut,
    FunnelOut,
    FunnelRowOut,
    KFactorOut,
    KFactorRowOut,
)
from pintuan.kit.routing import Router
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1/growth", tags=["growth"])

Group = Literal["deal", "channel", "country", "week"]
Report = Literal["funnel", "k-factor", "channels"]


def _week(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_week(value)
    except ValueError as exc:
        raise field_error(name, "must be an ISO week such as 2026-W48") from exc


def growth_filters(
    deal_id: Annotated[str | None, Query(max_length=40)] = None,
    merchant_id: Annotated[str | None, Query(max_length=40)] = None,
    channel: Annotated[
        str | None,
        Query(
            max_length=CHANNEL_LENGTH,
            description="A sharing channel (wechat, whatsapp, …) or an app's, app:<app id>",
        ),
    ] = None,
    country: Annotated[
        str | None, Query(min_length=2, max_length=2, description="ISO 3166 code, e.g. CN")
    ] = None,
    from_week: Annotated[
        str | None, Query(alias="from", max_length=10, description="First week, e.g. 2026-W45")
    ] = None,
    to_week: Annotated[
        str | None, Query(alias="to", max_length=10, description="Last week, e.g. 2026-W48")
    ] = None,
) -> service.GrowthFilters:
    if channel is not None and not is_channel(channel):
        raise field_error(
            "channel", f"must be one of {', '.join(c.value for c in Channel)}, or app:<app id>"
        )
    first, last = _week("from", from_week), _week("to", to_week)
    if first is not None and last is not None and first > last:
        raise field_error("to", "must not be before from")
    return service.GrowthFilters(
        deal_id=deal_id,
        merchant_id=merchant_id,
        channel=channel,
        country=country.upper() if country else None,
        from_week=first,
        to_week=last,
    )


Filters = Annotated[service.GrowthFilters, Depends(growth_filters)]
GroupQuery = Annotated[Group | None, Query(description="Split the figures by this")]
FormatQuery = Annotated[Literal["json", "csv"], Query(description="json or csv")]


def _csv(rows: Sequence[dict[str, Any]], name: str) -> Response:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="growth-{name}.csv"'},
    )


async def _funnel_rows(
    services: Services,
    principal: Principal,
    filters: service.GrowthFilters,
    group_by: str | None,
) -> list[service.FunnelRow]:
    def work(session: Session) -> list[service.FunnelRow]:
        return service.funnel(session, service.scoped(session, principal, filters), group_by)

    return await services.db.report_stale(work)


async def _funnel(
    services: Services, principal: Principal, filters: service.GrowthFilters, group: str | None
) -> FunnelOut:
    rows = await _funnel_rows(services, principal, filters, group)
    return FunnelOut(group_by=group, data=[FunnelRowOut.of(r) for r in rows])


async def _k_factor(
    services: Services, principal: Principal, filters: service.GrowthFilters, group: str | None
) -> KFactorOut:
    rows = await _funnel_rows(services, principal, filters, group)
    return KFactorOut(group_by=group, data=[KFactorRowOut.of(r) for r in rows])


async def _channels(
    services: Services, principal: Principal, filters: service.GrowthFilters
) -> ChannelsOut:
    def work(session: Session) -> dict[str, list[service.ChannelWeek]]:
        return service.channel_decay(session, service.scoped(session, principal, filters))

    decay = await services.db.report_stale(work)
    return ChannelsOut(
        data=[
            ChannelOut(channel=channel, weeks=[ChannelWeekOut.of(w) for w in weeks])
            for channel, weeks in decay.items()
        ]
    )


def _answer(model: BaseModel, rows: list[dict[str, Any]], name: str, fmt: str) -> Any:
    return _csv(rows, name) if fmt == "csv" else model


@router.get("/funnel", response_model=FunnelOut)
async def funnel(
    principal: CurrentPrincipal,
    services: ServicesDep,
    filters: Filters,
    group_by: GroupQuery = None,
    format: FormatQuery = "json",
) -> Any:
    """Share → visit → start/join → pay → team success, with team success rate and time to
    fill. Weeks are cohort weeks: when the shares were made."""
    out = await _funnel(services, principal, filters, group_by)
    return _answer(out, [r.csv_row() for r in out.data], "funnel", format)


@router.get("/k-factor", response_model=KFactorOut)
async def k_factor(
    principal: CurrentPrincipal,
    services: ServicesDep,
    filters: Filters,
    group_by: GroupQuery = None,
    format: FormatQuery = "json",
) -> Any:
    """K = shares per buyer * buyers per share (paid orders brought per paid order), and the
    viral cycle time."""
    out = await _k_factor(services, principal, filters, group_by)
    return _answer(out, [r.csv_row() for r in out.data], "k-factor", format)


@router.get("/channels", response_model=ChannelsOut)
async def channels(
    principal: CurrentPrincipal,
    services: ServicesDep,
    filters: Filters,
    format: FormatQuery = "json",
) -> Any:
    """Channel decay: each channel's visits and paid orders per calendar week, as a ratio of
    the week before."""
    out = await _channels(services, principal, filters)
    return _answer(out, out.csv_rows(), "channels", format)


@router.get("/cross-vertical", response_model=CrossVerticalOut)
async def cross_vertical(
    principal: CurrentPrincipal,
    services: ServicesDep,
    filters: Filters,
    format: FormatQuery = "json",
) -> Any:
    """Cross-vertical flow: paid orders per ISO week of payment by the vertical the buyer first
    came for (first share visit or first order) and the vertical bought in."""

    def work(session: Session) -> list[service.CrossVerticalWeek]:
        return service.cross_vertical(session, service.scoped(session, principal, filters))

    out = CrossVerticalOut(
        data=[CrossVerticalWeekOut.of(w) for w in await services.db.report_stale(work, long=True)]
    )
    return _answer(out, out.csv_rows(), "cross-vertical", format)


@router.get("/export.csv", response_class=Response)
async def export_csv(
    principal: CurrentPrincipal,
    services: ServicesDep,
    filters: Filters,
    report: Report = "funnel",
    group_by: GroupQuery = None,
) -> Response:
    """Any of the reports as CSV."""
    if report == "channels":
        return _csv((await _channels(services, principal, filters)).csv_rows(), report)
    if report == "k-factor":
        k = await _k_factor(services, principal, filters, group_by)
        return _csv([r.csv_row() for r in k.data], report)
    f = await _funnel(services, principal, filters, group_by)
    return _csv([r.csv_row() for r in f.data], report)
