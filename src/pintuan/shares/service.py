"""Shares and their traffic: making shares, resolving copy-paste tokens, logging visits and
linking visitors to accounts.

What the visits logged here earn, the crediting of orders to the share that brought them and
the invite tree, is in ``shares.attribution``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from pintuan.deals.models import Deal
from pintuan.domain.lifecycle import DealStatus
from pintuan.domain.roles import Principal
from pintuan.domain.teams import TeamStatus
from pintuan.domain.traffic import (
    Channel,
    framed_token,
    is_bot,
    new_share_code,
    new_share_token,
    token_of,
    ua_class,
)
from pintuan.errors import Conflict, Gone, NotFound, field_error
from pintuan.kit.ids import new_id
from pintuan.kit.money import Money
from pintuan.kit.sql import upsert_insert
from pintuan.shares import wording
from pintuan.shares.models import Share, ShareConversion, ShareVisit, VisitorLink
from pintuan.teams.models import Team

# A visitor opening the same share again within this time is the same visit.
REVISIT_WINDOW = timedelta(minutes=30)
_NEW_CODE_ATTEMPTS = 5


# ---------------------------------------------------------------------------- making shares


@dataclass(frozen=True, slots=True)
class ShareStats:
    visits: int = 0
    starts: int = 0
    joins: int = 0
    paid: int = 0
    successes: int = 0


@dataclass(frozen=True, slots=True)
class ShareView:
    share: Share
    url: str
    parent_code: str | None
    text: str | None = None
    stats: ShareStats = field(default_factory=ShareStats)

    @property
    def id(self) -> str:
        return self.share.id


def share_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/s/{code}"


def _live_team(session: Session, team_id: str, now: datetime) -> tuple[Team, Deal]:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"No team {team_id}.", code="team_not_found")
    if team.status != TeamStatus.FORMING.value or team.expires_at <= now:
        raise Conflict(
            "This team has closed; share its deal instead, so friends can start a new team.",
            code="team_closed",
        )
    deal = session.get(Deal, team.deal_id)
    assert deal is not None
    return team, deal


def _live_deal(session: Session, deal_id: str) -> Deal:
    deal = session.get(Deal, deal_id)
    if deal is None or deal.status == DealStatus.DRAFT.value:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    if deal.status != DealStatus.LIVE.value:
        raise Conflict(
            f"This deal is {deal.status}; only live deals can be shared.", code="deal_not_live"
        )
    return deal


def _parent(session: Session, code: str | None, deal_id: str, team_id: str | None) -> Share | None:
    """The share a re-share came from: a share of the same team, or of the same deal."""
    if code is None:
        return None
    parent = session.scalar(select(Share).where(Share.code == code))
    if parent is None:
        raise field_error("from", "is not the code of a share", code="share_not_found")
    same_team = team_id is not None and parent.team_id == team_id
    same_deal = parent.target == "deal" and parent.deal_id == deal_id
    if not (same_team or same_deal):
        raise field_error(
            "from", "names a share of another team or deal", code="share_parent_mismatch"
        )
    return parent


def _insert_share(session: Session, share: Share) -> None:
    """Insert with fresh random code (and token) on the rare collision of either."""
    for _ in range(_NEW_CODE_ATTEMPTS):
        try:
            with session.begin_nested():
                session.add(share)
                session.flush()
            return
        except IntegrityError:
            share.code = new_share_code()
            if share.token is not None:
                share.token = new_share_token()
    raise RuntimeError("could not draw a unique share code")  # 58**10 codes: never in practice


def create_share(
    session: Session,
    sharer: Principal,
    *,
    channel: Channel,
    base_url: str,
    country: str,
    locale: str,
    now: datetime,
    team_id: str | None = None,
    deal_id: str | None = None,
    from_code: str | None = None,
) -> ShareView:
    """Make a share of a forming team (with a copy-paste token and text) or of a live deal.

    The code is random and carries nothing about the sharer; a team share's token expires
    with the team's window.
    """
    if team_id is not None:
        team, deal = _live_team(session, team_id, now)
    else:
        assert deal_id is not None
        team, deal = None, _live_deal(session, deal_id)
    parent = _parent(session, from_code, deal.id, team.id if team else None)
    share = Share(
        id=new_id("shr"),
        code=new_share_code(),
        sharer_id=sharer.user_id,
        target="team" if team else "deal",
        team_id=team.id if team else None,
        deal_id=deal.id,
        channel=channel.value,
        parent_id=parent.id if parent else None,
        country=country,
        token=new_share_token() if team else None,
        token_expires_at=team.expires_at if team else None,
        created_at=now,
    )
    _insert_share(session, share)
    text_ = None
    if team is not None and share.token is not None:
        text_ = _team_text(deal, team, share.token, locale, sharer.time_zone)
    return ShareView(share, share_url(base_url, share.code), from_code, text_)


def _team_text(deal: Deal, team: Team, token: str, locale: str, time_zone: str) -> str:
    return wording.team_share_text(
        locale=locale,
        title=deal.title,
        price=Money(deal.group_price_amount, deal.currency),
        list_price=Money(deal.list_price_amount, deal.currency),
        seats_left=team.team_size - team.taken,
        ends_at=team.expires_at,
        time_zone=time_zone,
        token=framed_token(token),
    )


def latest_share_of(
    session: Session, sharer: Principal, channel: Channel, *, team_id: str
) -> Share | None:
    """The sharer's latest share of a team for ``channel`` still in their history, if any."""
    return session.scalar(
        select(Share)
        .where(
            Share.sharer_id == sharer.user_id,
            Share.channel == channel.value,
            Share.team_id == team_id,
            Share.deleted_at.is_(None),
        )
        .order_by(Share.id.desc())
        .limit(1)
    )


