"""My orders (tabs: to pay, forming, succeeded, refunded), the vouchers on them, my coupons,
and my notifications.

An order is a seat of the shopper's own or one they paid for as a friend; each says where its
money went (see :mod:`pintuan.web.shopper.money_words`). A seat of a voucher deal whose team
succeeded shows its voucher to its own shopper only (a friend who paid never sees the code): the
code in large type with its QR code, where and until when it is valid, and the refund when the
deal allows it. Opening the notifications marks them read, which clears the header's badge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from pintuan.coupons import service as coupons
from pintuan.domain.coupons import CouponState
from pintuan.domain.vouchers import VoucherStatus, show_code
from pintuan.errors import AppError, InvalidInput
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.pagination import decode_cursor, encode_cursor
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.notifications import service as notifications
from pintuan.notifications.models import Notification
from pintuan.payments import ladder as ladder_refunds
from pintuan.payments import lottery as lottery_refunds
from pintuan.payments import rewards as leader_rewards
from pintuan.payments.refund_reads import refunds_of_seats
from pintuan.payments.refund_schemas import progress_of
from pintuan.pickups import service as pickups
from pintuan.pickups.tasks import UNCLAIMED_REASON
from pintuan.vouchers import service as vouchers
from pintuan.vouchers.qr import qr_svg
from pintuan.vouchers.service import VoucherView
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import ERROR_MESSAGES
from pintuan.web.kit.forms import form_fields, run_raw_form_write
from pintuan.web.kit.i18n import N_, gettext, money_text, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, safe_next
from pintuan.web.shopper import delivery, order_reads
from pintuan.web.shopper import pickups as pickup_pages
from pintuan.web.shopper.money_words import MoneyBack, money_back_sentence, seat_money
from pintuan.web.shopper.shopping import own_images, tone

router = Router(include_in_schema=False)

ORDERS_PAGE_SIZE = 20
NOTICES_PAGE_SIZE = 30
# The newest coupons the orders page lists (a shopper holds few; the API pages through all).
COUPONS_SHOWN = 20

TAB_NAMES: dict[str, str] = {
    "all": N_("All"),
    "to_pay": N_("To pay"),
    "forming": N_("Forming"),
    "succeeded": N_("Succeeded"),
    "refunded": N_("Refunded"),
}
COUPON_STATES: dict[str, str] = {
    CouponState.AVAILABLE.value: N_("Available"),
    CouponState.APPLIED.value: N_("On an order"),
    CouponState.USED.value: N_("Used"),
    CouponState.EXPIRED.value: N_("Expired"),
}


@router.get("/orders", response_class=HTMLResponse)
async def my_orders(
    request: Request, principal: LoggedIn, tab: str = "all", cursor: str | None = None
) -> Response:
    """The shopper's orders newest first, one tab at a time, each saying where its money went."""
    if tab not in order_reads.TABS:
        raise InvalidInput(
            f"Unknown tab {tab!r}; choose one of {', '.join(order_reads.TABS)}.",
            code="validation_error",
        )
    cursor_id = decode_cursor(cursor) if cursor else None
    locale = request_locale(request, principal)
    now = utc_now()
    user_id = principal.user_id

    def read(session: Session) -> dict[str, Any]:
        rows = order_reads.orders(session, user_id, tab, cursor_id, ORDERS_PAGE_SIZE)
        shown = rows[:ORDERS_PAGE_SIZE]
        payers = [p.user_id for o in shown for p in o.payments]
        seat_ids = [o.seat.id for o in shown]
        return {
            "orders": shown,
            "names": order_reads.display_names(session, payers),
            "counts": order_reads.order_counts(session, user_id),
            "fulfilments": fulfilment.fulfilments_of_seats(session, seat_ids),
            "refunds": refunds_of_seats(session, seat_ids),
            "vouchers": {
                seat_id: v
                for seat_id, v in vouchers.vouchers_of_seats(raw_tx(session), seat_ids).items()
                if v.user_id == user_id
            },
            "pickups": {
                seat_id: p
                for seat_id, p in pickups.pickups_of_seats(raw_tx(session), seat_ids).items()
                if p.user_id == user_id
            },
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > ORDERS_PAGE_SIZE else None,
            # Listed above the orders' first page, not again on each later one.
            "coupons": coupons.my_coupons(session, user_id, now, None, COUPONS_SHOWN)[
                :COUPONS_SHOWN
            ]
            if cursor_id is None
            else [],
        }

    context = await services_of(request).db.read_stale(read)
    context["money"] = {
        order.id: seat_money(
            order.seat,
            order.payments,
            viewer_id=user_id,
            names=context["names"],
            team_status=order.team_status,
            now=now,
            locale=locale,
        )
        for order in context["orders"]
    }
    context.update(
        tab=tab,
        tabs=TAB_NAMES,
        coupon_states=COUPON_STATES,
        tone=tone,
        own_images=own_images,
        viewer_id=user_id,
        voucher_state=lambda v: voucher_state(v, now),
        voucher_message=voucher_message(request, locale),
        voucher_qr=voucher_qr,
        refund_progress=progress_of,
        refund_reason=lambda reason: (
            gettext(locale, REFUND_REASONS[reason]) if reason in REFUND_REASONS else reason
        ),
        show_code=show_code,
        **delivery.delivery_labels(),
        **pickup_pages.pickup_labels(),
    )
    return await render(request, "shopper/orders.html", context)


