"""Sharing on the shopper's pages: the viewer's own share of a team or a deal, opening a pasted
copy-paste token, and "My shares" (what each share brought, and taking one out of the history).

The rules are the shares feature's: these pages call ``shares.service`` and the shares API's
own endpoint functions, as the JSON API does, and decide nothing themselves.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.deals.models import Deal
from pintuan.domain.roles import Principal
from pintuan.domain.traffic import Channel, is_share_code
from pintuan.errors import AppError, field_error
from pintuan.kit.pagination import decode_cursor, encode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.shares import api as shares_api
from pintuan.shares import service as shares
from pintuan.shares.models import Share
from pintuan.shares.service import ShareView
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.i18n import N_, tag_of_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn

router = Router(include_in_schema=False)

SHARES_PAGE_SIZE = 20
SHARE_QUERY = "share"  # ?share=<code>: the page shows the viewer's share with this code
VIA_QUERY = "via"  # ?via=<code>: the visitor came by this share; the page says who invited them

# Every channel the shares API takes, in the order the page offers them. Brand names read the
# same in every language, so only the others are marked for translation.
CHANNELS: dict[str, str] = {
    Channel.WECHAT.value: N_("WeChat"),
    Channel.WHATSAPP.value: "WhatsApp",
    Channel.LINE.value: "LINE",
    Channel.TELEGRAM.value: "Telegram",
    Channel.FACEBOOK.value: "Facebook",
    Channel.X.value: N_("X (Twitter)"),
    Channel.SMS.value: N_("Text message"),
    Channel.EMAIL.value: N_("Email"),
    Channel.COPY.value: N_("Copy and paste"),
    Channel.QR.value: N_("QR poster"),
    Channel.OTHER.value: N_("Somewhere else"),
}
DEFAULT_CHANNEL = Channel.COPY.value
TARGETS: dict[str, str] = {"team": N_("Team"), "deal": N_("Deal")}


def channel_of(value: str | None) -> Channel:
    """The channel a share form names; 422 ``validation_error`` for anything else."""
    try:
        return Channel(value or "")
    except ValueError:
        raise field_error("channel", "is not a channel Pintuan knows") from None


def make_share(
    session: Session,
    sharer: Principal,
    channel: Channel,
    *,
    base_url: str,
    country: str,
    locale: str,
    now: datetime,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> str:
    """The code of the viewer's share of a team or deal for ``channel``: their one ``qr``
    share, reused as posters reuse it, or a new share for any other channel."""
    if channel is Channel.QR:
        return shares.qr_share_for(
            session,
            sharer,
            base_url=base_url,
            country=country,
            now=now,
            team_id=team_id,
            deal_id=deal_id,
        ).code
    return shares.create_share(
        session,
        sharer,
        channel=channel,
        base_url=base_url,
        country=country,
        locale=locale,
        now=now,
        team_id=team_id,
        deal_id=deal_id,
    ).share.code


def shown_share(
    session: Session,
    viewer: Principal | None,
    code: str | None,
    *,
    base_url: str,
    locale: str,
    now: datetime,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> ShareView | None:
    """The viewer's share named by ``?share=`` when it is theirs and of this team (or of this
    deal itself); None otherwise, so nobody sees another person's share through the URL."""
    if viewer is None or not code or not is_share_code(code):
        return None
    view = shares.own_share(session, viewer, code, base_url=base_url, locale=locale, now=now)
    if view is None:
        return None
    if team_id is not None and view.share.team_id != team_id:
        return None
    if deal_id is not None and (view.share.target != "deal" or view.share.deal_id != deal_id):
        return None
    return view


def inviter_name(
    session: Session, viewer: Principal | None, code: str | None, team_id: str
) -> str | None:
    """The display name of whoever shared this team by the share ``code`` a visitor came by;
    None for a code of another team, a share taken out of its sharer's history, or the
    viewer's own share."""
    if not code or not is_share_code(code):
        return None
    row = session.execute(
        select(User.display_name, Share.sharer_id)
        .join(User, User.id == Share.sharer_id)
        .where(Share.code == code, Share.team_id == team_id, Share.deleted_at.is_(None))
    ).first()
    if row is None or (viewer is not None and row.sharer_id == viewer.user_id):
        return None
    return str(row.display_name)


def member_share(
    session: Session, member: Principal, team_id: str, *, base_url: str, locale: str, now: datetime
) -> ShareView | None:
    """The member's own share of their team on the default channel, with its message, when
    they have one (see ``make_member_share``)."""
    found = shares.latest_share_of(session, member, Channel(DEFAULT_CHANNEL), team_id=team_id)
    if found is None:
        return None
    return shares.own_share(session, member, found.code, base_url=base_url, locale=locale, now=now)


