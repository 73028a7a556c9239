"""Deep links: how the traffic an outside app sends is credited to it.

A deep link names the app and a team or deal (``/a/<app id>/teams/<team id>``). Opening one
logs a visit to the app's own share of that target: a share with no sharer on the channel
``app:<app id>``, made on first use. From there attribution runs as for every share (last touch,
see ``shares.attribution``), so the orders, payments and team successes the app brings show in
the growth figures under its channel. An app that is not approved brings no credit, and a deal
that is not live takes none; their visitors are still sent on to the page.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pintuan.apps.models import App
from pintuan.deals.models import Deal
from pintuan.domain.apps import AppStatus
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.traffic import UNKNOWN_COUNTRY, app_channel, app_share_code
from pintuan.errors import NotFound
from pintuan.kit.ids import new_id
from pintuan.shares.models import Share
from pintuan.teams.models import Team


def deal_link(base_url: str, app_id: str, deal_id: str) -> str:
    return f"{base_url.rstrip('/')}/a/{app_id}/deals/{deal_id}"


def team_link(base_url: str, app_id: str, team_id: str) -> str:
    return f"{base_url.rstrip('/')}/a/{app_id}/teams/{team_id}"


def _target(session: Session, deal_id: str | None, team_id: str | None) -> tuple[Deal, Team | None]:
    team = session.get(Team, team_id) if team_id is not None else None
    if team_id is not None and team is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    deal = session.get(Deal, team.deal_id if team is not None else deal_id)
    if deal is None or deal.status == DealStatus.DRAFT.value:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    return deal, team


def credited_share(
    session: Session, app_id: str, *, deal_id: str | None = None, team_id: str | None = None
) -> tuple[bool, str | None]:
    """Whether the app may take credit for this team or deal, and the id of its share of it
    when that exists already (else it is made on this first opening). 404 for an unknown
    target."""
    deal, team = _target(session, deal_id, team_id)
    if not _may_credit(session, app_id, deal):
        return False, None
    code = app_share_code(app_id, team.id if team is not None else deal.id)
    return True, session.scalar(select(Share.id).where(Share.code == code))


def _may_credit(session: Session, app_id: str, deal: Deal) -> bool:
    app = session.get(App, app_id)
    return (
        app is not None
        and app.status == AppStatus.APPROVED
        and deal.status == DealStatus.LIVE.value
        and not deal.merchant_suspended
    )


def make_app_share(
    session: Session,
    app_id: str,
    now: datetime,
    *,
    deal_id: str | None = None,
    team_id: str | None = None,
) -> str | None:
    """Make the app's share of this team or deal on the first opening of its deep link, and
    return its id (None when no credit is due). Concurrent first openings make one share: its
    code is derived from the app and the target, and codes are unique."""
    deal, team = _target(session, deal_id, team_id)
    if not _may_credit(session, app_id, deal):
        return None
    code = app_share_code(app_id, team.id if team is not None else deal.id)
    found = session.scalar(select(Share.id).where(Share.code == code))
    if found is not None:
        return found
    share = Share(
        id=new_id("shr"),
        code=code,
        sharer_id=None,
        target="team" if team is not None else "deal",
        team_id=team.id if team is not None else None,
        deal_id=deal.id,
        channel=app_channel(app_id),
        parent_id=None,
        country=UNKNOWN_COUNTRY,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(share)
            session.flush()
    except IntegrityError:
        return session.scalar(select(Share.id).where(Share.code == code))
    return share.id
