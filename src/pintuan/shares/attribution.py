"""Attribution: crediting orders to the share that brought them, and the invite tree.

Attribution is last touch. An order (a seat started or joined) is credited to the latest
*qualifying* visit of its shopper to a share of the same deal, made at most the attribution
window (7 days by default) before the order. A visit qualifies unless it came from a bot or a
link-preview fetcher, or was the sharer opening their own share. The shopper's visits are those
made while signed in plus every visit of a visitor id (the ``pt_vid`` cookie) that was later
seen signed in as them. The order's payment and its team's success are credited to the same
share as the order, so each share's funnel (visit → order → paid → success) counts the same
people all the way down. A shopper's first order credited to someone's share makes that someone
their inviter, which grows the invite tree (who brought whom).

Attribution runs in the worker from the outbox (see ``shares.tasks``), never in the join's own
transaction: the join stays the few statements it is, and a slow attribution query can never
hold a seat's locks. Shares, tokens and visits themselves are in ``shares.service``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, column, or_, select, text
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.domain.traffic import ConversionKind
from pintuan.errors import NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.orm import UtcDateTime
from pintuan.kit.sql import upsert_insert
from pintuan.shares.models import Invite, Share, ShareConversion, ShareVisit, VisitorLink
from pintuan.teams.models import Seat

MAX_INVITE_DEPTH = 10
MAX_INVITE_ROWS = 1000


# ---------------------------------------------------------------------------- last touch


@dataclass(frozen=True, slots=True)
class Touch:
    visit_id: str
    share_id: str
    sharer_id: str | None
    channel: str


def last_touch(
    session: Session, user_id: str, deal_id: str, at: datetime, window: timedelta
) -> Touch | None:
    """The latest qualifying visit of this shopper to a share of this deal within the window
    before ``at`` (``at - window`` itself still counts).

    A shopper's visits are those of every visitor id linked to them; a visit made signed in
    links its visitor id on the spot, so it is among them.
    """
    linked = select(VisitorLink.visitor_id).where(VisitorLink.user_id == user_id)
    row = session.execute(
        select(ShareVisit.id, ShareVisit.share_id, Share.sharer_id, Share.channel)
        .join(Share, Share.id == ShareVisit.share_id)
        .where(
            ShareVisit.visitor_id.in_(linked),
            ShareVisit.deal_id == deal_id,
            ShareVisit.at <= at,
            ShareVisit.at >= at - window,
            ShareVisit.is_bot.is_(False),
            ShareVisit.is_self.is_(False),
            or_(Share.sharer_id.is_(None), Share.sharer_id != user_id),
        )
        .order_by(ShareVisit.at.desc(), ShareVisit.id.desc())
        .limit(1)
    ).first()
    return Touch(row.id, row.share_id, row.sharer_id, row.channel) if row else None


def _credit(
    session: Session,
    seat: Seat,
    share_id: str,
    visit_id: str,
    kind: ConversionKind,
    at: datetime,
) -> None:
    session.execute(
        upsert_insert(session, ShareConversion)
        .values(
            id=new_id("cnv"),
            share_id=share_id,
            visit_id=visit_id,
            kind=kind.value,
            user_id=seat.user_id,
            seat_id=seat.id,
            team_id=seat.team_id,
            deal_id=seat.deal_id,
            occurred_at=at,
        )
        .on_conflict_do_nothing()
    )


_ORDER_KINDS = (ConversionKind.START.value, ConversionKind.JOIN.value)

_ANCESTORS = text("""
    WITH RECURSIVE up(user_id, depth) AS (
        SELECT inviter_id, 1 FROM invites WHERE invitee_id = :inviter
        UNION ALL
        SELECT i.inviter_id, up.depth + 1 FROM invites i JOIN up ON i.invitee_id = up.user_id
        WHERE up.depth < :max_depth
    )
    SELECT 1 FROM up WHERE user_id = :invitee LIMIT 1
