"""Offers in, deals out: where an outside app's offers become deals, and what apps read back.

An app installed on a merchant's shop (scope ``offers:write``) publishes an offer under its own
external id; the offer is a live deal of that merchant, the same row the join takes stock from.
Publishing the same external id again updates that deal, and the same offer twice changes
nothing. Stock moves like the engine's counters, by a conditional write that refuses to go
below what is committed, so a stock update racing joins never strands a seat. Withdrawing ends
the deal as a merchant's staff ending it would: no new teams or joins, and teams already
forming keep their window, then succeed or fail (and are refunded) as every team does.

Apps with ``offers:read`` list the live deals and a deal's joinable teams, each with a deep link
that credits what it brings to the app (see ``partners.deep_links``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pintuan.apps.models import AppInstallation
from pintuan.deals.models import Deal
from pintuan.deals.service import refuse_problems
from pintuan.domain.apps import AppPrincipal
from pintuan.domain.deals import Vertical
from pintuan.domain.lifecycle import DealStatus, MerchantStatus, next_deal_status
from pintuan.domain.offers import OFFER_FIELDS_EDITABLE_WHEN_PUBLISHED, Offer, check_offer
from pintuan.errors import Conflict, Forbidden, NotFound
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import get_merchant
from pintuan.teams import reads
from pintuan.teams.reads import TeamView


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Published:
    deal: Deal
    outcome: Outcome
    changed: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- offers in


def installed_merchant(session: Session, app: AppPrincipal) -> Merchant:
    """The shop an app's token acts for, while the app is installed there."""
    if app.merchant_id is None:
        raise Forbidden(
            "This token acts for no shop: offers are published with a token that a merchant's "
            "staff granted by installing the app (the authorization code flow).",
            code="app_not_installed",
        )
    installed = session.scalar(
        select(AppInstallation.id).where(
            AppInstallation.app_id == app.app_id,
            AppInstallation.merchant_id == app.merchant_id,
            AppInstallation.revoked_at.is_(None),
        )
    )
    if installed is None:
        raise Forbidden(
            f"This app is not installed on merchant {app.merchant_id}.", code="app_not_installed"
        )
    return get_merchant(session, app.merchant_id)


def _columns(offer: Offer, starts_at: datetime) -> dict[str, Any]:
    """The deal's columns as ``offer`` sets them."""
    location = offer.location
    return {
        "title": offer.title,
        "description": offer.description,
        "vertical": offer.vertical.value,
        "category": offer.category,
        "image_urls": list(offer.media_urls),
        "currency": offer.group_price.currency,
        "list_price_amount": offer.list_price.amount,
        "group_price_amount": offer.group_price.amount,
        "team_size": offer.team_size,
        "team_window_minutes": offer.team_window_minutes,
        "stock": offer.stock,
        "per_user_limit": offer.per_user_limit,
        "starts_at": starts_at,
        "ends_at": offer.ends_at,
        "valid_from": offer.valid_from,
        "valid_until": offer.valid_until,
        "location_name": location.name if location else None,
        "location_address": location.address if location else None,
        "location_lat": location.lat if location else None,
        "location_lon": location.lon if location else None,
    }


# The offer's field each column is sent as, to name it in a refusal.
_FIELD_OF = {
    "list_price_amount": "list_price",
    "group_price_amount": "group_price",
    "currency": "group_price",
    "image_urls": "media_urls",
    "location_name": "location",
    "location_address": "location",
    "location_lat": "location",
    "location_lon": "location",
}


def _offer_deal(
    session: Session, app: AppPrincipal, merchant_id: str, external_id: str
) -> Deal | None:
    # FOR UPDATE (PostgreSQL) takes the deal's lock first, as every engine transition does, so
    # the comparison below and the write after it see the same row.
    found: Deal | None = session.scalar(
        select(Deal)
        .where(
            Deal.app_id == app.app_id,
            Deal.merchant_id == merchant_id,
            Deal.external_id == external_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)  # the locked row, not one read before
    )
    return found


def _event(session: Session, type_: str, deal: Deal, **more: Any) -> None:
    record_event(
        raw_tx(session),
        type_,
        deal.id,
        app_id=deal.app_id,
        merchant_id=deal.merchant_id,
        external_id=deal.external_id,
        status=deal.status,
        **more,
    )


def publish_offer(
    session: Session, app: AppPrincipal, external_id: str, offer: Offer, now: datetime
) -> Published:
    """Create or update the deal of an app's offer: idempotent per (app, merchant, external id).

    A new offer is a live deal at once (its merchant must be approved). An existing one changes
    only in what differs; once published, only its copy, stock and end may change. Stock never
    goes below the units already committed.
    """
    merchant = installed_merchant(session, app)
    if merchant.status == MerchantStatus.SUSPENDED:
        raise Forbidden(
            f"Merchant {merchant.id} is suspended: its offers cannot be published or changed.",
            code="merchant_suspended",
        )
    if merchant.status != MerchantStatus.APPROVED:
        raise Conflict(
            "The merchant must be approved by an operator before its offers go live.",
            code="merchant_not_approved",
        )
    deal = _offer_deal(session, app, merchant.id, external_id)
    if deal is None:
        starts_at = offer.starts_at or now
        refuse_problems(check_offer(offer, merchant.currency, starts_at, now))
        created = _insert_offer(session, app, merchant, external_id, offer, starts_at, now)
        if created is not None:
            _event(session, "offer.published", created)
            return Published(created, Outcome.CREATED)
        # Another request created it first; this one is an update of that deal.
        deal = _offer_deal(session, app, merchant.id, external_id)
        assert deal is not None
    return _update_offer(session, deal, merchant, offer, now)


