"""Steps of a sharing story, each through the real service functions at a chosen instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal, Role
from pintuan.domain.traffic import Channel, new_visitor_id
from pintuan.kit.time import clock, utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.shares import service as shares
from pintuan.shares.models import Share, ShareConversion
from pintuan.teams import service as teams
from pintuan.teams.service import PaidOutcome, SeatView, TeamStart
from tests.factories import Account, create_deal

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WHATSAPP_PREVIEW = "WhatsApp/2.23.20.0 A"
HOLD = timedelta(minutes=10)


def move_to(instant: datetime) -> None:
    """Set the application clock to ``instant`` (it keeps running from there)."""
    clock.offset = instant - datetime.now(UTC)


def share(
    services: Services,
    sharer: Account,
    *,
    team_id: str | None = None,
    deal_id: str | None = None,
    channel: Channel = Channel.WECHAT,
    country: str = "CN",
) -> Share:
    def work(session: Any) -> Share:
        return shares.create_share(
            session,
            sharer.principal,
            channel=channel,
            base_url=services.settings.base_url,
            country=country,
            locale="en",
            now=utc_now(),
            team_id=team_id,
            deal_id=deal_id,
        ).share

    return services.db.run_sync(work)


def visit(
    services: Services,
    shared: Share,
    visitor_id: str | None = None,
    *,
    user: Account | None = None,
    user_agent: str = PHONE,
    country: str = "CN",
) -> str:
    """Open a share as a visitor (a new one unless given); returns the visitor id."""
    visitor_id = visitor_id or new_visitor_id()
    facts = shares.VisitFacts(
        visitor_id=visitor_id,
        user_id=user.user_id if user else None,
        user_agent=user_agent,
        country=country,
        via="link",
    )

    def work(session: Any) -> None:
        found = session.get(Share, shared.id)
        shares.record_visit(session, found, facts, utc_now())

    services.db.run_sync(work)
    return visitor_id


def sign_in(services: Services, visitor_id: str, account: Account) -> None:
    """The visitor signs in as ``account`` (what the visitor-link middleware records)."""
    services.db.run_sync(lambda s: shares.link_visitor(s, visitor_id, account.user_id, utc_now()))


def start(services: Services, account: Account, deal_id: str) -> TeamStart:
    return services.db.run_raw_sync(
        lambda tx: teams.start_team(tx, account.user_id, deal_id, utc_now(), hold=HOLD)
    )


def join(services: Services, account: Account, team_id: str) -> SeatView:
    return services.db.run_raw_sync(
        lambda tx: teams.join_team(tx, account.user_id, team_id, utc_now(), hold=HOLD)
    )


def pay(services: Services, seat_id: str) -> PaidOutcome:
    """The seat's payment arrives (what a provider's confirmation does to the seat)."""
    outcome = services.db.run_raw_sync(lambda tx: teams.mark_seat_paid(tx, seat_id, utc_now()))
    assert outcome.took_place
    return outcome


def operator() -> Principal:
    return Principal("usr_operator", Role.OPERATOR, "Operator", "en", "UTC", frozenset())


def long_deal(services: Services, merchant: Merchant, *, days: int = 40, **options: Any) -> Deal:
    """A live deal (see ``create_deal``) that stays live for ``days``."""
    deal = create_deal(services.db, merchant, **options)
    staff = Principal("usr_system", Role.MERCHANT, "Staff", "en", "UTC", frozenset({merchant.id}))
    ends_at = utc_now() + timedelta(days=days)
    return services.db.run_sync(
        lambda s: deals.update_deal(s, staff, deal.id, {"ends_at": ends_at})
    )


def credits(services: Services, share_id: str) -> dict[str, int]:
    """How many of each kind of order step are credited to a share."""

    def work(session: Any) -> dict[str, int]:
        rows = session.execute(
            select(ShareConversion.kind, func.count())
            .where(ShareConversion.share_id == share_id)
            .group_by(ShareConversion.kind)
        ).all()
        return {str(kind): int(n) for kind, n in rows}

    return services.db.run_sync(work)
