"""Refusals on pages: a browser gets an HTML page (or the log-in redirect), not problem JSON.

The application's error handlers ask :func:`wants_html` first and hand such requests here. The
message shown is the translation of the error's stable ``code`` when there is one, else the
service's English detail.
"""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pintuan.errors import AppError
from pintuan.web.kit.i18n import N_, gettext
from pintuan.web.kit.rendering import page_context, render
from pintuan.web.kit.session import LoginRequired

log = logging.getLogger("pintuan.web")

_API_PREFIXES = ("/v1/", "/openapi.json", "/docs", "/redoc", "/healthz", "/readyz")

# Refusals a shopper (or console user) may meet on a page, in words for people.
ERROR_MESSAGES: dict[str, str] = {
    "csrf_failed": N_(
        "This form has expired or did not come from this site. Reload the page and try again."
    ),
    "login_required": N_("Log in to see this page."),
    "invalid_login": N_("The email address or password is wrong."),
    "rate_limited": N_("Too many attempts. Wait a few minutes before trying again."),
    "email_taken": N_("An account with this email address already exists; log in instead."),
    "not_found": N_("There is nothing here. The link may be old or mistyped."),
    "deal_not_found": N_("This deal does not exist or is not public."),
    "team_not_found": N_("This team does not exist."),
    "seat_not_found": N_("This order does not exist."),
    "payment_not_found": N_("This payment does not exist."),
    "forbidden": N_("You are not allowed to see this page."),
    "not_merchant_staff": N_("Only the merchant's staff may see this page."),
    "operator_only": N_("Only platform operators may see this page."),
    "team_full": N_("This team is full. Join another team or start your own."),
    "team_closed": N_("This team has closed. Start a new one."),
    "already_member": N_("You already have a seat in this team."),
    "sold_out": N_("This deal is sold out."),
    "limit_reached": N_("You already hold as many seats of this deal as it allows."),
    "deal_not_live": N_("This deal is not open for teams right now."),
    "not_eligible": N_("This team is for new shoppers only."),
    "solo_not_allowed": N_("This deal is sold in teams only; start or join a team instead."),
    "seat_not_payable": N_("This seat can no longer be paid: its hold has run out."),
    "seat_not_cancellable": N_("This seat can no longer be cancelled."),
    "idempotency_in_progress": N_("Your earlier request is still running; wait a moment."),
    "unknown_provider": N_("This way of paying is not available."),
    "validation_error": N_("Some of the details are not valid."),
    "share_not_found": N_("This share is not in your history."),
    "share_token_not_found": N_(
        "No team has this share token. Check that the whole message or token was copied."
    ),
    "share_token_expired": N_(
        "This team's window has closed, so its share token no longer works. "
        "Its deal may still have open teams."
    ),
    "internal_error": N_("Something went wrong on our side. It has been logged; try again later."),
}


def error_message(error: AppError, locale: str) -> str:
    """What to tell a person about ``error``, in ``locale``."""
    message = ERROR_MESSAGES.get(error.code)
    return gettext(locale, message) if message is not None else error.detail


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page (not the JSON API)."""
    path = request.url.path
    if path.startswith(_API_PREFIXES) or path == "/v1":
        return False
    return "text/html" in request.headers.get("accept", "")


async def page_error_response(request: Request, error: AppError) -> Response:
    """The page for a refusal: the log-in redirect, or ``error.html`` with the right status."""
    if isinstance(error, LoginRequired):
        return RedirectResponse(error.login_url, status_code=303)
    try:
        locale = (await page_context(request))["locale"]
        response: Response = await render(
            request,
            "error.html",
            {"error": error, "message": error_message(error, locale)},
            status_code=error.status,
        )
    except Exception:  # a broken error page must not hide the first error
        log.exception("error page failed", extra={"path": request.url.path})
        response = HTMLResponse(
            f"<!doctype html><title>{error.status}</title><p>{error.status} {error.code}</p>",
            status_code=error.status,
        )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