def _insert_offer(
    session: Session,
    app: AppPrincipal,
    merchant: Merchant,
    external_id: str,
    offer: Offer,
    starts_at: datetime,
    now: datetime,
) -> Deal | None:
    """Insert the offer's deal; None when a concurrent request inserted it first."""
    deal = Deal(
        id=new_id("deal"),
        merchant_id=merchant.id,
        app_id=app.app_id,
        external_id=external_id,
        committed=0,
        status=DealStatus.LIVE.value,
        new_shoppers_only=False,
        merchant_suspended=False,
        created_at=now,
        updated_at=now,
        published_at=now,
        **_columns(offer, starts_at),
    )
    try:
        with session.begin_nested():
            session.add(deal)
            session.flush()
    except IntegrityError:
        if deal in session:
            session.expunge(deal)
        return None
    return deal


def _update_offer(
    session: Session, deal: Deal, merchant: Merchant, offer: Offer, now: datetime
) -> Published:
    status = DealStatus(deal.status)
    if status == DealStatus.ENDED:
        raise Conflict(
            "This offer has ended (withdrawn, or past its end); publish it again under a new "
            "external id.",
            code="offer_ended",
        )
    if status == DealStatus.MODERATED:
        raise Forbidden(
            "This offer's deal was stopped by the platform's operators; only they can release it.",
            code="deal_moderated",
        )
    starts_at = offer.starts_at or deal.starts_at
    refuse_problems(check_offer(offer, merchant.currency, starts_at, now))
    wanted = _columns(offer, starts_at)
    changes = {name: value for name, value in wanted.items() if getattr(deal, name) != value}
    if not changes:
        return Published(deal, Outcome.UNCHANGED)
    frozen = sorted(
        {_FIELD_OF.get(name, name) for name in changes} - OFFER_FIELDS_EDITABLE_WHEN_PUBLISHED
    )
    if frozen:
        raise Conflict(
            f"A published offer's {', '.join(frozen)} cannot change: teams may already be "
            "forming on those terms. Withdraw it and publish a new one instead.",
            code="deal_not_editable",
            extra={"fields": frozen},
        )
    # One conditional write, as the engine moves its counters: a stock below the units held,
    # paid or confirmed changes no row, whatever joins commit meanwhile.
    written = session.execute(
        update(Deal)
        .where(Deal.id == deal.id, Deal.committed <= offer.stock)
        .values(**changes, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(deal)
    if not written:
        raise Conflict(
            f"Stock cannot go below the {deal.committed} units shoppers already hold or bought.",
            code="stock_below_committed",
            extra={"committed": deal.committed},
        )
    changed = tuple(sorted({_FIELD_OF.get(name, name) for name in changes}))
    _event(session, "offer.updated", deal, changed=list(changed))
    return Published(deal, Outcome.UPDATED, changed)


def withdraw_offer(session: Session, app: AppPrincipal, external_id: str, now: datetime) -> Deal:
    """End an offer's deal, as its merchant's staff ending it would; withdrawing an offer that
    has already ended changes nothing."""
    merchant = installed_merchant(session, app)
    deal = _offer_deal(session, app, merchant.id, external_id)
    if deal is None:
        raise NotFound(f"This app has no offer {external_id} here.", code="offer_not_found")
    if deal.status == DealStatus.ENDED:
        return deal
    if deal.status == DealStatus.MODERATED:
        raise Forbidden(
            "This offer's deal was stopped by the platform's operators; only they can end it.",
            code="deal_moderated",
        )
    deal.status = next_deal_status(DealStatus(deal.status), "end").value
    deal.updated_at = now
    session.flush()
    _event(session, "offer.withdrawn", deal)
    return deal


def list_offers(
    session: Session, app: AppPrincipal, *, cursor: str | None, limit: int
) -> list[Deal]:
    """The app's offers newest first (those of the shop its token acts for, when it acts for
    one), ``limit + 1`` rows so the caller knows whether more follow."""
    query = select(Deal).where(Deal.app_id == app.app_id).order_by(Deal.id.desc()).limit(limit + 1)
    if app.merchant_id is not None:
        query = query.where(Deal.merchant_id == app.merchant_id)
    if cursor is not None:
        query = query.where(Deal.id < decode_cursor(cursor))
    return list(session.scalars(query))


# ---------------------------------------------------------------------------- deals out


@dataclass(frozen=True, slots=True)
class LiveDeal:
    deal: Deal
    country: str

    @property
    def id(self) -> str:
        return self.deal.id


def live_deals(
    session: Session,
    now: datetime,
    *,
    vertical: Vertical | None,
    country: str | None,
    cursor: str | None,
    limit: int,
) -> list[LiveDeal]:
    """Deals shoppers can join now, newest first, with their merchant's country."""
    query = (
        select(Deal, Merchant.country)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(
            Deal.status == DealStatus.LIVE.value,
            Deal.merchant_suspended.is_(False),
            Deal.starts_at <= now,
            Deal.ends_at > now,
        )
        .order_by(Deal.id.desc())
        .limit(limit + 1)
    )
    if vertical is not None:
        query = query.where(Deal.vertical == vertical.value)
    if country is not None:
        query = query.where(Merchant.country == country)
    if cursor is not None:
        query = query.where(Deal.id < decode_cursor(cursor))
    return [LiveDeal(deal, country_) for deal, country_ in session.execute(query)]


def joinable_teams(session: Session, deal_id: str, now: datetime, limit: int) -> list[TeamView]:
    """A live deal's forming teams with a free place, the nearest to full first."""
    deal = session.get(Deal, deal_id)
    if deal is None or deal.status != DealStatus.LIVE.value or deal.merchant_suspended:
        raise NotFound(f"No live deal {deal_id}.", code="deal_not_found")
    return reads.joinable_teams(session, deal_id, now, limit)
