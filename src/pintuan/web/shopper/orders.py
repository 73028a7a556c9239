"""My orders (tabs: to pay, forming, succeeded, refunded) and my notifications.

An order is a seat of the shopper's own or one they paid for as a friend; each says where its
money went (see :mod:`pintuan.web.shopper.money_words`). Opening the notifications marks them
read, which clears the header's badge.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from pintuan.errors import InvalidInput
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.pagination import decode_cursor, encode_cursor
from pintuan.kit.time import utc_now
from pintuan.notifications import service as notifications
from pintuan.notifications.models import Notification
from pintuan.payments.refund_reads import refunds_of_seats
from pintuan.web.kit.i18n import N_, gettext, money_text, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn
from pintuan.web.shopper import delivery, order_reads
from pintuan.web.shopper.money_words import MoneyBack, money_back_sentence, seat_money
from pintuan.web.shopper.shopping import own_images, tone

router = APIRouter(include_in_schema=False)

ORDERS_PAGE_SIZE = 20
NOTICES_PAGE_SIZE = 30

TAB_NAMES: dict[str, str] = {
    "all": N_("All"),
    "to_pay": N_("To pay"),
    "forming": N_("Forming"),
    "succeeded": N_("Succeeded"),
    "refunded": N_("Refunded"),
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
        return {
            "orders": shown,
            "names": order_reads.display_names(session, payers),
            "counts": order_reads.order_counts(session, user_id),
            "fulfilments": fulfilment.fulfilments_of_seats(session, [o.seat.id for o in shown]),
            "refunds": refunds_of_seats(session, [o.seat.id for o in shown]),
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > ORDERS_PAGE_SIZE else None,
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
        tone=tone,
        own_images=own_images,
        viewer_id=user_id,
        **delivery.delivery_labels(),
    )
    return await render(request, "shopper/orders.html", context)


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
    # To a payer whose provider took another sum than asked: it goes back at once.
    "amount_returned": N_(
        "The provider took %(amount)s instead of the price; it goes back to you."
    ),
    # To a shopper whose team succeeded but whose payment never came through.
    "pay_again": N_(
        "Your team is complete, but your payment of %(amount)s did not go through: pay again "
        "from your orders."
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
    if text is None:
        return [item.kind]
    params: dict[str, str] = {"name": str(data.get("name", ""))}
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