def make_member_share(
    session: Session,
    member: Principal,
    team_id: str,
    *,
    base_url: str,
    country: str,
    locale: str,
    now: datetime,
) -> ShareView | None:
    """Make the member's share of their team on the default channel, so that the team page
    offers one-tap sharing with no channel to pick first; reuses one made meanwhile. None when
    the team has just closed (there is nothing left to share)."""
    found = member_share(session, member, team_id, base_url=base_url, locale=locale, now=now)
    if found is not None:
        return found
    try:
        shares.create_share(
            session,
            member,
            channel=Channel(DEFAULT_CHANNEL),
            base_url=base_url,
            country=country,
            locale=locale,
            now=now,
            team_id=team_id,
        )
    except AppError as refused:
        if refused.code == "team_closed":
            return None
        raise
    return member_share(session, member, team_id, base_url=base_url, locale=locale, now=now)


def poster_url(locale: str, *, team_id: str | None = None, deal_id: str | None = None) -> str:
    """The QR poster in the page's language. Opened by the signed-in viewer, its QR code is
    their own ``qr`` share, so the scans it brings are credited to them."""
    path = f"/v1/teams/{quote(team_id)}" if team_id else f"/v1/deals/{quote(deal_id or '')}"
    return f"{path}/poster.png?lang={tag_of_locale(locale)}"


def share_box(
    viewer: Principal | None,
    shown: ShareView | None,
    locale: str,
    *,
    team_id: str | None = None,
    deal_id: str | None = None,
) -> dict[str, Any]:
    """What the pages' share box (``shopper/_share.html``) needs besides the plain link."""
    return {
        "channels": CHANNELS,
        "chosen_channel": shown.share.channel if shown else DEFAULT_CHANNEL,
        "my_share": shown,
        "poster_url": poster_url(locale, team_id=team_id, deal_id=deal_id) if viewer else None,
    }


async def open_pasted_token(
    request: Request, principal: Principal | None, text: str
) -> RedirectResponse:
    """Resolve a pasted message or token to its team through the shares API (which logs the
    visit, so the friend who sent it is credited) and go to the team's page; raises the API's
    404 ``share_token_not_found`` or 410 ``share_token_expired``."""
    answer = await shares_api.resolve_pasted_text(text, request, principal, services_of(request))
    resolved = json.loads(bytes(answer.body))
    page = f"{resolved['page']}?{VIA_QUERY}={quote(str(resolved['share_code']))}"
    redirect = RedirectResponse(page, status_code=303, headers={"Cache-Control": "no-store"})
    for cookie in answer.headers.getlist("set-cookie"):
        redirect.headers.append("set-cookie", cookie)
    return redirect


# ---------------------------------------------------------------------------- my shares


def _deal_titles(session: Session, deal_ids: set[str]) -> dict[str, str]:
    if not deal_ids:
        return {}
    rows = session.execute(select(Deal.id, Deal.title).where(Deal.id.in_(sorted(deal_ids)))).all()
    return {str(deal_id): str(title) for deal_id, title in rows}


@router.get("/me/shares", response_class=HTMLResponse)
async def my_shares_page(
    request: Request, principal: LoggedIn, cursor: str | None = None
) -> Response:
    """The sharer's dashboard: every share, newest first, with the visits, teams started,
    joins, payments and completed teams it brought (what ``GET /v1/me/shares`` answers)."""
    cursor_id = decode_cursor(cursor) if cursor else None
    base_url = services_of(request).settings.base_url

    def read(session: Session) -> dict[str, Any]:
        rows = shares.my_shares(session, principal.user_id, base_url, cursor_id, SHARES_PAGE_SIZE)
        shown = rows[:SHARES_PAGE_SIZE]
        return {
            "shares": shown,
            "titles": _deal_titles(session, {v.share.deal_id for v in shown}),
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > SHARES_PAGE_SIZE else None,
        }

    context = await services_of(request).db.read(read)
    context.update(
        channels=CHANNELS,
        targets=TARGETS,
        deleted=request.query_params.get("deleted") == "1",
    )
    return await render(request, "shopper/shares.html", context)


@router.post("/me/shares/{share_id}/delete", dependencies=[CsrfProtected])
async def delete_my_share(request: Request, share_id: str, principal: LoggedIn) -> Response:
    """Take a share out of the history: its link keeps working for whoever has it, but it no
    longer credits the sharer."""
    await services_of(request).db.run(shares.delete_share, principal.user_id, share_id, utc_now())
    return RedirectResponse("/me/shares?deleted=1", status_code=303)
