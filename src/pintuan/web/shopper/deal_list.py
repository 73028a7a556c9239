"""The home page's list fitted to the viewer: their market first, a sort, and the teams
forming right now.

The viewer's market is guessed, never asked for: a CDN's country header, else the country of
their time zone (their account's, or the browser's), else the region of their language. Deals
of merchants there, or priced in that country's currency, are shown first; the others are one
choice away ("All regions"). Each read here is one query, whatever the number of deals shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from babel import Locale, UnknownLocaleError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from pintuan.deals.models import Deal
from pintuan.domain import markets
from pintuan.domain.deals import DealSort
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.markets import currency_of_country as currency_of_country
from pintuan.domain.roles import Principal
from pintuan.domain.teams import TeamStatus
from pintuan.merchants.models import Merchant
from pintuan.teams.models import Team
from pintuan.web.kit.i18n import N_, viewer_time_zone

ALL_REGIONS = "all"
FORMING_SHOWN = 8

SORTS: dict[str, str] = {
    DealSort.NEWEST.value: N_("Newest"),
    DealSort.ENDING_SOON.value: N_("Ending soon"),
    DealSort.DISCOUNT.value: N_("Biggest discount"),
    DealSort.POPULAR.value: N_("Most popular"),
}


def chosen_sort(value: str | None) -> DealSort:
    """The sort asked for; the default for anything else (a hand-edited address)."""
    return DealSort(value) if value in SORTS else DealSort.NEWEST


def guessed_country(request: Request, principal: Principal | None) -> str | None:
    """Where the viewer probably is, as an ISO 3166 code, or None when nothing says."""
    return markets.guess_country(request.headers, viewer_time_zone(request, principal))


def country_name(country: str, locale: str) -> str:
    """A country's name in the viewer's language (``DE`` → Germany, 德国)."""
    try:
        return str(Locale.parse(locale.replace("-", "_")).territories.get(country, country))
    except (UnknownLocaleError, ValueError):
        return country


def live_countries(session: Session) -> dict[str, int]:
    """The countries whose merchants have public live deals, with how many each."""
    rows = session.execute(
        select(Merchant.country, func.count())
        .join(Deal, Deal.merchant_id == Merchant.id)
        .where(Deal.status == DealStatus.LIVE.value, Deal.merchant_suspended.is_(False))
        .group_by(Merchant.country)
    ).all()
    return {str(country): int(count) for country, count in rows}


@dataclass(frozen=True, slots=True)
class FormingTeam:
    """A team forming now, as the home page's strip shows it."""

    team_id: str
    deal_id: str
    deal_title: str
    image_urls: list[str]
    group_price_amount: int
    currency: str
    team_size: int
    taken: int
    expires_at: datetime

    @property
    def seats_left(self) -> int:
        return self.team_size - self.taken


def teams_forming_now(
    session: Session, now: datetime, country: str | None, limit: int = FORMING_SHOWN
) -> list[FormingTeam]:
    """Teams a shopper can join right now (forming, window open, someone in, a seat free) on
    public live deals, the ones closing soonest first; of merchants in ``country`` if given."""
    query = (
        select(
            Team.id,
            Team.deal_id,
            Deal.title,
            Deal.image_urls,
            Deal.group_price_amount,
            Deal.currency,
            Team.team_size,
            Team.taken,
            Team.expires_at,
        )
        .join(Deal, Deal.id == Team.deal_id)
        .where(
            Team.status == TeamStatus.FORMING.value,
            Team.expires_at > now,
            Team.taken > 0,
            Team.taken < Team.team_size,
            Deal.status == DealStatus.LIVE.value,
            Deal.merchant_suspended.is_(False),
        )
        .order_by(Team.expires_at.asc(), Team.id.asc())
        .limit(limit)
    )
    if country is not None:
        query = query.where(
            Deal.merchant_id.in_(select(Merchant.id).where(Merchant.country == country))
        )
    return [FormingTeam(*row) for row in session.execute(query).all()]