# ---------------------------------------------------------------------------- vouchers

# The reasons the voucher service gives its own refunds (stored in English, as staff type theirs),
# in the shopper's words.
REFUND_REASONS: dict[str, str] = {
    vouchers.REFUND_REASON: N_("You gave the voucher back unused."),
    vouchers.EXPIRY_REASON: N_("The voucher expired unused."),
    UNCLAIMED_REASON: N_("The order was not collected at its pickup point in time."),
    leader_rewards.REASON: N_("Leader reward: your team succeeded."),
    lottery_refunds.REASON: N_("Lottery team: this seat was not drawn; refunded in full."),
    ladder_refunds.REASON: N_(
        "Ladder team: your team reached a cheaper tier; the difference comes back."
    ),
}
VOUCHER_NOTICES: dict[str, str] = {
    "refunded": N_("The voucher is given back: its code no longer works, and it is refunded."),
}


def voucher_state(v: VoucherView, now: datetime) -> str:
    """A voucher's status as people read it, on the order page and at the counter: ``expired``
    once its end has passed, even before the worker has refunded it (the counter refuses it
    from that moment)."""
    if v.status == VoucherStatus.ISSUED and v.expires_at <= now:
        return VoucherStatus.EXPIRED.value
    return v.status


def voucher_qr(code: str) -> Markup:
    """A voucher's code as a QR image drawn into the page for the counter's scanner, so that
    showing it needs no second request (a phone at the counter may have a poor signal)."""
    return Markup(qr_svg(code))  # noqa: S704 - segno's SVG of a code of our own alphabet


def voucher_message(request: Request, locale: str) -> tuple[str, str, bool] | None:
    """(voucher id, words, whether they are a refusal) a voucher's form came back with
    (``?voucher=<id>`` and ``voucher_done=`` or ``voucher_error=``); unknown words show
    nothing, so a crafted link cannot put text of its own on the page."""
    voucher_id = request.query_params.get("voucher", "")
    done = request.query_params.get("voucher_done", "")
    code = request.query_params.get("voucher_error", "")
    if not voucher_id:
        return None
    if code in ERROR_MESSAGES:
        return voucher_id, gettext(locale, ERROR_MESSAGES[code]), True
    if done in VOUCHER_NOTICES:
        return voucher_id, gettext(locale, VOUCHER_NOTICES[done]), False
    return None


@router.post("/vouchers/{voucher_id}/refund", dependencies=[CsrfProtected])
async def refund_voucher(request: Request, voucher_id: str, principal: LoggedIn) -> Response:
    """The shopper gives back an unused voucher, when its deal allows it, through the same
    service as ``POST /v1/vouchers/{id}/refund``; once per form. Back to the orders, at the
    voucher, saying what happened (a refusal by its code, worded by the page)."""
    back = safe_next((await form_fields(request)).get("next"), "/orders")

    def work(tx: RawTx) -> dict[str, str]:
        return {"id": vouchers.refund_by_shopper(tx, principal.user_id, voucher_id, utc_now()).id}

    try:
        await run_raw_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "voucher_not_found":
            raise
        return _back_to_voucher(back, voucher_id, voucher_error=refused.code)
    return _back_to_voucher(back, voucher_id, voucher_done="refunded")


def _back_to_voucher(url: str, voucher_id: str, **said: str) -> RedirectResponse:
    path, _, _ = url.partition("#")
    joiner = "&" if "?" in path else "?"
    query = urlencode({"voucher": voucher_id, **said})
    return RedirectResponse(f"{path}{joiner}{query}#voucher-{voucher_id}", status_code=303)


# ---------------------------------------------------------------------------- notifications

