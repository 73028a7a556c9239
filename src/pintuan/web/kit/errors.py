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
from pintuan.web.kit.csrf import CSRF_FIELD, CsrfFailed, token_matches
from pintuan.web.kit.i18n import N_, gettext
from pintuan.web.kit.rendering import page_context, render
from pintuan.web.kit.resume import came_from_this_site, keep_action, login_url, referring_page
from pintuan.web.kit.session import LoginRequired, page_principal

log = logging.getLogger("pintuan.web")

_API_PREFIXES = ("/v1/", "/openapi.json", "/docs", "/redoc", "/healthz", "/readyz")

# Refusals a shopper (or console user) may meet on a page, in words for people.
ERROR_MESSAGES: dict[str, str] = {
    "seat_not_refundable": N_(
        "Only an order whose team succeeded and whose payment is complete can be refunded."
    ),
    "refund_exceeds_paid": N_(
        "That is more than is left to refund of this order; refund at most what the page says."
    ),
    "refund_not_found": N_("There is no such refund."),
    "refund_amount_unreadable": N_("Type the amount to refund as a number, such as 5.00."),
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
    "deal_not_started": N_("This deal has not opened yet; the page counts down to its opening."),
    "lottery_not_found": N_("This deal is not a lottery."),
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
    "app_not_installed": N_("This app is not installed on the shop it asks to act for."),
    "offer_not_found": N_("This app has no such offer in this shop."),
    "offer_ended": N_("This offer has ended; publish it again under a new id."),
    "stock_below_committed": N_(
        "Stock cannot go below the units shoppers already hold or have bought."
    ),
    # fulfilment
    "address_book_full": N_("Your address book is full; delete an address first."),
    "address_missing": N_("The shopper has not chosen an address yet."),
    "address_not_found": N_("This address is not in your address book."),
    "address_not_served": N_(
        "This shop delivers only within its own country; choose an address there."
    ),
    "already_shipped": N_("Your order has shipped; its address can no longer change."),
    "duplicate_row": N_("This order is already on an earlier row."),
    "not_ready_to_ship": N_("The team has not succeeded: nothing to ship yet."),
    "not_shipped": N_("Your order has not shipped yet."),
    "nothing_to_deliver": N_("This order is not for goods; there is nothing to deliver."),
    "order_closed": N_("This order will not be delivered."),
    "order_refunded": N_("This order's money went back to its buyer: do not ship it."),
    "too_many_rows": N_("Upload at most 1,000 rows at once; split the file."),
    "internal_error": N_("Something went wrong on our side. It has been logged; try again later."),
    # the open platform
    "app_not_found": N_("This app does not exist or is not yours."),
    "app_owner_only": N_("Only the app's developer may do this."),
    "invalid_app_transition": N_("This app cannot be moved to that status from the one it has."),
    "invalid_app_url": N_(
        "A URL is not valid: use https (plain http only to a loopback address, in development)."
    ),
    "unknown_scope": N_("The app asks for a scope the platform does not know."),
    "last_secret": N_("This is the app's only working secret; make a new one before revoking it."),
    "secret_not_found": N_("This app has no such secret."),
    "invalid_authorization_request": N_(
        "This app's authorization link is not valid (for example, its return address is not "
        "registered). Go back to the app and try again."
    ),
    "user_token_required": N_("An app's access token cannot be used here."),
    "app_token_required": N_("This is for apps: send an app's access token."),
    "insufficient_scope": N_("The app was not granted the permission this needs."),
    # webhooks
    "webhook_url_not_allowed": N_(
        "Webhooks cannot be sent to this address. Use a public https address."
    ),
    "unknown_event_type": N_("One of the event types is not one Pintuan sends."),
    "webhook_endpoint_not_found": N_("This webhook endpoint does not exist."),
    "webhook_delivery_not_found": N_("This webhook delivery does not exist."),
    "too_many_webhook_endpoints": N_("This app already has as many webhook endpoints as allowed."),
    "webhook_endpoint_exists": N_("This app already has a webhook endpoint at that address."),
    # pictures
    "image_missing": N_("Choose one or more pictures to upload."),
    "image_too_large": N_("This picture's file is too large; send a smaller one."),
    "image_type_not_allowed": N_(
        "This file is not a picture we accept. Send a JPEG, PNG, WebP or GIF."
    ),
    "image_too_many_pixels": N_("This picture has too many pixels; send a smaller one."),
    "image_unreadable": N_("This picture could not be read; it may be damaged or cut short."),
    "too_many_images": N_("A deal shows at most 12 pictures; remove one first."),
    "too_many_files": N_("Upload at most 4 pictures at a time."),
    "image_order_mismatch": N_("Name each of the deal's pictures once, in the new order."),
    "image_not_found": N_("This deal has no such picture."),
    "media_not_found": N_("There is no such picture."),
    "media_unavailable": N_("Pictures cannot be stored or shown right now."),
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
    "payout_not_found": N_("This payout does not exist."),
    "refund_window_closed": N_("This order's refund window has closed; it cannot be refunded."),
    "withdrawal_exceeds_balance": N_("Your wallet holds less than that in this currency."),
    "fill_budget_below_used": N_(
        "The budget has used more than that already; set a limit of at least what is used."
    ),
    "payout_transition_invalid": N_("A payout cannot go back or change once it has ended."),
    "idempotency_key_required": N_(
        "This request needs an Idempotency-Key header, so that a retry never acts twice."
    ),
    "finding_not_found": N_("This reconciliation finding does not exist."),
    "finding_state_invalid": N_("This finding was already explained or fixed."),
    "finding_note_required": N_("Say how the difference was explained or fixed."),
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
    # The feed lab's offline evaluation.
    "feed_policy_not_found": N_("No policy has that name. Name a stored policy or a kind."),
    "feed_policy_parameter": N_("That policy does not take this parameter."),
    "feed_empty_range": N_("No slates were served in these days."),
    "feed_rules_invalid": N_("Some of the feed's rules are not valid; see the fields marked."),
    "feed_rules_changed": N_(
        "Another operator changed the feed's rules since you opened them; open them again."
    ),
    "feed_location_incomplete": N_("Give both latitude and longitude, or neither."),
    # Every payment ends: the operators' queue of payments.
    "payment_not_queued": N_("This payment is not waiting in the operators' queue."),
    "refund_not_queued": N_("This refund is not waiting in the operators' queue."),
    "refund_came_back": N_(
        "The provider says this refund did not reach the payer: pay it into their wallet."
    ),
    "queue_action_not_available": N_("This action does not fit this payment."),
    "refund_outcome_unknown": N_(
        "The provider has not said that this refund failed: it may have been made. Retry it."
    ),
    # Vouchers: the counter's refusals and the shopper's.
    "voucher_not_found": N_("There is no such voucher. Check the code letter by letter."),
    "voucher_of_another_merchant": N_(
        "This voucher is for another merchant; it cannot be redeemed here."
    ),
    "voucher_already_redeemed": N_("This voucher has already been used."),
    "voucher_refunded": N_("This voucher was refunded; it can no longer be used."),
    "voucher_expired": N_("This voucher has expired; unused vouchers are refunded in full."),
    "voucher_location_required": N_(
        "Choose the shop where the voucher is used: it is valid at several."
    ),
    "voucher_location_invalid": N_(
        "The voucher is not valid at this shop; choose one of the shops it lists."
    ),
    "voucher_undo_closed": N_("It is too late to undo this redemption."),
    "voucher_not_redeemed": N_("This voucher has not been redeemed, so there is nothing to undo."),
    "voucher_not_refundable": N_(
        "This deal's vouchers cannot be refunded before they expire; unused ones are refunded "
        "when they do."
    ),
    "voucher_payment_pending": N_(
        "This voucher's payment is still being completed; try again in a few minutes."
    ),
    # Pickup points: applying and deciding, choosing a point, the leader's hand-over.
    "pickup_point_not_found": N_("There is no such pickup point."),
    "pickup_point_not_approved": N_("This pickup point is not open for orders; choose another."),
    "pickup_point_full": N_("This pickup point is full today; choose another."),
    "pickup_point_already_decided": N_("This pickup point has already been decided on."),
    "not_pickup_leader": N_("Only this pickup point's leader can do this."),
    "not_a_pickup_deal": N_("This order is not collected at a pickup point."),
    "pickup_not_changeable": N_(
        "The goods of this order are at its pickup point already; collect it there."
    ),
    "pickup_not_found": N_("No order has this pickup code. Check it letter by letter."),
    "pickup_of_another_point": N_("This order is collected at another pickup point."),
    "pickup_already_handed_over": N_("This order has already been handed over."),
    "pickup_refunded": N_("This order was refunded; do not hand it over."),
    "pickup_not_arrived": N_("The goods of this order have not been marked as arrived yet."),
    "pickup_payment_pending": N_(
        "This order's payment is still being completed; try again in a few minutes."
    ),
    # Bargains: the merchant's terms, opening one, friends' cuts, the owner's purchase.
    "bargain_terms_not_found": N_("This deal offers no bargain."),
    "bargain_terms_not_editable": N_("Bargain terms can be set on draft and live deals only."),
    "bargain_terms_in_use": N_(
        "Shoppers have opened bargains on these terms, so they cannot be removed."
    ),
    "bargain_not_offered": N_("This deal offers no bargain."),
    "bargain_already_open": N_("You have a bargain open on this deal already."),
    "bargain_not_found": N_("There is no such bargain."),
    "bargain_own": N_("Friends cut your bargain; you cannot cut it yourself."),
    "bargain_already_cut": N_("You have helped cut this bargain already."),
    "bargain_device_used": N_("Somebody already helped cut this bargain from this device."),
    "bargain_address_used": N_("Somebody already helped cut this bargain from this network."),
    "bargain_complete": N_("This bargain has reached its lowest price; no more cuts are needed."),
    "bargain_closed": N_("This bargain has ended."),
    "bargain_new_account_limit": N_(
        "New accounts can help cut only a few bargains a day; try again tomorrow."
    ),
    "bargain_address_limit": N_(
        "Too many bargains were cut from this network today; try again later."
    ),
    "bargain_not_owner": N_("Only the shopper who opened this bargain can buy at its price."),
    "bargain_already_bought": N_("You bought at this bargain's price already; pay for that order."),
    # Coupons: taking one off a held seat's price before paying.
    "coupon_not_found": N_("This coupon is not in your account."),
    "coupon_applied": N_(
        "This coupon is on another order; it comes back if that order ends without a sale."
    ),
    "coupon_used": N_("This coupon has been used."),
    "coupon_expired": N_("This coupon has expired."),
    "coupon_not_applicable": N_(
        "This coupon cannot be used on this order: a coupon is for its own shop's deals, in their "
        "currency, not ladder or lottery deals, and worth less than the price."
    ),
    "coupon_taken": N_("This coupon or this order changed a moment ago; look again."),
    "seat_has_coupon": N_("This order has a coupon already: one coupon per order."),
    "payment_begun": N_("A payment of this order has begun; a coupon is used before paying."),
}


