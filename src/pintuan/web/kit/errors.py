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
    # Every other code a service can raise, so no page ever falls back to English detail
    # (tests/unit/test_catalogues.py collects the codes from the source and checks this table).
    "account_disabled": N_("This account has been disabled by the platform's operators."),
    "audit_run_not_found": N_("This audit run does not exist."),
    "bad_request": N_("The request could not be understood."),
    "body_too_large": N_("What was sent is too large."),
    "busy": N_("We are busy right now; nothing was changed. Try again in a moment."),
    "cannot_disable_self": N_("You cannot disable or enable your own account."),
    "checkout_completed": N_("This checkout is already finished."),
    "checkout_kind_not_supported": N_("This way of paying is not offered for this payment."),
    "checkout_not_found": N_("This checkout does not exist."),
    "client_ip_required": N_("This way of paying needs your network address; try another."),
    "conflict": N_("This changed in the meantime. Reload the page and try again."),
    "currency_not_supported": N_("This way of paying does not take this currency."),
    "database_busy": N_("We are busy right now; nothing was changed. Try again in a moment."),
    "database_unavailable": N_(
        "We cannot reach our records right now; nothing was changed. Try again shortly."
    ),
    "deal_expired": N_("This deal's end has passed; move the end into the future first."),
    "deal_moderated": N_(
        "This deal was stopped by the platform's operators; only they can release it."
    ),
    "deal_not_editable": N_("A published deal keeps its prices and team terms."),
    "gone": N_("This is no longer available."),
    "hold_too_short": N_(
        "This team is open longer than this way of paying can hold money; pay another way."
    ),
    "idempotency_mismatch": N_(
        "This request was already sent with different details. Reload the page and try again."
    ),
    "idempotency_secret_not_replayed": N_(
        "This was already done; its secret is shown only once. Make a new one if you need it."
    ),
    "insufficient_funds": N_(
        "Your wallet balance is too low for this payment; top it up or pay another way."
    ),
    "insufficient_scope": N_("This app is not allowed to do that."),
    "invalid_checkout_kind": N_("This way of paying is not offered for this payment."),
    "invalid_cursor": N_("This page of the list is out of date; start again from the first."),
    "invalid_deal_transition": N_("This deal cannot do that in its current state."),
    "invalid_event": N_("This notification is not one we can read."),
    "invalid_idempotency_key": N_("The request's Idempotency-Key is not valid."),
    "invalid_merchant_transition": N_("This merchant cannot do that in its current state."),
    "invalid_signature": N_("The signature does not match."),
    "invalid_token": N_("The access token is missing, wrong or expired."),
    "merchant_not_approved": N_(
        "An operator must approve this merchant before its deals can go live."
    ),
    "merchant_not_found": N_("This merchant does not exist."),
    "merchant_suspended": N_("This merchant is suspended: its deals cannot be created or changed."),
    "notification_not_found": N_("This notification does not exist."),
    "operator_cannot_be_staff": N_("Operators cannot also be a merchant's staff."),
    "pay_link_expired": N_("This pay link has run out with the seat's hold."),
    "pay_link_not_found": N_("This pay link does not exist."),
    "payer_ref_required": N_("This way of paying needs your account with the app; try another."),
    "payout_exceeds_balance": N_("A payout cannot be more than the merchant is owed."),
    "provider_unavailable": N_(
        "The payment provider did not answer; nothing was charged. Try again shortly."
    ),
    "sandbox_disabled": N_("The test payment provider is switched off."),
    "share_parent_mismatch": N_("This share belongs to another team or deal."),
    "slug_taken": N_("Another merchant already uses this short name; choose another."),
    "staff_not_found": N_("This person is not on the merchant's staff."),
    "stale_signature": N_("The signature is too old."),
    "statement_not_ready": N_("The provider has no statement for a day that is not over yet."),
    "token_not_found": N_("This access token does not exist."),
    "unauthenticated": N_("Log in to continue."),
    "unsupported_checkout_kind": N_("This way of paying is not offered for this payment."),
    "unsupported_payment": N_("This way of paying cannot take this payment."),
    "user_not_found": N_("This person does not exist."),
    "worker_lagging": N_("Background work is running late; try again shortly."),
    "reason_required": N_("Say why before you do this: the reason is kept in the audit log."),
    "application_pending": N_("You already have an application waiting for review."),
    "application_not_found": N_("This application does not exist."),
    "application_decided": N_("This application has already been decided."),
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