""")


def _record_invite(session: Session, seat: Seat, touch: Touch, at: datetime) -> None:
    """A shopper's first order credited to someone's share makes that someone their inviter
    (once, and never in a loop)."""
    if touch.sharer_id is None:
        return
    earlier = session.scalar(
        select(Seat.id).where(Seat.user_id == seat.user_id, Seat.id < seat.id).limit(1)
    )
    if earlier is not None:
        return
    loop = session.execute(
        _ANCESTORS,
        {"inviter": touch.sharer_id, "invitee": seat.user_id, "max_depth": 100},
    ).first()
    if loop is not None:
        return
    session.execute(
        upsert_insert(session, Invite)
        .values(
            invitee_id=seat.user_id,
            inviter_id=touch.sharer_id,
            share_id=touch.share_id,
            channel=touch.channel,
            created_at=at,
        )
        .on_conflict_do_nothing()
    )


def attribute_order(session: Session, seat: Seat, window: timedelta) -> tuple[str, str] | None:
    """Credit a seat's order (its start or join) to its last touch, once; returns the
    (share id, visit id) it is credited to, or None when no share brought it."""
    found = session.execute(
        select(ShareConversion.share_id, ShareConversion.visit_id).where(
            ShareConversion.seat_id == seat.id, ShareConversion.kind.in_(_ORDER_KINDS)
        )
    ).first()
    if found is not None:
        return found.share_id, found.visit_id
    touch = last_touch(session, seat.user_id, seat.deal_id, seat.created_at, window)
    if touch is None:
        return None
    kind = ConversionKind.START if seat.is_leader else ConversionKind.JOIN
    _credit(session, seat, touch.share_id, touch.visit_id, kind, seat.created_at)
    _record_invite(session, seat, touch, seat.created_at)
    return touch.share_id, touch.visit_id


def shoppers_with_visits(session: Session, user_ids: set[str]) -> set[str]:
    """Which of these shoppers have any visitor id, hence any visit that could be credited:
    one indexed read lets attribution skip everyone else (most orders, on most days)."""
    if not user_ids:
        return set()
    return set(
        session.scalars(
            select(VisitorLink.user_id).where(VisitorLink.user_id.in_(sorted(user_ids))).distinct()
        )
    )


def attribute_seat_event(
    session: Session, seat: Seat, paid: bool, at: datetime, window: timedelta
) -> None:
    """A seat was taken (held) or paid: credit its order, and its payment to the same share."""
    credited = attribute_order(session, seat, window)
    if credited is not None and paid:
        _credit(session, seat, credited[0], credited[1], ConversionKind.PAY, at)


def attribute_team_success(
    session: Session, members: Sequence[Seat], at: datetime, window: timedelta
) -> None:
    """A team succeeded: each member whose order a share brought counts a success for it."""
    for seat in members:
        credited = attribute_order(session, seat, window)
        if credited is not None:
            _credit(session, seat, credited[0], credited[1], ConversionKind.SUCCESS, at)


# ---------------------------------------------------------------------------- the invite tree


@dataclass(frozen=True, slots=True)
class InviteNode:
    user_id: str
    display_name: str
    inviter_id: str
    depth: int
    channel: str
    invited_at: datetime


_DOWN = text("""
    WITH RECURSIVE down(user_id, inviter_id, depth, channel, invited_at) AS (
        SELECT invitee_id, inviter_id, 1, channel, created_at FROM invites
        WHERE inviter_id = :root
        UNION ALL
        SELECT i.invitee_id, i.inviter_id, d.depth + 1, i.channel, i.created_at
        FROM invites i JOIN down d ON i.inviter_id = d.user_id
        WHERE d.depth < :depth
    )
    SELECT d.user_id, u.display_name, d.inviter_id, d.depth, d.channel, d.invited_at
    FROM down d JOIN users u ON u.id = d.user_id
    ORDER BY d.depth, d.invited_at, d.user_id
    LIMIT :limit
""").columns(
    column("user_id", String()),
    column("display_name", String()),
    column("inviter_id", String()),
    column("depth", Integer()),
    column("channel", String()),
    column("invited_at", UtcDateTime()),
)


def invite_tree(session: Session, root_id: str, depth: int) -> tuple[list[InviteNode], bool]:
    """Everyone ``root_id`` brought, directly or through others, down to ``depth`` levels;
    also whether the answer was cut at its row limit."""
    if session.get(User, root_id) is None:
        raise NotFound(f"No user {root_id}.", code="user_not_found")
    rows = (
        session.execute(_DOWN, {"root": root_id, "depth": depth, "limit": MAX_INVITE_ROWS + 1})
        .mappings()
        .all()
    )
    nodes = [InviteNode(**r) for r in rows[:MAX_INVITE_ROWS]]
    return nodes, len(rows) > MAX_INVITE_ROWS
