"""Rules of the offers outside apps publish: one schema for every vertical, what makes an offer
valid, and which of its fields may still change once shoppers can buy it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pintuan.domain.deals import DealTerms, FieldProblem, Vertical, check_deal_terms
from pintuan.kit.money import Money


@dataclass(frozen=True, slots=True)
class Location:
    """Where what is bought is used: a cinema, a restaurant, a pick-up point."""

    name: str
    address: str = ""
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer as an app sends it; it becomes a deal of the merchant the app is installed on.

    ``starts_at`` and ``ends_at`` are when teams may form; ``valid_from`` and ``valid_until``
    when what is bought may be used (a screening's time, a voucher's dates).
    """

    title: str
    description: str
    vertical: Vertical
    list_price: Money
    group_price: Money
    team_size: int
    team_window_minutes: int
    stock: int
    per_user_limit: int
    ends_at: datetime
    starts_at: datetime | None = None
    category: str | None = None
    media_urls: list[str] = field(default_factory=list)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    location: Location | None = None


# Once teams can form, only the offer's copy, its stock and its end may change: the price, the
# team terms, and where and when it is used are what shoppers were promised when they joined.
OFFER_FIELDS_EDITABLE_WHEN_PUBLISHED = frozenset(
    {"title", "description", "image_urls", "category", "stock", "ends_at"}
)


def check_offer(
    offer: Offer, merchant_currency: str, starts_at: datetime, now: datetime
) -> list[FieldProblem]:
    """Every way ``offer`` breaks the rules, each naming its field; empty when it is valid.

    ``starts_at`` is when the offer's teams may start forming (the offer's own, or the one
    already stored for it, or now).
    """
    problems = check_deal_terms(
        DealTerms(
            list_price=offer.list_price,
            group_price=offer.group_price,
            starts_at=starts_at,
            ends_at=offer.ends_at,
            stock=offer.stock,
        ),
        merchant_currency,
    )
    if offer.ends_at <= now:
        problems.append(FieldProblem("ends_at", "must be in the future"))
    if offer.valid_from is not None and offer.valid_until is None:
        problems.append(FieldProblem("valid_until", "is needed when valid_from is given"))
    if offer.valid_until is not None:
        if offer.valid_from is not None and offer.valid_until <= offer.valid_from:
            problems.append(FieldProblem("valid_until", "must be after valid_from"))
        if offer.ends_at > offer.valid_until:
            problems.append(
                FieldProblem(
                    "ends_at",
                    "must not be after valid_until: nothing may be sold "
                    "once it can no longer be used",
                )
            )
    location = offer.location
    if location is not None and (location.lat is None) != (location.lon is None):
        problems.append(FieldProblem("location", "lat and lon go together: give both or neither"))
    return problems
