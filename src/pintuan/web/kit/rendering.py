"""One Jinja environment over ``web/templates`` and ``render``, which every page answers with.

``render`` adds what every template may use:

- ``viewer`` (the signed-in Principal or None), ``locale`` (``en``/``zh_Hans``), ``lang`` (its
  BCP 47 tag for ``<html lang>``), ``time_zone`` (the viewer's), ``now`` (aware UTC),
  ``unread_notices`` (the header's badge);
- ``csrf_token`` and ``csrf_field()`` (the hidden input), ``form_key()`` (a fresh
  idempotency key for a form that must take effect once), ``static(path)`` (a cache-busted
  URL under ``/static``), ``current_path``, ``locales`` (for the switcher), ``notice``;
- from :mod:`pintuan.web.kit.i18n`: ``_``, ``gettext``, ``ngettext``, ``format_money``,
  ``format_instant``, ``format_day``, ``format_relative``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy import func, select

from pintuan.domain.roles import Principal
from pintuan.errors import DatabaseBusy
from pintuan.kit.time import utc_now
from pintuan.media.service import key_of_url, thumbnail_of
from pintuan.notifications.models import Notification
from pintuan.web.kit.csrf import CSRF_FIELD, csrf_token, set_csrf_cookie
from pintuan.web.kit.i18n import (
    N_,
    install_jinja_helpers,
    request_locale,
    supported_locales,
    tag_of_locale,
    translations_for,
    viewer_time_zone,
)
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import here, page_principal

TEMPLATES_DIR = Path(__file__).parents[1] / "templates"
STATIC_DIR = Path(__file__).parents[1] / "static"
STATIC_PREFIX = "/static"

# Compiled once per process and kept: no file check per render (a changed template needs a
# restart, as changed code does).
templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    auto_reload=False,
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
install_jinja_helpers(templates)


def initials(name: str) -> str:
    """Up to two letters for an avatar: ``Amy Lin`` → ``AL``, ``陈店长`` → ``陈``."""
    words = name.split()
    if not words:
        return "?"
    first = words[0][0]
    if len(words) == 1 or not first.isascii():
        return first.upper()
    return (first + words[-1][0]).upper()


def avatar_tone(name: str) -> int:
    """One of six colours, the same for a name everywhere."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 6


templates.filters["initials"] = initials
templates.filters["avatar_tone"] = avatar_tone
# A stored picture's thumbnail address, and its key (the id the picture routes take).
templates.filters["thumbnail"] = thumbnail_of
templates.filters["image_key"] = key_of_url

# Short messages a page may show after a redirect (``?notice=<key>``); only known keys show.
NOTICES: dict[str, str] = {
    "logged_in": N_("You are logged in."),
    "logged_out": N_("You are logged out."),
    "signed_up": N_("Welcome to Pintuan! Your account is ready."),
    "settings_saved": N_("Your settings are saved."),
}


@lru_cache(maxsize=256)
def _fingerprint(path: str) -> str:
    file = STATIC_DIR / path
    return hashlib.sha256(file.read_bytes()).hexdigest()[:10] if file.is_file() else "0"


def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: browsers may cache it for as long as it is unchanged."""
    return f"{STATIC_PREFIX}/{path}?v={_fingerprint(path)}"


def new_form_key() -> str:
    """A fresh idempotency key for one rendering of one form."""
    return uuid.uuid4().hex


def csrf_values(token: str) -> dict[str, Any]:
    """``csrf_token`` and ``csrf_field()`` of a page's template for ``token`` (the browser's
    own, or a stand-in that a kept page replaces with it)."""
    return {
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, token
        ),
    }


async def page_context(request: Request) -> dict[str, Any]:
    """What every template may use (see the module's docstring)."""
    viewer = await page_principal(request)
    locale = request_locale(request, viewer)
    token = csrf_token(request)
    notice_key = request.query_params.get("notice", "")
    return {
        "unread_notices": await _unread_notices(request, viewer),
        "request": request,
        "viewer": viewer,
        "locale": locale,
        "lang": tag_of_locale(locale),
        "time_zone": viewer_time_zone(request, viewer),
        "now": utc_now(),
        **csrf_values(token),
        "form_key": new_form_key,
        "static": static_url,
        "current_path": here(request),
        "locales": supported_locales(),
        "notice": translations_for(locale).gettext(NOTICES[notice_key])
        if notice_key in NOTICES
        else None,
    }


async def _unread_notices(request: Request, viewer: Principal | None) -> int:
    """The header badge's count, read once per page for a signed-in viewer."""
    if viewer is None:
        return 0
    user_id = viewer.user_id
    try:
        return await services_of(request).db.read(
            lambda s: int(
                s.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.user_id == user_id, Notification.read_at.is_(None))
                )
                or 0
            )
        )
    except DatabaseBusy:
        return 0  # a badge is not worth failing the page (or the busy page itself) for


async def render(
    request: Request,
    template_name: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page for this request's viewer, in their language and time zone."""
    values = await page_context(request)
    values.update(context or {})
    html = templates.get_template(template_name).render(values)
    return finish_page(request, HTMLResponse(html, status_code=status_code))


def finish_page(request: Request, response: HTMLResponse) -> HTMLResponse:
    """A rendered page's headers, and the CSRF cookie when its token was minted for it."""
    # Pages carry a CSRF token and often personal data: never keep them in a shared cache.
    response.headers["cache-control"] = "no-store"
    response.headers["vary"] = "Cookie, Accept-Language"
    set_csrf_cookie(request, response)
    return response
