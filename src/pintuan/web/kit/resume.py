"""Keeping a tapped action across log-in: tap Start signed out (or after the session expired),
log in or sign up, and the team is started, as if the tap had waited.

Only same-site POST forms of routes marked :func:`resumable` are kept, and only after the
request proved it came from this site: its CSRF token matched (a visitor who is not signed in),
or, when the token no longer matches because the session it was bound to is gone, the browser
said so itself (``Sec-Fetch-Site: same-origin``, or an ``Origin`` of this site). What is kept is
the action's path and its form fields (its ``form_key`` included, so it still takes effect
once), signed with the secret key and bound to this browser's CSRF nonce: it travels through
the log-in and sign-up pages as a ``action`` parameter, useless in any other browser, and
expires after :data:`KEPT_FOR`. After logging in, ``/continue`` shows the same form again with
a fresh CSRF token, and the page's script sends it (a button does without JavaScript).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import Request

from pintuan.kit.secrets import same_secret
from pintuan.kit.time import utc_now
from pintuan.web.kit.csrf import CSRF_COOKIE, CSRF_FIELD
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import safe_next

ACTION_PARAM = "action"
KEPT_FOR = timedelta(minutes=30)
_MAX_FIELDS = 10
_MAX_VALUE = 200
_MARK = "_pintuan_resumable"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def resumable(endpoint: Endpoint) -> Endpoint:
    """Mark a page's POST action as one to perform after the log-in it ran into (apply it
    under ``@router.post``). Only actions a shopper means to take at once belong here."""
    setattr(endpoint, _MARK, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class KeptAction:
    path: str  # the action's own path on this site
    fields: dict[str, str]
    page: str  # where to go back to if it is not performed


def _is_resumable(request: Request) -> bool:
    """Whether the route this request reached is marked :func:`resumable`."""
    return bool(getattr(request.scope.get("endpoint"), _MARK, False))


def _signature(request: Request, nonce: str, payload: str) -> str:
    key = services_of(request).settings.secret_key.encode()
    mac = hmac.new(key, f"resume|{nonce}|{payload}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")


async def keep_action(request: Request, page: str) -> str | None:
    """The token keeping this POST for after log-in, or None when it may not be kept (not a
    resumable route, no nonce, too big)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    path = request.url.path
    if request.method != "POST" or not nonce or not _is_resumable(request):
        return None
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    if len(fields) > _MAX_FIELDS or any(len(k) + len(v) > _MAX_VALUE for k, v in fields.items()):
        return None
    body = {"p": path, "f": fields, "b": safe_next(page), "t": int(utc_now().timestamp())}
    payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
    encoded = payload.decode().rstrip("=")
    return f"{encoded}.{_signature(request, nonce, encoded)}"


def read_action(request: Request, token: str | None) -> KeptAction | None:
    """The action ``token`` keeps, if it was kept in this browser and is fresh; else None."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not token or not nonce or len(token) > 4096 or "." not in token:
        return None
    encoded, signature = token.rsplit(".", 1)
    if not same_secret(signature, _signature(request, nonce, encoded)):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        path, fields, page, issued = str(body["p"]), dict(body["f"]), str(body["b"]), body["t"]
    except (ValueError, KeyError, TypeError):
        return None
    age = utc_now().timestamp() - float(issued)
    # The route was checked as the action was kept; the signature says nobody changed it since.
    if not 0 <= age <= KEPT_FOR.total_seconds():
        return None
    return KeptAction(path, {str(k): str(v) for k, v in fields.items()}, safe_next(page))


def came_from_this_site(request: Request) -> bool:
    """Whether the browser itself says this request came from a page of this site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if not origin:
        return False
    ours = {
        _origin(str(request.base_url)),
        _origin(services_of(request).settings.base_url),
    }
    return _origin(origin) in ours


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def referring_page(request: Request) -> str:
    """The page of this site the form was on (from ``Referer``), else the home page."""
    referer = request.headers.get("referer", "")
    if referer and _origin(referer) == _origin(str(request.base_url)):
        parts = urlsplit(referer)
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/"


def login_url(next_url: str, action: str | None) -> str:
    """``/login`` coming back to ``next_url``, and carrying the kept action if any."""
    url = "/login?next=" + quote(safe_next(next_url), safe="/")
    return url + (f"&{ACTION_PARAM}={quote(action, safe='')}" if action else "")