def qr_share_for(
    session: Session,
    sharer: Principal,
    *,
    base_url: str,
    country: str,
    now: datetime,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> Share:
    """The viewer's own ``qr`` share of the target, made on first use (posters reuse it)."""
    query = select(Share).where(
        Share.sharer_id == sharer.user_id,
        Share.channel == Channel.QR.value,
        Share.deleted_at.is_(None),
    )
    query = (
        query.where(Share.team_id == team_id)
        if team_id is not None
        else query.where(Share.deal_id == deal_id, Share.target == "deal")
    )
    found = session.scalar(query.order_by(Share.id.desc()).limit(1))
    if found is not None:
        return found
    return create_share(
        session,
        sharer,
        channel=Channel.QR,
        base_url=base_url,
        country=country,
        locale=wording.DEFAULT_LOCALE,
        now=now,
        team_id=team_id,
        deal_id=deal_id,
    ).share


# ---------------------------------------------------------------------------- history


def _stats_of(session: Session, share_ids: Sequence[str]) -> dict[str, ShareStats]:
    if not share_ids:
        return {}
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    visits = session.execute(
        select(ShareVisit.share_id, func.count())
        .where(
            ShareVisit.share_id.in_(share_ids),
            ShareVisit.is_bot.is_(False),
            ShareVisit.is_self.is_(False),
        )
        .group_by(ShareVisit.share_id)
    ).all()
    for share_id, n in visits:
        counts[share_id]["visits"] = n
    conversions = session.execute(
        select(ShareConversion.share_id, ShareConversion.kind, func.count())
        .where(ShareConversion.share_id.in_(share_ids))
        .group_by(ShareConversion.share_id, ShareConversion.kind)
    ).all()
    names = {"start": "starts", "join": "joins", "pay": "paid", "success": "successes"}
    for share_id, kind, n in conversions:
        counts[share_id][names[kind]] = n
    return {share_id: ShareStats(**values) for share_id, values in counts.items()}


def my_shares(
    session: Session, user_id: str, base_url: str, cursor_id: str | None, limit: int
) -> list[ShareView]:
    """The shopper's shares newest first, each with the visits and orders it brought."""
    parent = aliased(Share)
    query = (
        select(Share, parent.code)
        .outerjoin(parent, parent.id == Share.parent_id)
        .where(Share.sharer_id == user_id, Share.deleted_at.is_(None))
        .order_by(Share.id.desc())
        .limit(limit + 1)
    )
    if cursor_id is not None:
        query = query.where(Share.id < cursor_id)
    rows = session.execute(query).all()
    stats = _stats_of(session, [r.Share.id for r in rows])
    return [
        ShareView(s, share_url(base_url, s.code), parent_code, None, stats.get(s.id, ShareStats()))
        for s, parent_code in rows
    ]


def own_share(
    session: Session,
    sharer: Principal,
    code: str,
    *,
    base_url: str,
    locale: str,
    now: datetime,
) -> ShareView | None:
    """The sharer's own share with this code, to show again (None for an unknown code, a
    deleted share or anybody else's). A team share carries its copy-paste message written
    as the team stands now, while its token still resolves."""
    share = session.scalar(
        select(Share).where(
            Share.code == code, Share.sharer_id == sharer.user_id, Share.deleted_at.is_(None)
        )
    )
    if share is None:
        return None
    text_ = None
    team = session.get(Team, share.team_id) if share.team_id is not None else None
    if team is not None and share.token is not None and _token_live(share, team, now):
        deal = session.get(Deal, share.deal_id)
        assert deal is not None
        text_ = _team_text(deal, team, share.token, locale, sharer.time_zone)
    parent = session.get(Share, share.parent_id) if share.parent_id is not None else None
    return ShareView(share, share_url(base_url, share.code), parent.code if parent else None, text_)


def delete_share(session: Session, user_id: str, share_id: str, now: datetime) -> None:
    """Take a share out of the shopper's history.

    The row stays, with its link working for the friends who already have it, but no longer
    says who made it: the visits and orders it brought stay in every aggregate (they happened),
    and nothing more is credited to the former sharer.
    """
    changed = session.execute(
        update(Share)
        .where(Share.id == share_id, Share.sharer_id == user_id, Share.deleted_at.is_(None))
        .values(sharer_id=None, deleted_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        raise NotFound(f"No share {share_id} in your history.", code="share_not_found")


# ---------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class ResolvedToken:
    share: Share
    team: Team
    deal: Deal


def resolve_token(session: Session, text_: str, now: datetime) -> ResolvedToken:
    """The team of a copy-paste token, given the token or a whole pasted message holding it."""
    token = token_of(text_)
    share = session.scalar(select(Share).where(Share.token == token)) if token else None
    if share is None or share.team_id is None:
        raise NotFound(
            "No team has this token; check that the whole token was copied.",
            code="share_token_not_found",
        )
    team = session.get(Team, share.team_id)
    deal = session.get(Deal, share.deal_id)
    assert team is not None
    assert deal is not None
    if not _token_live(share, team, now):
        raise Gone(
            "This team's window has closed; its deal may still have open teams.",
            code="share_token_expired",
            extra={"deal_id": deal.id},
        )
    return ResolvedToken(share, team, deal)


def _token_live(share: Share, team: Team, now: datetime) -> bool:
    """A token resolves while its team is forming and its window is open."""
    expires_at = share.token_expires_at or team.expires_at
    return expires_at > now and team.status == TeamStatus.FORMING.value


def find_share(session: Session, code: str) -> Share:
    share = session.scalar(select(Share).where(Share.code == code))
    if share is None:
        raise NotFound(
            "This share link is unknown; check that it was copied whole.", code="share_not_found"
        )
    return share


# ---------------------------------------------------------------------------- visits


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What a request says about who opened a share."""

    visitor_id: str
    user_id: str | None
    user_agent: str | None
    country: str
    via: str  # link or token


def link_visitor(session: Session, visitor_id: str, user_id: str, now: datetime) -> None:
    """Remember that this visitor id is this user (from now on their visits are theirs)."""
    session.execute(
        upsert_insert(session, VisitorLink)
        .values(visitor_id=visitor_id, user_id=user_id, linked_at=now)
        .on_conflict_do_nothing()
    )


def _is_self_visit(session: Session, share: Share, facts: VisitFacts) -> bool:
    if share.sharer_id is None:
        return False
    if facts.user_id is not None:
        return facts.user_id == share.sharer_id
    linked = session.scalar(
        select(VisitorLink.visitor_id).where(
            VisitorLink.visitor_id == facts.visitor_id, VisitorLink.user_id == share.sharer_id
        )
    )
    return linked is not None


def record_visit(session: Session, share: Share, facts: VisitFacts, now: datetime) -> bool:
    """Log one opening of a share; returns whether it was a new visit.

    The same visitor opening the same share again within 30 minutes is the same visit.
    Bots are logged, flagged, and never linked to anyone.
    """
    bot = is_bot(facts.user_agent)
    if not bot and facts.user_id is not None:
        link_visitor(session, facts.visitor_id, facts.user_id, now)
    recent = session.scalar(
        select(ShareVisit.id)
        .where(
            ShareVisit.visitor_id == facts.visitor_id,
            ShareVisit.share_id == share.id,
            ShareVisit.at > now - REVISIT_WINDOW,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    session.add(
        ShareVisit(
            id=new_id("vst"),
            share_id=share.id,
            deal_id=share.deal_id,
            visitor_id=facts.visitor_id,
            user_id=facts.user_id,
            via=facts.via,
            ua_class=ua_class(facts.user_agent).value,
            country=facts.country,
            is_bot=bot,
            is_self=not bot and _is_self_visit(session, share, facts),
            at=now,
        )
    )
    session.flush()
    return True


# ---------------------------------------------------------------------------- posters


@dataclass(frozen=True, slots=True)
class PosterSubject:
    deal: Deal
    team: Team | None
    share_code: str | None
    url: str


def poster_subject(
    session: Session,
    viewer: Principal | None,
    *,
    base_url: str,
    country: str,
    now: datetime,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> PosterSubject:
    """What a poster shows, and the link in its QR code: a signed-in viewer's own ``qr`` share
    (so scans are credited to them), else the plain page of the team or deal."""
    if team_id is not None:
        team, deal = _live_team(session, team_id, now)
    else:
        assert deal_id is not None
        team, deal = None, _live_deal(session, deal_id)
    if viewer is None:
        page = f"/teams/{team.id}" if team else f"/deals/{deal.id}"
        return PosterSubject(deal, team, None, base_url.rstrip("/") + page)
    share = qr_share_for(
        session,
        viewer,
        base_url=base_url,
        country=country,
        now=now,
        team_id=team.id if team else None,
        deal_id=deal.id,
    )
    return PosterSubject(deal, team, share.code, share_url(base_url, share.code))
