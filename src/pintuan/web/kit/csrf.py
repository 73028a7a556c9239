"""CSRF protection for every form: a signed double-submit token bound to the browser session.

The browser keeps a random nonce in an HTTP-only cookie; each form carries
``HMAC(secret_key, nonce | session)`` in a hidden field. A forged cross-site form cannot read the
cookie to compute the token, a planted nonce cookie is useless without the secret, and the token
stops working when the session changes (log-in, log-out), so one leaked page cannot be replayed
into another session.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request, Response

from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.config import Environment
from pintuan.errors import Forbidden
from pintuan.kit.cookies import set_cookie
from pintuan.kit.ids import random_urlsafe
from pintuan.kit.secrets import same_secret
from pintuan.web.kit.services import services_of

CSRF_COOKIE = "pintuan_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_NONCE_BYTES = 24
_COOKIE_DAYS = 365


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "The form has expired"


def _nonce(request: Request) -> str:
    """This browser's nonce; a new one (sent with the response) when it has none yet."""
    nonce: str | None = getattr(request.state, "csrf_nonce", None)
    if nonce is None:
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if not 16 <= len(nonce) <= 64:
            nonce = random_urlsafe(_NONCE_BYTES)
            request.state.csrf_new_nonce = True
        request.state.csrf_nonce = nonce
    return nonce


def _expected(request: Request, nonce: str) -> str:
    key = services_of(request).settings.secret_key.encode()
    session = request.cookies.get(SESSION_COOKIE, "")
    bound = hashlib.sha256(session.encode()).hexdigest()
    return hmac.new(key, f"csrf|{nonce}|{bound}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms (``<input name="csrf_token">``)."""
    return _expected(request, _nonce(request))


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the nonce cookie if this request minted one (``render`` does this for pages)."""
    if getattr(request.state, "csrf_new_nonce", False):
        set_cookie(
            response,
            CSRF_COOKIE,
            request.state.csrf_nonce,
            max_age=_COOKIE_DAYS * 86400,
            httponly=True,
            secure=services_of(request).settings.env is Environment.PROD,
            samesite="lax",
            path="/",
        )


async def verify_csrf(request: Request) -> None:
    """Refuse an unsafe request whose form field (or ``X-CSRF-Token`` header) does not carry
    the token of this browser and session: 403 ``csrf_failed``, nothing changed."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not token_matches(request, given):
        raise CsrfFailed(
            "This form has expired or did not come from this site; reload the page and try again."
        )


def token_matches(request: Request, given: str | None) -> bool:
    """Whether ``given`` is the CSRF token of this browser (its nonce cookie) and session."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not given or not nonce:
        return False
    return same_secret(given, _expected(request, nonce))


CsrfProtected = Depends(verify_csrf)