NOTICE_TEXTS: dict[str, str] = {
    "team_succeeded": N_("Your team is complete: the group price is yours."),
    "team_failed": N_("Your team did not fill in time."),
    "seat_refunded": N_("You left the team."),
    "money_returned": N_("%(amount)s went back to you."),
    "friend_team_failed": N_(
        "The team of %(name)s, whose seat you paid for, did not fill in time."
    ),
    "friend_seat_refunded": N_("%(name)s left the team you paid their seat in."),
    "webhook_endpoint_disabled": N_(
        "A webhook endpoint of your app was turned off: every delivery to it failed for three "
        "days. Fix the receiver, then turn the endpoint on again."
    ),
    "address_chosen": N_("Your delivery address is saved on your order."),
    "seat_shipped": N_("Your order is on its way."),
    "seat_received": N_("Your order is marked as received."),
    # To operators: a payment whose provider call ran out of attempts or time (payments/endings).
    "payment_queued": N_("A payment of %(amount)s needs an operator: see the payments queue."),
    # To operators: a refund after success its provider would not make (payments/refunds).
    "refund_queued": N_("A refund of %(amount)s needs an operator: see the refunds queue."),
    # To a payer whose refund came back from their bank (a closed card): owed again.
    "refund_sent_back": N_(
        "Your bank sent back a refund of %(amount)s, so it did not reach you. Our team will pay "
        "it into your Pintuan wallet."
    ),
    # To a payer whose provider took another sum than asked: it goes back at once.
    "amount_returned": N_(
        "The provider took %(amount)s instead of the price; it goes back to you."
    ),
    # To a shopper whose team succeeded but whose payment never came through.
    "pay_again": N_(
        "Your team is complete, but your payment of %(amount)s did not go through: pay again "
        "from your orders."
    ),
    # A voucher used at the counter; one that expired unused (its money's return is its own
    # notice, money_returned).
    "voucher_redeemed": N_("Your voucher was used at %(location)s."),
    "voucher_expired": N_("Your voucher expired unused, so it is refunded."),
    # A pickup deal's goods at the shopper's pickup point; an order not collected there in time.
    "pickup_arrived": N_("Your order is at %(location)s: show your pickup code there."),
    "pickup_unclaimed": N_(
        "Your order was not collected at %(location)s in time, so it is refunded."
    ),
}


def notice_sentences(item: Notification, locale: str) -> list[str]:
    """What a notification says, in ``locale``: the news, then where any money goes."""
    data = item.data
    text = NOTICE_TEXTS.get(item.kind)
    if item.kind == "seat_refunded" and "money" not in data:
        # Told before notices said where the money went: the seat ended with its team or
        # its shopper, and whatever was taken for it went back to whoever paid.
        text = N_("Your seat ended; any money taken for it went back to whoever paid.")
    if item.kind == "voucher_redeemed" and not data.get("location"):
        text = N_("Your voucher was used.")
    if text is None:
        return [item.kind]
    params: dict[str, str] = {
        "name": str(data.get("name", "")),
        "location": str(data.get("location") or ""),
    }
    if data.get("amount") is not None and data.get("currency"):
        params["amount"] = money_text(int(data["amount"]), str(data["currency"]), locale)
    elif "%(amount)s" in text:
        return [gettext(locale, N_("Money went back to you."))]
    sentences = [gettext(locale, text) % params]
    money = data.get("money")
    if isinstance(money, list):
        for entry in money:
            back = MoneyBack(
                int(entry["amount"]),
                str(entry["currency"]),
                str(entry["how"]),
                bool(entry["done"]),
                "",
            )
            sentences.append(
                money_back_sentence(
                    back,
                    to_viewer=bool(entry["by_you"]),
                    name=str(entry.get("name", "")),
                    locale=locale,
                )
            )
        if not money:
            sentences.append(gettext(locale, N_("Nothing was charged.")))
    return sentences


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(
    request: Request, principal: LoggedIn, cursor: str | None = None
) -> Response:
    """The shopper's notifications newest first; opening them marks those shown read."""
    cursor_id = decode_cursor(cursor) if cursor else None
    services = services_of(request)
    rows = await services.db.read(
        lambda s: notifications.list_notifications(
            s, principal.user_id, cursor_id, NOTICES_PAGE_SIZE
        )
    )
    shown = rows[:NOTICES_PAGE_SIZE]
    if any(item.read_at is None for item in shown):
        await services.db.run(notifications.mark_seen, principal.user_id, shown[0].id)
    locale = request_locale(request, principal)
    return await render(
        request,
        "shopper/notifications.html",
        {
            "items": [(item, notice_sentences(item, locale)) for item in shown],
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > NOTICES_PAGE_SIZE else None,
        },
    )