def error_message(error: AppError, locale: str) -> str:
    """What to tell a person about ``error``, in ``locale``."""
    message = ERROR_MESSAGES.get(error.code)
    return gettext(locale, message) if message is not None else error.detail


# Forms a visitor sends signed out on purpose: a stale token there is no expired session.
_SIGNED_OUT_FORMS = frozenset({"/login", "/signup", "/logout", "/language"})


async def login_keeping_action(request: Request, error: AppError) -> Response | None:
    """A POST that ran into the log-in (not signed in, or its session expired and its CSRF
    token with it) goes to ``/login`` and comes back to perform the action, when the request
    provably came from this site (see :mod:`pintuan.web.kit.resume`); None leaves ``error``
    to the usual page."""
    path = request.url.path
    if isinstance(error, LoginRequired):
        form = await request.form()
        given = form.get(CSRF_FIELD)
        if not token_matches(request, given if isinstance(given, str) else None):
            return None
        page = error.next_url if error.next_url != path else referring_page(request)
    elif (
        path in _SIGNED_OUT_FORMS
        or not came_from_this_site(request)
        or await page_principal(request) is not None
    ):
        return None
    else:
        page = referring_page(request)
    return RedirectResponse(login_url(page, await keep_action(request, page)), status_code=303)


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page (not the JSON API)."""
    path = request.url.path
    if path.startswith(_API_PREFIXES) or path == "/v1":
        return False
    return "text/html" in request.headers.get("accept", "")


async def page_error_response(request: Request, error: AppError) -> Response:
    """The page for a refusal: the log-in redirect, or ``error.html`` with the right status."""
    if isinstance(error, LoginRequired | CsrfFailed) and request.method == "POST":
        kept = await login_keeping_action(request, error)
        if kept is not None:
            return kept
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
